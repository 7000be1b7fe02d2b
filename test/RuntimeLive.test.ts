import { RuntimeLive } from "../src/index.js"
import { busySuite } from "./support/busySuite.js"
import { followSuite } from "./support/followSuite.js"
import { lifecycleSuite } from "./support/lifecycleSuite.js"
import { runtimeSuite } from "./support/runtimeSuite.js"

runtimeSuite("Runtime (embedded, memory store)", (options) => RuntimeLive(options))
followSuite("Following (embedded, memory store)", (options) => RuntimeLive(options))
busySuite("Busy policy (embedded, memory store)", (options) => RuntimeLive(options))
lifecycleSuite("Lifecycle (embedded, memory store)", (options) => RuntimeLive(options))

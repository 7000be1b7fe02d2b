import { RuntimeLive } from "../src/index.js"
import { followSuite } from "./support/followSuite.js"
import { runtimeSuite } from "./support/runtimeSuite.js"

runtimeSuite("Runtime (embedded, memory store)", (options) => RuntimeLive(options))
followSuite("Following (embedded, memory store)", (options) => RuntimeLive(options))

import { RuntimeLive } from "../src/index.js"
import { runtimeSuite } from "./support/runtimeSuite.js"

runtimeSuite("Runtime (embedded, memory store)", (options) => RuntimeLive(options))

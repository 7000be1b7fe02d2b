import { followSuite } from "./support/followSuite.js"
import { httpRuntime } from "./support/httpRuntime.js"
import { runtimeSuite } from "./support/runtimeSuite.js"

runtimeSuite("Runtime (RuntimeHttpClient -> server -> RuntimeLive)", (options) => httpRuntime(options, "suite-token"))
followSuite("Following (RuntimeHttpClient -> server -> RuntimeLive)", (options) => httpRuntime(options, "suite-token"))

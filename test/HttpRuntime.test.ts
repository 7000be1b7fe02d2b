import { httpRuntime } from "./support/httpRuntime.js"
import { runtimeSuite } from "./support/runtimeSuite.js"

runtimeSuite("Runtime (RuntimeHttpClient -> server -> RuntimeLive)", (options) => httpRuntime(options, "suite-token"))

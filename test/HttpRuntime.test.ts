import { busySuite } from "./support/busySuite.js"
import { followSuite } from "./support/followSuite.js"
import { httpRuntime } from "./support/httpRuntime.js"
import { lifecycleSuite } from "./support/lifecycleSuite.js"
import { runtimeSuite } from "./support/runtimeSuite.js"

runtimeSuite("Runtime (RuntimeHttpClient -> server -> RuntimeLive)", (options) => httpRuntime(options, "suite-token"))
followSuite("Following (RuntimeHttpClient -> server -> RuntimeLive)", (options) => httpRuntime(options, "suite-token"))
busySuite("Busy policy (RuntimeHttpClient -> server -> RuntimeLive)", (options) => httpRuntime(options, "suite-token"))
lifecycleSuite(
  "Lifecycle (RuntimeHttpClient -> server -> RuntimeLive)",
  (options) => httpRuntime(options, "suite-token")
)

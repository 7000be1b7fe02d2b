/**
 * worker-runtime core: domain schemas, errors, the `Runtime` service and
 * `RuntimeLive` with the memory store and the echo engine. Imports `effect`
 * only, so a Backend that embeds the Runtime installs nothing else.
 */
export * from "./Domain.js"
export * from "./Errors.js"
export { makeEchoEngine, type EchoOptions } from "./EchoEngine.js"
export { makeIdGenerator, type IdGenerator } from "./Ids.js"
export { makeMemoryStore, MemoryStoreLive } from "./MemoryStore.js"
export { Runtime, type RuntimeService } from "./Runtime.js"
export {
  makeRuntime,
  RuntimeControl,
  type RuntimeControlService,
  RuntimeFromStore,
  RuntimeLive,
  type RuntimeOptions
} from "./RuntimeLive.js"
export { type ListWorkersQuery, RuntimeStore, type RuntimeStoreService, StoreError } from "./RuntimeStore.js"
export { VERSION } from "./version.js"
export { type Profiles, type TurnContext, TurnFailed, type WorkerEngine } from "./WorkerEngine.js"

/**
 * worker-runtime core: domain schemas, errors, the `Runtime` service and
 * `RuntimeLive` with the memory store and the echo engine. Imports `effect`
 * only, so a Backend that embeds the Runtime installs nothing else.
 */
export * from "./Domain.js"
export { type EchoOptions, makeEchoEngine } from "./EchoEngine.js"
export * from "./Errors.js"
export {
  type ClockIdGenerator,
  type IdGenerator,
  idTimeMillis,
  makeClockId,
  makeClockIdGenerator,
  makeIdGenerator
} from "./Ids.js"
export { makeMemoryStore, MemoryStoreLive } from "./MemoryStore.js"
export { Runtime, type RuntimeService } from "./Runtime.js"
export { type CreateResult, RuntimeControl, type RuntimeControlService } from "./RuntimeControl.js"
export { makeRuntime, RuntimeFromStore, RuntimeLive } from "./RuntimeLive.js"
export {
  DEFAULT_MAX_INPUT_BYTES,
  DEFAULT_MAX_QUEUED_BYTES,
  DEFAULT_MAX_QUEUED_INPUTS,
  DEFAULT_MAX_WORKERS,
  DEFAULT_PAGE,
  MAX_PAGE,
  RETRY_AFTER_MS,
  type RuntimeOptions
} from "./RuntimeOptions.js"
export {
  type Change,
  type InputReceipt,
  type ListWorkersQuery,
  type QueuedInput,
  type QueuedRef,
  RuntimeStore,
  type RuntimeStoreService,
  type StoredWorker,
  StoreError,
  type TranscriptRange
} from "./RuntimeStore.js"
export { VERSION } from "./version.js"
export {
  failureReason,
  type Profiles,
  type TurnContext,
  TurnFailed,
  TurnOutput,
  type WorkerEngine
} from "./WorkerEngine.js"

/**
 * The `Runtime` service: what a Backend calls, embedded (`RuntimeLive`) or
 * remote (`RuntimeHttpClient` from `worker-runtime/http`). Each method's error
 * channel lists exactly the errors docs/rest.md allows for it.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"

import type {
  CancelRequest,
  CancelResult,
  CreateWorker,
  InputAccepted,
  ListQuery,
  RuntimeInfo,
  StopRequest,
  TranscriptPage,
  TranscriptQuery,
  Worker,
  WorkerId,
  WorkerInput,
  WorkerList
} from "./Domain.js"
import type { Busy, InvalidInput, Unavailable, UnknownWorker, Unsupported } from "./Errors.js"

export interface RuntimeService {
  readonly info: Effect.Effect<RuntimeInfo, Unavailable>
  readonly list: (query: ListQuery) => Effect.Effect<WorkerList, InvalidInput | Unavailable>
  readonly get: (workerId: WorkerId) => Effect.Effect<Worker, UnknownWorker | Unavailable>
  readonly create: (request: CreateWorker) => Effect.Effect<Worker, InvalidInput | Unavailable>
  readonly input: (
    workerId: WorkerId,
    input: WorkerInput
  ) => Effect.Effect<InputAccepted, UnknownWorker | Busy | InvalidInput | Unsupported | Unavailable>
  readonly cancel: (
    workerId: WorkerId,
    request?: CancelRequest
  ) => Effect.Effect<CancelResult, UnknownWorker | Unsupported | Unavailable>
  readonly stop: (workerId: WorkerId, request?: StopRequest) => Effect.Effect<Worker, UnknownWorker | Unavailable>
  readonly transcript: (
    workerId: WorkerId,
    query: TranscriptQuery
  ) => Effect.Effect<TranscriptPage, UnknownWorker | InvalidInput | Unavailable>
}

export class Runtime extends Context.Tag("worker-runtime/Runtime")<Runtime, RuntimeService>() {}

/**
 * Domain schemas of the Worker Runtime: the shapes of docs/rest.md, field for
 * field. Request bodies are strict (an unknown field is a decode failure) so
 * that embedded callers and HTTP callers are held to the same contract; query
 * objects ignore unknown keys, as URL query strings do.
 */
import * as Schema from "effect/Schema"
import { DEFAULT_PAGE, MAX_PAGE } from "./RuntimeOptions.js"

/** Decode options shared by every request schema: unknown fields are errors. */
const strict = { parseOptions: { onExcessProperty: "error" } } as const

/** A Worker's id: opaque, URL-safe, unique across restarts; ids sort by creation. `WorkerId.make(text)` brands one. */
export const WorkerId = Schema.String.pipe(Schema.brand("WorkerId")).annotations({
  identifier: "WorkerId",
  description: "Opaque, URL-safe Worker id; ids sort by creation"
})
export type WorkerId = typeof WorkerId.Type

/** A Runtime's id; a durable store keeps it across restarts. */
export const RuntimeId = Schema.String.pipe(Schema.brand("RuntimeId")).annotations({
  identifier: "RuntimeId",
  description: "The Runtime's id; a durable store keeps it across restarts"
})
export type RuntimeId = typeof RuntimeId.Type

export const WorkerStatus = Schema.Literal("idle", "busy", "stopped", "failed").annotations({
  identifier: "WorkerStatus"
})
export type WorkerStatus = typeof WorkerStatus.Type

export const InputKind = Schema.Literal("user", "system").annotations({ identifier: "InputKind" })
export type InputKind = typeof InputKind.Type

export const EntryRole = Schema.Literal("user", "system", "worker", "runtime").annotations({
  identifier: "EntryRole"
})
export type EntryRole = typeof EntryRole.Type

export const MAX_METADATA_KEYS = 32
export const MAX_METADATA_KEY_LENGTH = 64
export const MAX_METADATA_VALUE_LENGTH = 1024

export const Metadata = Schema.Record({
  key: Schema.String.pipe(
    Schema.minLength(1),
    Schema.maxLength(MAX_METADATA_KEY_LENGTH),
    // A plain object cannot hold it as data: it would be dropped, not stored.
    Schema.filter((key) => key !== "__proto__" || "the metadata key __proto__ is reserved")
  ),
  value: Schema.String.pipe(Schema.maxLength(MAX_METADATA_VALUE_LENGTH))
}).pipe(
  Schema.filter((record) =>
    Object.keys(record).length <= MAX_METADATA_KEYS || `metadata has more than ${MAX_METADATA_KEYS} keys`
  )
).annotations({
  identifier: "Metadata",
  description:
    `String keys (1-${MAX_METADATA_KEY_LENGTH} chars) to string values (at most ${MAX_METADATA_VALUE_LENGTH} chars), at most ${MAX_METADATA_KEYS} keys`
})
export type Metadata = typeof Metadata.Type

const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative())

export const Worker = Schema.Struct({
  id: WorkerId,
  runtimeId: RuntimeId,
  profile: Schema.String,
  status: WorkerStatus,
  createdAt: Schema.String,
  updatedAt: Schema.String,
  turn: NonNegativeInt,
  lastSeq: NonNegativeInt,
  metadata: Metadata,
  stopReason: Schema.optional(Schema.String)
}).annotations({ identifier: "Worker" })
export type Worker = typeof Worker.Type

export const TranscriptEntry = Schema.Struct({
  seq: Schema.Int.pipe(Schema.positive()),
  at: Schema.String,
  role: EntryRole,
  content: Schema.String,
  turn: NonNegativeInt
}).annotations({ identifier: "TranscriptEntry" })
export type TranscriptEntry = typeof TranscriptEntry.Type

export const TranscriptPage = Schema.Struct({
  workerId: WorkerId,
  entries: Schema.Array(TranscriptEntry),
  nextAfter: Schema.NullOr(NonNegativeInt),
  lastSeq: NonNegativeInt
}).annotations({ identifier: "TranscriptPage" })
export type TranscriptPage = typeof TranscriptPage.Type

export const WorkerCounts = Schema.Struct({
  total: NonNegativeInt,
  idle: NonNegativeInt,
  busy: NonNegativeInt,
  stopped: NonNegativeInt,
  failed: NonNegativeInt
}).annotations({ identifier: "WorkerCounts" })
export type WorkerCounts = typeof WorkerCounts.Type

export const RuntimeLimits = Schema.Struct({
  maxWorkers: NonNegativeInt,
  maxInputBytes: NonNegativeInt,
  maxTranscriptPage: NonNegativeInt
}).annotations({ identifier: "RuntimeLimits" })
export type RuntimeLimits = typeof RuntimeLimits.Type

export const RuntimeInfo = Schema.Struct({
  runtimeId: RuntimeId,
  displayName: Schema.NullOr(Schema.String),
  version: Schema.String,
  status: Schema.Literal("running", "draining"),
  store: Schema.Literal("memory", "sqlite"),
  startedAt: Schema.String,
  profiles: Schema.Array(Schema.String),
  workers: WorkerCounts,
  limits: RuntimeLimits
}).annotations({ identifier: "RuntimeInfo" })
export type RuntimeInfo = typeof RuntimeInfo.Type

export const WorkerList = Schema.Struct({
  workers: Schema.Array(Worker),
  nextAfter: Schema.NullOr(WorkerId)
}).annotations({ identifier: "WorkerList" })
export type WorkerList = typeof WorkerList.Type

// Requests ------------------------------------------------------------------

export const CreateWorker = Schema.Struct({
  profile: Schema.optional(Schema.String),
  metadata: Schema.optional(Metadata)
}).annotations({ identifier: "CreateWorker", ...strict })
export type CreateWorker = typeof CreateWorker.Type

export const WorkerInput = Schema.Struct({
  content: Schema.String.pipe(Schema.minLength(1, { message: () => "content must not be empty" })),
  kind: Schema.optional(InputKind)
}).annotations({ identifier: "WorkerInput", ...strict })
export type WorkerInput = typeof WorkerInput.Type

export const InputAccepted = Schema.Struct({
  worker: Worker,
  entry: TranscriptEntry
}).annotations({ identifier: "InputAccepted" })
export type InputAccepted = typeof InputAccepted.Type

export const StopRequest = Schema.Struct({
  reason: Schema.optional(Schema.String)
}).annotations({ identifier: "StopRequest", ...strict })
export type StopRequest = typeof StopRequest.Type

export const CancelRequest = Schema.Struct({
  reason: Schema.optional(Schema.String)
}).annotations({ identifier: "CancelRequest", ...strict })
export type CancelRequest = typeof CancelRequest.Type

export const CancelResult = Schema.Struct({
  worker: Worker,
  cancelled: Schema.Boolean
}).annotations({ identifier: "CancelResult" })
export type CancelResult = typeof CancelResult.Type

export const PageLimit = Schema.Int.pipe(Schema.between(1, MAX_PAGE)).annotations({
  identifier: "PageLimit",
  description: `1 to ${MAX_PAGE}, default ${DEFAULT_PAGE}`
})

export const ListQuery = Schema.Struct({
  status: Schema.optional(WorkerStatus),
  limit: Schema.optional(PageLimit),
  after: Schema.optional(Schema.String)
}).annotations({ identifier: "ListQuery" })
export type ListQuery = typeof ListQuery.Type

export const TranscriptQuery = Schema.Struct({
  after: Schema.optional(NonNegativeInt),
  limit: Schema.optional(PageLimit)
}).annotations({ identifier: "TranscriptQuery" })
export type TranscriptQuery = typeof TranscriptQuery.Type

/**
 * Domain schemas of the Worker Runtime: the shapes of docs/rest.md, field for
 * field. Request bodies are strict (an unknown field is a decode failure) so
 * that embedded callers and HTTP callers are held to the same contract; query
 * objects ignore unknown keys, as URL query strings do.
 */
import * as Schema from "effect/Schema"
import { DEFAULT_PAGE, MAX_PAGE } from "./RuntimeOptions.js"

/** Shared by every request body schema: unknown fields are errors, and anything but an object is one. */
const strict = { parseOptions: { onExcessProperty: "error" }, message: () => "must be a JSON object" } as const

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

/** An ISO 8601 timestamp in UTC, e.g. `2026-11-24T12:00:00.000Z`. */
export const Timestamp = Schema.String.annotations({
  identifier: "Timestamp",
  description: "An ISO 8601 date-time in UTC",
  examples: ["2026-11-24T12:00:00.000Z"],
  jsonSchema: { format: "date-time" }
})

export const WorkerStatus = Schema.Literal("idle", "busy", "stopped", "failed").annotations({
  identifier: "WorkerStatus",
  description: "idle: ready for input; busy: a turn is in flight; stopped and failed: terminal",
  message: () => "must be one of \"idle\", \"busy\", \"stopped\", \"failed\""
})
export type WorkerStatus = typeof WorkerStatus.Type

export const InputKind = Schema.Literal("user", "system").annotations({
  identifier: "InputKind",
  description: "Who the input speaks for; the engine is told",
  message: () => "must be \"user\" or \"system\""
})
export type InputKind = typeof InputKind.Type

export const EntryRole = Schema.Literal("user", "system", "worker", "runtime").annotations({
  identifier: "EntryRole",
  description: "user and system: inputs; worker: the engine's output; runtime: what happened to a turn"
})
export type EntryRole = typeof EntryRole.Type

export const TurnOutcome = Schema.Literal("completed", "failed", "cancelled", "interrupted", "stopped").annotations({
  identifier: "TurnOutcome",
  description: "How a turn ended: completed on its own, failed, cancelled, interrupted (shutdown or restart), " +
    "stopped (the Worker was stopped)"
})
export type TurnOutcome = typeof TurnOutcome.Type

export const MAX_METADATA_KEYS = 32
export const MAX_METADATA_KEY_LENGTH = 64
export const MAX_METADATA_VALUE_LENGTH = 1024

/** Length in Unicode code points, as JSON Schema's `maxLength` counts. */
const codePoints = (text: string): number => {
  let count = 0
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    // A high surrogate followed by a low one is one code point.
    if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1)
      if (next >= 0xdc00 && next <= 0xdfff) i++
    }
    count++
  }
  return count
}

const MetadataKey = Schema.String.pipe(
  Schema.filter((key) => {
    if (key === "") return "must not be empty"
    if (codePoints(key) > MAX_METADATA_KEY_LENGTH) return `must be at most ${MAX_METADATA_KEY_LENGTH} characters`
    // A plain object cannot hold it as data: it would be dropped, not stored.
    if (key === "__proto__") return "__proto__ is reserved"
    return true
  }, { jsonSchema: { minLength: 1, maxLength: MAX_METADATA_KEY_LENGTH, not: { const: "__proto__" } } })
)

const MetadataValue = Schema.String.pipe(
  Schema.filter(
    (value) =>
      codePoints(value) <= MAX_METADATA_VALUE_LENGTH || `must be at most ${MAX_METADATA_VALUE_LENGTH} characters`,
    { jsonSchema: { maxLength: MAX_METADATA_VALUE_LENGTH } }
  )
)

export const Metadata = Schema.Record({ key: MetadataKey, value: MetadataValue }).pipe(
  Schema.filter(
    (record) => Object.keys(record).length <= MAX_METADATA_KEYS || `must have at most ${MAX_METADATA_KEYS} keys`,
    { jsonSchema: { maxProperties: MAX_METADATA_KEYS } }
  )
).annotations({
  identifier: "Metadata",
  description: `The Backend's own labels: string keys (1 to ${MAX_METADATA_KEY_LENGTH} characters, not ` +
    `"__proto__") to string values (at most ${MAX_METADATA_VALUE_LENGTH} characters), at most ` +
    `${MAX_METADATA_KEYS} keys; lengths count Unicode code points`,
  examples: [{ team: "docs", user: "u1" }]
})
export type Metadata = typeof Metadata.Type

const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative())
const PositiveInt = Schema.Int.pipe(Schema.positive())

export const Worker = Schema.Struct({
  id: WorkerId,
  runtimeId: RuntimeId,
  profile: Schema.String.annotations({ description: "The profile (engine configuration) the Worker runs with" }),
  status: WorkerStatus,
  createdAt: Timestamp,
  updatedAt: Timestamp,
  turn: NonNegativeInt.annotations({ description: "How many turns have started" }),
  lastSeq: NonNegativeInt.annotations({ description: "The last transcript sequence number (0 when empty)" }),
  metadata: Metadata,
  queued: NonNegativeInt.annotations({ description: "Inputs waiting under ifBusy: enqueue (0 otherwise)" }),
  stopReason: Schema.optionalWith(
    Schema.String.annotations({ description: "Why it was stopped: the reason given, or \"stopped\"" }),
    { exact: true }
  )
}).annotations({
  identifier: "Worker",
  description: "A long-lived agent session",
  examples: [{
    id: WorkerId.make("01JDQ5V7M0X4N8B6Z2C9K3F1TQ"),
    runtimeId: RuntimeId.make("01JDQ5T2A9E1R7W3Y5U8I0O2PD"),
    profile: "default",
    status: "idle",
    createdAt: "2026-11-24T12:00:00.000Z",
    updatedAt: "2026-11-24T12:00:01.000Z",
    turn: 1,
    lastSeq: 3,
    metadata: { team: "docs" },
    queued: 0
  }]
})
export type Worker = typeof Worker.Type

export const TranscriptEntry = Schema.Struct({
  seq: PositiveInt.annotations({ description: "1, 2, 3…: contiguous per Worker" }),
  at: Timestamp,
  role: EntryRole,
  content: Schema.String,
  turn: NonNegativeInt.annotations({ description: "The turn the entry belongs to (0: none)" }),
  outcome: Schema.optionalWith(TurnOutcome, { exact: true }).annotations({
    description: "On runtime entries: what happened to the turn (every turn ends with exactly one)"
  })
}).annotations({
  identifier: "TranscriptEntry",
  description: "One entry of a Worker's transcript",
  examples: [{ seq: 1, at: "2026-11-24T12:00:00.500Z", role: "user", content: "hello", turn: 1 }]
})
export type TranscriptEntry = typeof TranscriptEntry.Type

export const TurnStatus = Schema.Literal("running", "completed", "failed", "cancelled", "interrupted", "stopped")
  .annotations({ identifier: "TurnStatus", description: "running, or the turn's outcome" })
export type TurnStatus = typeof TurnStatus.Type

export const TokenUsage = Schema.Struct({
  inputTokens: NonNegativeInt.annotations({ description: "Tokens the model read (the prompt)" }),
  outputTokens: NonNegativeInt.annotations({ description: "Tokens the model wrote" })
}).annotations({
  identifier: "TokenUsage",
  description: "Tokens a model turn used, as the model's server reported them"
})
export type TokenUsage = typeof TokenUsage.Type

export const Turn = Schema.Struct({
  workerId: WorkerId,
  turn: PositiveInt.annotations({ description: "The turn's number, 1 for the first" }),
  status: TurnStatus,
  inputSeq: PositiveInt.annotations({ description: "The seq of the input that started it" }),
  lastSeq: PositiveInt.annotations({ description: "The seq of its last entry so far" }),
  startedAt: Timestamp,
  endedAt: Schema.NullOr(Timestamp).annotations({ description: "null while it runs" }),
  reason: Schema.NullOr(Schema.String).annotations({
    description: "Why it ended as it did (a failure, a cancel reason); null while it runs or when it completed"
  }),
  usage: Schema.NullOr(TokenUsage).annotations({
    description: "The tokens a model engine reported for the turn; null while it runs, when the engine does not " +
      "report them, or when the turn ended before the model's server said"
  })
}).annotations({
  identifier: "Turn",
  description: "One turn of a Worker",
  examples: [{
    workerId: WorkerId.make("01JDQ5V7M0X4N8B6Z2C9K3F1TQ"),
    turn: 1,
    status: "completed",
    inputSeq: 1,
    lastSeq: 3,
    startedAt: "2026-11-24T12:00:00.500Z",
    endedAt: "2026-11-24T12:00:01.000Z",
    reason: null,
    usage: { inputTokens: 12, outputTokens: 30 }
  }]
})
export type Turn = typeof Turn.Type

export const WorkerEvent = Schema.Union(
  Schema.Struct({ type: Schema.Literal("worker"), worker: Worker }),
  Schema.Struct({ type: Schema.Literal("entry"), entry: TranscriptEntry }),
  Schema.Struct({
    type: Schema.Literal("delta"),
    turn: PositiveInt.annotations({ description: "The turn the text belongs to" }),
    text: Schema.String.annotations({ description: "The next piece of the model's text" })
  })
).annotations({
  identifier: "WorkerEvent",
  description: "The Worker as it is now, a new transcript entry, or a piece of a model's text as it streams " +
    "(live only: never stored, not replayed)"
})
export type WorkerEvent = typeof WorkerEvent.Type

export const TranscriptPage = Schema.Struct({
  workerId: WorkerId,
  entries: Schema.Array(TranscriptEntry),
  nextAfter: Schema.NullOr(NonNegativeInt).annotations({
    description: "The `after` of the next page; null on the last page"
  }),
  lastSeq: NonNegativeInt.annotations({ description: "The Worker's last sequence number" })
}).annotations({
  identifier: "TranscriptPage",
  description: "Entries in seq order",
  examples: [{
    workerId: WorkerId.make("01JDQ5V7M0X4N8B6Z2C9K3F1TQ"),
    entries: [{ seq: 1, at: "2026-11-24T12:00:00.500Z", role: "user", content: "hello", turn: 1 }],
    nextAfter: 1,
    lastSeq: 2
  }]
})
export type TranscriptPage = typeof TranscriptPage.Type

export const WorkerCounts = Schema.Struct({
  total: NonNegativeInt,
  idle: NonNegativeInt,
  busy: NonNegativeInt,
  stopped: NonNegativeInt,
  failed: NonNegativeInt
}).annotations({ identifier: "WorkerCounts", description: "Workers by status" })
export type WorkerCounts = typeof WorkerCounts.Type

export const RuntimeLimits = Schema.Struct({
  maxWorkers: NonNegativeInt.annotations({ description: "Workers not stopped, at once" }),
  maxInputBytes: NonNegativeInt.annotations({ description: "Largest input content, in UTF-8 bytes" }),
  maxTranscriptPage: NonNegativeInt.annotations({ description: "Largest page of a list or transcript" })
}).annotations({ identifier: "RuntimeLimits", description: "The limits this Runtime enforces" })
export type RuntimeLimits = typeof RuntimeLimits.Type

export const ClusterInfo = Schema.Struct({
  runner: Schema.String.annotations({ description: "This runner's address (host:port), where the others reach it" }),
  runners: NonNegativeInt.annotations({ description: "Healthy runners in the cluster" }),
  shards: NonNegativeInt.annotations({ description: "Shards this runner owns" }),
  totalShards: NonNegativeInt.annotations({ description: "Shards in the cluster" })
}).annotations({ identifier: "ClusterInfo", description: "This runner of a cluster (docs/cluster.md)" })
export type ClusterInfo = typeof ClusterInfo.Type

export const RuntimeInfo = Schema.Struct({
  runtimeId: RuntimeId,
  displayName: Schema.NullOr(Schema.String),
  version: Schema.String,
  status: Schema.Literal("running", "draining").annotations({
    description: "draining: shutting down; creates and inputs are refused"
  }),
  store: Schema.String.annotations({
    description: "The store's name: memory, sqlite (built in), or another store's own",
    examples: ["memory", "sqlite"]
  }),
  startedAt: Timestamp,
  profiles: Schema.Array(Schema.String).annotations({ description: "The profiles Workers can be created with" }),
  workers: WorkerCounts,
  limits: RuntimeLimits,
  // Optional when read: a runtime older than cluster mode does not send it.
  cluster: Schema.optionalWith(
    Schema.NullOr(ClusterInfo).annotations({ description: "This runner of a cluster; null outside cluster mode" }),
    { default: () => null }
  )
}).annotations({
  identifier: "RuntimeInfo",
  description: "What this Runtime is and holds",
  examples: [{
    runtimeId: RuntimeId.make("01JDQ5T2A9E1R7W3Y5U8I0O2PD"),
    displayName: null,
    version: "0.1.0",
    status: "running",
    store: "memory",
    startedAt: "2026-11-24T11:59:00.000Z",
    profiles: ["default"],
    workers: { total: 1, idle: 1, busy: 0, stopped: 0, failed: 0 },
    limits: { maxWorkers: 10000, maxInputBytes: 1048576, maxTranscriptPage: 1000 },
    cluster: null
  }]
})
export type RuntimeInfo = typeof RuntimeInfo.Type

export const WorkerList = Schema.Struct({
  workers: Schema.Array(Worker),
  nextAfter: Schema.NullOr(WorkerId).annotations({
    description: "The `after` of the next page (the last Worker's id); null on the last page"
  })
}).annotations({
  identifier: "WorkerList",
  description: "Workers in creation order",
  examples: [{ workers: [], nextAfter: null }]
})
export type WorkerList = typeof WorkerList.Type

// Requests ------------------------------------------------------------------

// JSON has no undefined: an absent field is the only way to leave one out.
const optional = <S extends Schema.Schema.Any>(schema: S) => Schema.optionalWith(schema, { exact: true })

/** A client's key for a create, so that a retried create makes one Worker. */
export const IdempotencyKey = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9._:-]{1,128}$/, {
    message: () => "must be 1 to 128 characters of letters, digits, '.', '_', ':' or '-'"
  })
).annotations({
  identifier: "IdempotencyKey",
  description: "1 to 128 characters of [A-Za-z0-9._:-]; a create with a known key returns that Worker"
})

export const CreateWorker = Schema.Struct({
  profile: optional(Schema.String.annotations({ description: "A configured profile; default \"default\"" })),
  metadata: optional(Metadata),
  idempotencyKey: optional(IdempotencyKey)
}).annotations({
  identifier: "CreateWorker",
  description: "What to create",
  examples: [{ profile: "default", metadata: { team: "docs" }, idempotencyKey: "chat-42" }],
  ...strict
})
export type CreateWorker = typeof CreateWorker.Type

export const IfBusy = Schema.Literal("reject", "enqueue", "interrupt").annotations({
  identifier: "IfBusy",
  description: "On a busy Worker: reject (Busy, the default), enqueue (run after the turns before it), " +
    "interrupt (cancel the turn in flight and start this one)",
  message: () => "must be \"reject\", \"enqueue\" or \"interrupt\""
})
export type IfBusy = typeof IfBusy.Type

export const WorkerInput = Schema.Struct({
  content: Schema.String.pipe(Schema.minLength(1, { message: () => "must not be empty" })).annotations({
    description: "The input; at most maxInputBytes UTF-8 bytes"
  }),
  kind: optional(InputKind),
  ifBusy: optional(IfBusy)
}).annotations({
  identifier: "WorkerInput",
  description: "An input for the Worker; it starts a turn",
  examples: [{ content: "hello", kind: "user" }],
  ...strict
})
export type WorkerInput = typeof WorkerInput.Type

export const InputAccepted = Schema.Struct({
  worker: Worker,
  queued: Schema.Boolean.annotations({ description: "true when the input waits for the turns before it" }),
  entry: optional(TranscriptEntry.annotations({ description: "The recorded input, when its turn started now" })),
  position: optional(PositiveInt.annotations({ description: "The input's place in the queue (1 = next), when queued" }))
}).annotations({
  identifier: "InputAccepted",
  description: "The input was recorded and its turn started (entry), or it was queued (position)"
})
export type InputAccepted = typeof InputAccepted.Type

const Reason = Schema.String.annotations({ description: "Recorded in the transcript" })

export const StopRequest = Schema.Struct({
  reason: optional(Reason)
}).annotations({
  identifier: "StopRequest",
  description: "Why the Worker is stopped",
  examples: [{ reason: "the user closed the chat" }],
  ...strict
})
export type StopRequest = typeof StopRequest.Type

export const CancelRequest = Schema.Struct({
  reason: optional(Reason),
  clearQueue: optional(
    Schema.Boolean.annotations({ description: "Also drop the queued inputs (default false: the next one starts)" })
  )
}).annotations({
  identifier: "CancelRequest",
  description: "Why the turn is cancelled",
  examples: [{ reason: "the user pressed stop", clearQueue: true }],
  ...strict
})
export type CancelRequest = typeof CancelRequest.Type

export const CancelResult = Schema.Struct({
  worker: Worker,
  cancelled: Schema.Boolean.annotations({ description: "false when no turn was in flight (nothing recorded)" })
}).annotations({ identifier: "CancelResult", description: "The Worker after the cancel" })
export type CancelResult = typeof CancelResult.Type

export const PageLimit = Schema.Int.pipe(
  Schema.between(1, MAX_PAGE, { message: () => `must be an integer from 1 to ${MAX_PAGE}` })
).annotations({ description: `Page size, 1 to ${MAX_PAGE}, default ${DEFAULT_PAGE}` })

export const MAX_METADATA_FILTERS = 4

export const MetadataFilter = Schema.Record({ key: MetadataKey, value: Schema.String }).pipe(
  Schema.filter(
    (record) => Object.keys(record).length <= MAX_METADATA_FILTERS || `must have at most ${MAX_METADATA_FILTERS} pairs`
  )
).annotations({ description: `Exact metadata matches, at most ${MAX_METADATA_FILTERS} pairs, all must match` })

export const ListQuery = Schema.Struct({
  status: optional(WorkerStatus),
  limit: optional(PageLimit),
  after: optional(
    Schema.String.annotations({ description: "A position: only Workers whose id sorts after it (a page's nextAfter)" })
  ),
  metadata: optional(MetadataFilter)
}).annotations({ identifier: "ListQuery" })
export type ListQuery = typeof ListQuery.Type

/** A transcript position: entries with a greater seq come after it. */
export const SeqCursor = NonNegativeInt.annotations({
  description: "Only entries with a greater seq (default 0)",
  message: () => "must be a non-negative integer"
})

export const TranscriptQuery = Schema.Struct({
  after: optional(SeqCursor),
  limit: optional(PageLimit)
}).annotations({ identifier: "TranscriptQuery" })
export type TranscriptQuery = typeof TranscriptQuery.Type

export const MAX_WAIT_MS = 60_000

export const TurnQuery = Schema.Struct({
  waitMs: optional(
    Schema.Int.pipe(Schema.between(0, MAX_WAIT_MS, { message: () => `must be an integer from 0 to ${MAX_WAIT_MS}` }))
      .annotations({ description: "Wait up to this long (ms) for the turn to end; default 0" })
  )
}).annotations({ identifier: "TurnQuery" })
export type TurnQuery = typeof TurnQuery.Type

export const EventsQuery = Schema.Struct({
  after: optional(SeqCursor.annotations({ description: "Replay entries with a greater seq (default 0)" }))
}).annotations({ identifier: "EventsQuery" })
export type EventsQuery = typeof EventsQuery.Type

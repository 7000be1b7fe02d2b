/**
 * Where Workers and transcripts live. `RuntimeLive` keeps the live state in
 * memory and calls the store to make each change durable before it answers;
 * the store never decides Worker semantics.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

import type { TranscriptEntry, Worker, WorkerStatus } from "./Domain.js"

/** The store could not do what was asked; `RuntimeLive` answers `Unavailable`. */
export class StoreError extends Schema.TaggedError<StoreError>()("StoreError", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

export interface TranscriptRange {
  readonly after: number
  readonly limit: number
  readonly maxBytes?: number | undefined
}

export interface ListWorkersQuery {
  readonly status?: WorkerStatus | undefined
  /** Only Workers whose id sorts after this one. */
  readonly after?: string | undefined
  readonly limit: number
}

export interface RuntimeStoreService {
  readonly kind: "memory" | "sqlite"
  /** Why the store can no longer be used (e.g. its file was deleted), if it cannot. */
  readonly failure: () => string | undefined
  /**
   * The runtime id: the one stored (durable stores), else `requested`, else
   * `generate()`; it is stored when new. A requested id that differs from a
   * stored one fails.
   */
  readonly runtimeId: (requested: string | undefined, generate: () => string) => Effect.Effect<string, StoreError>
  /** Every Worker, sorted by id; called once at start. */
  readonly loadWorkers: Effect.Effect<ReadonlyArray<Worker>, StoreError>
  readonly insertWorker: (worker: Worker) => Effect.Effect<void, StoreError>
  /**
   * Appends `entries` (whose seqs follow the stored last one) and replaces the
   * Worker with `worker`, atomically: both or neither.
   */
  readonly commit: (worker: Worker, entries: ReadonlyArray<TranscriptEntry>) => Effect.Effect<void, StoreError>
  /**
   * Entries with `seq > after`, in order, at most `limit`, and stopping before
   * their content would pass `maxBytes` UTF-8 bytes (at least one entry):
   * O(limit), not O(transcript).
   */
  readonly transcript: (
    workerId: string,
    range: TranscriptRange
  ) => Effect.Effect<ReadonlyArray<TranscriptEntry>, StoreError>
  /** Workers sorted by id, filtered by status, starting after the cursor. */
  readonly listWorkers: (query: ListWorkersQuery) => Effect.Effect<ReadonlyArray<Worker>, StoreError>
}

export class RuntimeStore extends Context.Tag("worker-runtime/RuntimeStore")<RuntimeStore, RuntimeStoreService>() {}

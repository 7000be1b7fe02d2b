/**
 * Where Workers, transcripts, turns and queued inputs live. `RuntimeLive`
 * keeps the live state in memory and calls the store to make each change
 * durable before it answers; the store never decides Worker semantics.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { InputKind, Metadata, TranscriptEntry, Turn, Worker, WorkerId, WorkerStatus } from "./Domain.js"
import { Unavailable } from "./Errors.js"
import { RETRY_AFTER_MS } from "./RuntimeOptions.js"

/** The store could not do what was asked; `RuntimeLive` answers `Unavailable`. */
export class StoreError extends Schema.TaggedError<StoreError>()("StoreError", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

/** A store failure as callers see it: logged (`error`, it needs an operator) and answered `Unavailable`. */
export const asUnavailable = <A, R>(effect: Effect.Effect<A, StoreError, R>): Effect.Effect<A, Unavailable, R> =>
  effect.pipe(
    Effect.tapError((error) => Effect.logError("store failure", error.message)),
    Effect.mapError((error) =>
      new Unavailable({ message: `store failure: ${error.message}`, retryAfterMs: RETRY_AFTER_MS })
    )
  )

/** An input accepted under `ifBusy: enqueue`, waiting for its turn. */
export interface QueuedInput {
  /**
   * Increasing along the Worker's queue (the queue's order) and unique among
   * its queued inputs; an id dropped from the queue may be given again.
   */
  readonly id: number
  readonly content: string
  readonly kind: InputKind
  readonly at: string
}

/**
 * What memory keeps of a queued input: its place and size, never its
 * content, which stays in the store until its turn starts (`queuedContent`).
 */
export interface QueuedRef {
  readonly id: number
  readonly kind: InputKind
  readonly at: string
  /** Its content's UTF-8 bytes. */
  readonly bytes: number
}

/**
 * An input's id and what the input call answered, recorded in the commit
 * that records the input (cluster mode: the id its persisted message
 * carries). A redelivery of the message finds it and answers the same,
 * recording nothing again (docs/cluster.md, "Input at most once").
 */
export interface InputReceipt {
  readonly inputId: string
  /** The Worker as the input left it, but for what no input changes (its id, profile, metadata, …). */
  readonly worker: Pick<Worker, "status" | "turn" | "lastSeq" | "queued" | "updatedAt">
  /** The seq of the input's entry, when its turn started with it. */
  readonly seq: number | undefined
  /** Its place in the queue, when it was queued. */
  readonly position: number | undefined
}

/** Receipts a store keeps per Worker, its latest: a redelivery comes soon after its input, or its reply was stored. */
export const RECEIPTS_PER_WORKER = 100

/** A Worker as stored, with what only the store keeps about it. */
export interface StoredWorker {
  readonly worker: Worker
  readonly idempotencyKey: string | undefined
  /** Its queued inputs, in order (without their content). */
  readonly queue: ReadonlyArray<QueuedRef>
}

/** Workers by status, as the store counts them. */
export type WorkerCounts = Readonly<Record<WorkerStatus, number>>

/** What `insertWorker` did: stored the Worker, or found its key taken by `existing` (as stored). */
export type InsertResult =
  | { readonly created: true }
  | { readonly created: false; readonly existing: Worker }

/** One atomic change to one Worker: all of it, or none. */
export interface Change {
  /** The Worker as it is after the change. */
  readonly worker: Worker
  /** New entries; their seqs follow the stored last one. */
  readonly entries: ReadonlyArray<TranscriptEntry>
  /** Turn records to insert or replace (a turn's start, its end). */
  readonly turns?: ReadonlyArray<Turn> | undefined
  /** An input to queue. */
  readonly enqueue?: QueuedInput | undefined
  /** Queued inputs to remove, by id (started, or dropped). */
  readonly dequeue?: ReadonlyArray<number> | undefined
  /**
   * The input's id and answer, when its caller gave an id (cluster mode).
   * A commit whose receipt's id the Worker has already fails, and records nothing.
   */
  readonly receipt?: InputReceipt | undefined
}

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
  /** Exact matches, all of them. */
  readonly metadata?: Metadata | undefined
}

export interface RuntimeStoreService {
  /** The store's name, as `RuntimeInfo.store` reports it (`memory`, `sqlite`, …). */
  readonly kind: string
  /** Keeps what it holds across restarts (queued inputs then wait for the next start). */
  readonly durable: boolean
  /** Why the store can no longer be used (e.g. its file was deleted), if it cannot. */
  readonly failure: () => string | undefined
  /**
   * The runtime id: the one stored (durable stores), else `requested`, else
   * `generate()`; it is stored when new. A requested id that differs from a
   * stored one fails.
   */
  readonly runtimeId: (requested: string | undefined, generate: () => string) => Effect.Effect<string, StoreError>
  /**
   * Every Worker, sorted by id, with its key and queue: O(Workers), for
   * tools and tests. The Runtime never calls it (it activates one Worker at
   * a time with `getWorker`).
   */
  readonly loadWorkers: Effect.Effect<ReadonlyArray<StoredWorker>, StoreError>
  /** One Worker with its key and queue (what activating it loads), if stored: O(log Workers + its queue). */
  readonly getWorker: (workerId: WorkerId) => Effect.Effect<StoredWorker | undefined, StoreError>
  /** The Worker an idempotency key made, if any: O(log Workers). */
  readonly workerByKey: (idempotencyKey: string) => Effect.Effect<Worker | undefined, StoreError>
  /** Ids of the Workers stored `busy` (a turn in flight), sorted: an index read, O(busy). */
  readonly busyWorkers: Effect.Effect<ReadonlyArray<WorkerId>, StoreError>
  /** Ids of the Workers with queued inputs, sorted: O(queued inputs). */
  readonly queuedWorkers: Effect.Effect<ReadonlyArray<WorkerId>, StoreError>
  /** How many Workers are stored in each status: O(1), whatever the number of Workers. */
  readonly counts: Effect.Effect<WorkerCounts, StoreError>
  /** The greatest Worker id stored (ids sort by creation), if any: O(log Workers). */
  readonly lastWorkerId: Effect.Effect<string | undefined, StoreError>
  /**
   * Ids of `stopped` or `failed` Workers last updated before `before` (an ISO
   * time), oldest first, at most `limit`: an index read, O(limit).
   */
  readonly expired: (before: string, limit: number) => Effect.Effect<ReadonlyArray<WorkerId>, StoreError>
  /**
   * Stores a new Worker, or, when its idempotency key is taken, nothing: the
   * key is unique in the store (insert-or-return-existing), so two creates
   * with one key make one Worker even from two processes.
   */
  readonly insertWorker: (
    worker: Worker,
    idempotencyKey: string | undefined
  ) => Effect.Effect<InsertResult, StoreError>
  readonly commit: (change: Change) => Effect.Effect<void, StoreError>
  /** The receipt committed with the Worker's input `inputId`, if the store keeps it: O(log receipts). */
  readonly inputReceipt: (workerId: WorkerId, inputId: string) => Effect.Effect<InputReceipt | undefined, StoreError>
  /** The content of a queued input (committed with `enqueue`, not yet dequeued). */
  readonly queuedContent: (workerId: WorkerId, id: number) => Effect.Effect<string, StoreError>
  /**
   * Entries with `seq > after`, in order, at most `limit`, and stopping before
   * their content would pass `maxBytes` UTF-8 bytes (at least one entry):
   * O(limit), not O(transcript).
   */
  readonly transcript: (
    workerId: WorkerId,
    range: TranscriptRange
  ) => Effect.Effect<ReadonlyArray<TranscriptEntry>, StoreError>
  /** One turn's record: O(log n) in the transcript's size. */
  readonly turn: (workerId: WorkerId, turn: number) => Effect.Effect<Turn | undefined, StoreError>
  /** Workers sorted by id, filtered by status and metadata, after the cursor: O(page), not O(Workers). */
  readonly listWorkers: (query: ListWorkersQuery) => Effect.Effect<ReadonlyArray<Worker>, StoreError>
  /** Removes the Worker and everything of it: transcript, turns, queue, idempotency key, input receipts. */
  readonly deleteWorker: (workerId: WorkerId) => Effect.Effect<void, StoreError>
}

export class RuntimeStore extends Context.Tag("worker-runtime/RuntimeStore")<RuntimeStore, RuntimeStoreService>() {}

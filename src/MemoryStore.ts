/**
 * The in-memory store: the default for embedded use. Nothing survives the
 * process. Transcripts are arrays indexed by `seq - 1` and turn records by
 * `turn - 1`, so a page is a slice and a turn a lookup; Worker ids are kept
 * sorted (`SortedIds`), in all and by status and by metadata pair, for cursor
 * pagination that starts where the page starts.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { TranscriptEntry, Turn, Worker, WorkerId, WorkerStatus } from "./Domain.js"
import {
  type InputReceipt,
  type InsertResult,
  type ListWorkersQuery,
  type QueuedInput,
  RECEIPTS_PER_WORKER,
  RuntimeStore,
  type RuntimeStoreService,
  type StoredWorker,
  StoreError,
  type WorkerCounts
} from "./RuntimeStore.js"
import { SortedIds } from "./SortedIds.js"
import { utf8Length } from "./Validation.js"

const EMPTY: ReadonlyArray<TranscriptEntry> = []

/** How many of `entries` fit in `maxBytes` of content, at least one. */
export const fittingCount = (entries: ReadonlyArray<TranscriptEntry>, maxBytes: number): number => {
  let bytes = 0
  for (let i = 0; i < entries.length; i++) {
    bytes += utf8Length(entries[i]!.content)
    if (bytes > maxBytes) return Math.max(1, i)
  }
  return entries.length
}

const pairKey = (key: string, value: string) => `${key}\u0000${value}`

export const makeMemoryStore = (): RuntimeStoreService => {
  const workers = new Map<string, Worker>()
  const ids = new SortedIds()
  // Ids by status and by metadata pair, sorted, as SQLite's indexes: a
  // filtered page walks the smallest of them from its cursor.
  const byStatus: Record<WorkerStatus, SortedIds> = {
    idle: new SortedIds(),
    busy: new SortedIds(),
    stopped: new SortedIds(),
    failed: new SortedIds()
  }
  const byPair = new Map<string, SortedIds>()
  const keys = new Map<string, string>()
  const byKey = new Map<string, string>()
  const transcripts = new Map<string, Array<TranscriptEntry>>()
  const turns = new Map<string, Array<Turn>>()
  const queues = new Map<string, Array<QueuedInput>>()
  // Ids of the Workers whose queue is not empty, sorted like the others.
  const withQueue = new SortedIds()
  // Input receipts by Worker, then input id, oldest first (the order they are forgotten in).
  const receipts = new Map<string, Map<string, InputReceipt>>()
  // The greatest id, or undefined with `lastKnown` false after the Worker
  // that had it was deleted: found again when next asked, not on the delete.
  let last: string | undefined
  let lastKnown = true

  const storedWorker = (worker: Worker): StoredWorker => ({
    worker,
    idempotencyKey: keys.get(worker.id),
    queue: (queues.get(worker.id) ?? []).map(({ at, content, id, kind }) => ({
      id,
      kind,
      at,
      bytes: utf8Length(content)
    }))
  })

  /** The Workers of `list`'s ids, as their branded ids. */
  const idsOf = (list: SortedIds): Array<WorkerId> => list.toArray().map((id) => workers.get(id)!.id)

  /** Stopped and failed Workers updated before `before`, oldest first (then by id, as SQLite's index). */
  const expired = (before: string, limit: number): Array<WorkerId> => {
    if (limit <= 0) return []
    const found: Array<Worker> = []
    for (const status of ["stopped", "failed"] as const) {
      byStatus[status].forEachAfter(undefined, (id) => {
        const worker = workers.get(id)!
        if (worker.updatedAt < before) found.push(worker)
        return true
      })
    }
    found.sort((a, b) =>
      a.updatedAt < b.updatedAt ? -1 : a.updatedAt > b.updatedAt ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0
    )
    return found.slice(0, limit).map((worker) => worker.id)
  }

  const indexPairs = (worker: Worker, add: boolean) => {
    for (const [key, value] of Object.entries(worker.metadata)) {
      const pair = pairKey(key, value)
      let list = byPair.get(pair)
      if (list === undefined) {
        if (!add) continue
        list = new SortedIds()
        byPair.set(pair, list)
      }
      if (add) list.add(worker.id)
      else list.delete(worker.id)
      if (list.size === 0) byPair.delete(pair)
    }
  }

  const listWorkers = ({ after, limit, metadata, status }: ListWorkersQuery): Array<Worker> => {
    const pairs = Object.entries(metadata ?? {})
    let from = status === undefined ? ids : byStatus[status]
    for (const [key, value] of pairs) {
      const list = byPair.get(pairKey(key, value))
      if (list === undefined) return []
      if (list.size < from.size) from = list
    }
    const matches = (worker: Worker) =>
      (status === undefined || worker.status === status) &&
      pairs.every(([key, value]) => Object.hasOwn(worker.metadata, key) && worker.metadata[key] === value)
    const out: Array<Worker> = []
    if (limit <= 0) return out
    from.forEachAfter(after, (id) => {
      const worker = workers.get(id)!
      if (matches(worker)) out.push(worker)
      return out.length < limit
    })
    return out
  }

  return {
    kind: "memory",
    durable: false,
    failure: () => undefined,
    runtimeId: (requested, generate) => Effect.sync(() => requested ?? generate()),
    loadWorkers: Effect.sync(() => ids.toArray().map((id) => storedWorker(workers.get(id)!))),
    getWorker: (workerId) =>
      Effect.sync(() => {
        const worker = workers.get(workerId)
        return worker === undefined ? undefined : storedWorker(worker)
      }),
    workerByKey: (idempotencyKey) =>
      Effect.sync(() => {
        const holder = byKey.get(idempotencyKey)
        return holder === undefined ? undefined : workers.get(holder)
      }),
    busyWorkers: Effect.sync(() => idsOf(byStatus.busy)),
    queuedWorkers: Effect.sync(() => idsOf(withQueue)),
    // The status indexes know their sizes: no second count to keep in step.
    counts: Effect.sync((): WorkerCounts => ({
      idle: byStatus.idle.size,
      busy: byStatus.busy.size,
      stopped: byStatus.stopped.size,
      failed: byStatus.failed.size
    })),
    lastWorkerId: Effect.sync(() => {
      if (!lastKnown) {
        last = ids.toArray().at(-1)
        lastKnown = true
      }
      return last
    }),
    expired: (before, limit) => Effect.sync(() => expired(before, limit)),
    insertWorker: (worker, idempotencyKey) =>
      Effect.sync((): InsertResult => {
        const holder = idempotencyKey === undefined ? undefined : byKey.get(idempotencyKey)
        if (holder !== undefined) return { created: false, existing: workers.get(holder)! }
        workers.set(worker.id, worker)
        ids.add(worker.id)
        byStatus[worker.status].add(worker.id)
        indexPairs(worker, true)
        if (lastKnown && (last === undefined || worker.id > last)) last = worker.id
        if (idempotencyKey !== undefined) {
          keys.set(worker.id, idempotencyKey)
          byKey.set(idempotencyKey, worker.id)
        }
        return { created: true }
      }),
    queuedContent: (workerId, id) =>
      Effect.suspend(() => {
        const input = queues.get(workerId)?.find((queued) => queued.id === id)
        return input === undefined
          ? Effect.fail(new StoreError({ message: `no queued input ${id} of Worker ${workerId}` }))
          : Effect.succeed(input.content)
      }),
    inputReceipt: (workerId, inputId) => Effect.sync(() => receipts.get(workerId)?.get(inputId)),
    commit: (change) =>
      Effect.suspend(() => {
        const { entries, receipt, worker } = change
        // Checked before anything changes: a refused commit records nothing.
        if (receipt !== undefined && receipts.get(worker.id)?.has(receipt.inputId) === true) {
          return Effect.fail(
            new StoreError({ message: `input ${receipt.inputId} of Worker ${worker.id} is recorded already` })
          )
        }
        const before = workers.get(worker.id)
        if (before !== undefined && before.status !== worker.status) {
          byStatus[before.status].delete(worker.id)
          byStatus[worker.status].add(worker.id)
        }
        workers.set(worker.id, worker)
        if (entries.length > 0) {
          let transcript = transcripts.get(worker.id)
          if (transcript === undefined) {
            transcript = []
            transcripts.set(worker.id, transcript)
          }
          for (const entry of entries) transcript.push(entry)
        }
        for (const turn of change.turns ?? []) {
          let list = turns.get(worker.id)
          if (list === undefined) {
            list = []
            turns.set(worker.id, list)
          }
          list[turn.turn - 1] = turn
        }
        if (change.enqueue !== undefined || change.dequeue !== undefined) {
          const dropped = new Set(change.dequeue ?? [])
          const queue = (queues.get(worker.id) ?? []).filter((input) => !dropped.has(input.id))
          if (change.enqueue !== undefined) queue.push(change.enqueue)
          if (queue.length === 0) {
            queues.delete(worker.id)
            withQueue.delete(worker.id)
          } else {
            queues.set(worker.id, queue)
            withQueue.add(worker.id)
          }
        }
        if (receipt !== undefined) {
          let kept = receipts.get(worker.id)
          if (kept === undefined) {
            kept = new Map()
            receipts.set(worker.id, kept)
          }
          kept.set(receipt.inputId, receipt)
          for (const oldest of kept.keys()) {
            if (kept.size <= RECEIPTS_PER_WORKER) break
            kept.delete(oldest)
          }
        }
        return Effect.void
      }),
    transcript: (workerId, { after, limit, maxBytes }) =>
      Effect.sync(() => {
        const page = transcripts.get(workerId)?.slice(after, after + limit) ?? EMPTY
        return maxBytes === undefined ? page : page.slice(0, fittingCount(page, maxBytes))
      }),
    turn: (workerId, turn) => Effect.sync(() => turns.get(workerId)?.[turn - 1]),
    listWorkers: (query) => Effect.sync(() => listWorkers(query)),
    deleteWorker: (workerId) =>
      Effect.sync(() => {
        const worker = workers.get(workerId)
        if (worker === undefined) return
        workers.delete(workerId)
        ids.delete(workerId)
        byStatus[worker.status].delete(workerId)
        indexPairs(worker, false)
        const key = keys.get(workerId)
        if (key !== undefined) byKey.delete(key)
        keys.delete(workerId)
        transcripts.delete(workerId)
        turns.delete(workerId)
        queues.delete(workerId)
        withQueue.delete(workerId)
        receipts.delete(workerId)
        if (workerId === last) lastKnown = false
      })
  }
}

/** A fresh, empty memory store. */
export const MemoryStoreLive = (): Layer.Layer<RuntimeStore> => Layer.sync(RuntimeStore, makeMemoryStore)

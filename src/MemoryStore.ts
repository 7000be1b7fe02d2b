/**
 * The in-memory store: the default for embedded use. Nothing survives the
 * process. Transcripts are arrays indexed by `seq - 1`, so a page is a slice;
 * Worker ids are kept sorted for cursor pagination.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

import type { TranscriptEntry, Worker, WorkerStatus } from "./Domain.js"
import { type ListWorkersQuery, RuntimeStore, type RuntimeStoreService } from "./RuntimeStore.js"
import { utf8Length } from "./Validation.js"

/** Index of the first element of sorted `ids` greater than `key`. */
const upperBound = (ids: ReadonlyArray<string>, key: string): number => {
  let low = 0
  let high = ids.length
  while (low < high) {
    const mid = (low + high) >>> 1
    if (ids[mid]! <= key) low = mid + 1
    else high = mid
  }
  return low
}

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

/** Inserts `id` into sorted `ids` (ids are issued in increasing order, so this is an append in practice). */
const insertSorted = (ids: Array<string>, id: string): void => {
  const last = ids[ids.length - 1]
  if (last === undefined || last < id) ids.push(id)
  else ids.splice(upperBound(ids, id), 0, id)
}

const removeSorted = (ids: Array<string>, id: string): void => {
  const at = upperBound(ids, id) - 1
  if (at >= 0 && ids[at] === id) ids.splice(at, 1)
}

export const makeMemoryStore = (): RuntimeStoreService => {
  const workers = new Map<string, Worker>()
  const ids: Array<string> = []
  // Ids by status, sorted, as SQLite's (status, id) index: a filtered page
  // starts at its cursor instead of scanning every Worker.
  const byStatus: Record<WorkerStatus, Array<string>> = { idle: [], busy: [], stopped: [], failed: [] }
  const transcripts = new Map<string, Array<TranscriptEntry>>()

  const listWorkers = ({ after, limit, status }: ListWorkersQuery): Array<Worker> => {
    const from = status === undefined ? ids : byStatus[status]
    const out: Array<Worker> = []
    for (let i = after === undefined ? 0 : upperBound(from, after); i < from.length && out.length < limit; i++) {
      out.push(workers.get(from[i]!)!)
    }
    return out
  }

  return {
    kind: "memory",
    failure: () => undefined,
    runtimeId: (requested, generate) => Effect.sync(() => requested ?? generate()),
    loadWorkers: Effect.sync(() => ids.map((id) => workers.get(id)!)),
    insertWorker: (worker) =>
      Effect.sync(() => {
        workers.set(worker.id, worker)
        insertSorted(ids, worker.id)
        insertSorted(byStatus[worker.status], worker.id)
      }),
    commit: (worker, entries) =>
      Effect.sync(() => {
        const before = workers.get(worker.id)
        if (before !== undefined && before.status !== worker.status) {
          removeSorted(byStatus[before.status], worker.id)
          insertSorted(byStatus[worker.status], worker.id)
        }
        workers.set(worker.id, worker)
        if (entries.length === 0) return
        let transcript = transcripts.get(worker.id)
        if (transcript === undefined) {
          transcript = []
          transcripts.set(worker.id, transcript)
        }
        for (const entry of entries) transcript.push(entry)
      }),
    transcript: (workerId, { after, limit, maxBytes }) =>
      Effect.sync(() => {
        const page = transcripts.get(workerId)?.slice(after, after + limit) ?? EMPTY
        return maxBytes === undefined ? page : page.slice(0, fittingCount(page, maxBytes))
      }),
    listWorkers: (query) => Effect.sync(() => listWorkers(query))
  }
}

/** A fresh, empty memory store. */
export const MemoryStoreLive = (): Layer.Layer<RuntimeStore> => Layer.sync(RuntimeStore, makeMemoryStore)

/**
 * The in-memory store: the default for embedded use. Nothing survives the
 * process. Transcripts are arrays indexed by `seq - 1`, so a page is a slice;
 * Worker ids are kept sorted for cursor pagination.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

import type { TranscriptEntry, Worker } from "./Domain.js"
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

export const makeMemoryStore = (): RuntimeStoreService => {
  const workers = new Map<string, Worker>()
  const ids: Array<string> = []
  const transcripts = new Map<string, Array<TranscriptEntry>>()

  const listWorkers = ({ after, limit, status }: ListWorkersQuery): Array<Worker> => {
    const out: Array<Worker> = []
    for (let i = after === undefined ? 0 : upperBound(ids, after); i < ids.length && out.length < limit; i++) {
      const worker = workers.get(ids[i]!)!
      if (status === undefined || worker.status === status) out.push(worker)
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
        // Ids are issued in increasing order, so this is an append in practice.
        const last = ids[ids.length - 1]
        if (last === undefined || last < worker.id) ids.push(worker.id)
        else ids.splice(upperBound(ids, worker.id), 0, worker.id)
      }),
    commit: (worker, entries) =>
      Effect.sync(() => {
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

/**
 * The `RuntimeStore` contract and the Runtime's lifecycle over a store that
 * outlives it: shutdown records interrupted turns, drain honours its grace,
 * restart recovers turns that were in flight. Runs over every store, so
 * that the memory store (the reference) and SQLite agree.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer, Scope, TestClock } from "effect"

import {
  Runtime,
  RuntimeControl,
  RuntimeFromStore,
  RuntimeId,
  type RuntimeOptions,
  RuntimeStore,
  type TranscriptEntry,
  type Turn,
  Unavailable,
  type Worker,
  WorkerId
} from "../../src/index.js"
import {
  type InputReceipt,
  type QueuedInput,
  type QueuedRef,
  RECEIPTS_PER_WORKER,
  StoreError
} from "../../src/RuntimeStore.js"
import { SLOW_MS, suiteProfiles } from "./engines.js"
import { waitForSleeps } from "./eventually.js"

/** A place a store lives (a memory instance, a file); each call opens a store on it. */
export type StorePlace = () => Layer.Layer<RuntimeStore, unknown>
export type MakeStorePlace = () => StorePlace

/** A Worker row for store-level tests. */
export const worker = (id: string, patch: Partial<Worker> = {}): Worker => ({
  id: WorkerId.make(id),
  runtimeId: RuntimeId.make("rt"),
  profile: "default",
  status: "idle",
  createdAt: "2026-01-01T00:00:00.000Z",
  updatedAt: "2026-01-01T00:00:00.000Z",
  turn: 0,
  lastSeq: 0,
  metadata: {},
  queued: 0,
  ...patch
})

/** A Worker id, branded. */
export const wid = (id: string): WorkerId => WorkerId.make(id)

/** A transcript entry for store-level tests. */
export const entry = (seq: number, patch: Partial<TranscriptEntry> = {}): TranscriptEntry => ({
  seq,
  at: "2026-01-01T00:00:00.000Z",
  role: "worker",
  content: `entry ${seq}`,
  turn: 1,
  ...patch
})

/** A turn record for store-level tests: by default turn `turn` of `workerId`, running since its input (seq 1). */
export const turnRecord = (workerId: string, turn: number, patch: Partial<Turn> = {}): Turn => ({
  workerId: WorkerId.make(workerId),
  turn,
  status: "running",
  inputSeq: 1,
  lastSeq: 1,
  startedAt: "2026-01-01T00:00:01.000Z",
  endedAt: null,
  reason: null,
  usage: null,
  ...patch
})

/** A queued input for store-level tests. */
export const queuedInput = (id: number): QueuedInput => ({
  id,
  content: `queued ${id}`,
  kind: id % 2 === 0 ? "system" : "user",
  at: `2026-01-01T00:00:${String(id).padStart(2, "0")}.000Z`
})

/** An input receipt for store-level tests: what an input that left the Worker as `after` answered. */
export const receipt = (
  inputId: string,
  after: Worker,
  answer: { readonly seq?: number; readonly position?: number }
): InputReceipt => {
  const { lastSeq, queued, status, turn, updatedAt } = after
  return { inputId, worker: { status, turn, lastSeq, queued, updatedAt }, seq: answer.seq, position: answer.position }
}

/** A time for store-level tests: `n` seconds into 2026. */
const second = (n: number) => `2026-01-01T00:00:${String(n).padStart(2, "0")}.000Z`

/** What `loadWorkers` gives of that queued input: its place and size, not its content. */
export const queuedRef = (id: number): QueuedRef => {
  const { at, content, kind } = queuedInput(id)
  return { id, kind, at, bytes: new TextEncoder().encode(content).length }
}

/** Runs `effect` with a store opened on `place`, closing it afterwards. */
const withStore = <A, E>(place: StorePlace, effect: Effect.Effect<A, E, RuntimeStore>) =>
  Effect.provide(effect, place())

/** Opens a Runtime on `place` in a scope the test closes itself. */
const openRuntime = (place: StorePlace, options: RuntimeOptions = {}) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(
      RuntimeFromStore({ profiles: suiteProfiles, ...options }).pipe(Layer.provide(place())),
      scope
    )
    return { scope, runtime: Context.get(context, Runtime), control: Context.get(context, RuntimeControl) }
  })

export interface StoreSuiteOptions {
  /** Whether the store refuses a commit to an unknown Worker or of an entry it has (the SQL stores). */
  readonly commitsCanFail?: boolean
}

export const storeSuite = (label: string, makePlace: MakeStorePlace, options: StoreSuiteOptions = {}) =>
  describe(label, () => {
    describe("store contract", () => {
      it.effect("resolves the runtime id: requested, else generated", () =>
        Effect.gen(function*() {
          const store = yield* RuntimeStore
          const id = yield* store.runtimeId("rt-1", () => "generated")
          expect(id).toBe("rt-1")
        }).pipe((effect) => withStore(makePlace(), effect)))

      it.effect("inserts, commits atomically, pages transcripts and lists by cursor and status", () =>
        Effect.gen(function*() {
          const store = yield* RuntimeStore
          yield* store.insertWorker(worker("b"), undefined)
          yield* store.insertWorker(worker("a"), undefined)
          yield* store.insertWorker(worker("c", { status: "stopped", stopReason: "x" }), undefined)
          expect((yield* store.loadWorkers).map((w) => w.worker.id)).toEqual(["a", "b", "c"])
          yield* store.commit({
            worker: worker("a", { status: "busy", lastSeq: 3, turn: 1 }),
            entries: [entry(1), entry(2), entry(3)]
          })
          yield* store.commit({
            worker: worker("a", { status: "idle", lastSeq: 4, turn: 1 }),
            entries: [entry(4, { role: "runtime" })]
          })
          yield* store.commit({ worker: worker("b", { updatedAt: "2026-01-02T00:00:00.000Z" }), entries: [] })
          const loaded = (yield* store.loadWorkers).map((w) => w.worker)
          expect(loaded[0]).toEqual(worker("a", { status: "idle", lastSeq: 4, turn: 1 }))
          expect(loaded[1]).toEqual(worker("b", { updatedAt: "2026-01-02T00:00:00.000Z" }))
          expect(loaded[2]).toEqual(worker("c", { status: "stopped", stopReason: "x" }))
          expect(yield* store.transcript(wid("a"), { after: 0, limit: 10 })).toEqual([
            entry(1),
            entry(2),
            entry(3),
            entry(4, { role: "runtime" })
          ])
          expect((yield* store.transcript(wid("a"), { after: 1, limit: 2 })).map((e) => e.seq)).toEqual([2, 3])
          expect(yield* store.transcript(wid("a"), { after: 4, limit: 10 })).toEqual([])
          expect(yield* store.transcript(wid("zzz"), { after: 0, limit: 10 })).toEqual([])
          const ids = (query: Parameters<typeof store.listWorkers>[0]) =>
            Effect.map(store.listWorkers(query), (ws) => ws.map((w) => w.id))
          expect(yield* ids({ limit: 10 })).toEqual(["a", "b", "c"])
          expect(yield* ids({ limit: 2 })).toEqual(["a", "b"])
          expect(yield* ids({ limit: 10, after: "a" })).toEqual(["b", "c"])
          expect(yield* ids({ limit: 10, after: "a0" })).toEqual(["b", "c"])
          expect(yield* ids({ limit: 10, status: "idle" })).toEqual(["a", "b"])
          expect(yield* ids({ limit: 10, status: "stopped", after: "a" })).toEqual(["c"])
          expect(yield* ids({ limit: 10, status: "busy" })).toEqual([])
        }).pipe((effect) => withStore(makePlace(), effect)))

      it.effect("entries keep their outcome, and have no outcome key when there is none", () =>
        Effect.gen(function*() {
          const store = yield* RuntimeStore
          yield* store.insertWorker(worker("a"), undefined)
          const entries = [
            entry(1, { role: "user" }),
            entry(2),
            entry(3, { role: "runtime", content: "cancelled: x", outcome: "cancelled" }),
            entry(4, { role: "user", turn: 2 }),
            entry(5, { role: "runtime", content: "completed", outcome: "completed", turn: 2 })
          ]
          yield* store.commit({ worker: worker("a", { lastSeq: 5, turn: 2 }), entries })
          const read = yield* store.transcript(wid("a"), { after: 0, limit: 10 })
          expect(read).toEqual(entries)
          expect(read.map((e) => Object.hasOwn(e, "outcome"))).toEqual([false, false, true, false, true])
          expect(read.map((e) => e.outcome)).toEqual([undefined, undefined, "cancelled", undefined, "completed"])
        }).pipe((effect) => withStore(makePlace(), effect)))

      it.effect("turn records are inserted, replaced, and read back by number", () =>
        Effect.gen(function*() {
          const store = yield* RuntimeStore
          yield* store.insertWorker(worker("a"), undefined)
          yield* store.insertWorker(worker("b"), undefined)
          expect(yield* store.turn(wid("a"), 1)).toBeUndefined()
          // a turn starts
          const running = turnRecord("a", 1)
          yield* store.commit({
            worker: worker("a", { status: "busy", turn: 1, lastSeq: 1 }),
            entries: [entry(1, { role: "user" })],
            turns: [running]
          })
          expect(yield* store.turn(wid("a"), 1)).toEqual(running)
          // ends: the record is replaced, not added
          const cancelled = turnRecord("a", 1, {
            status: "cancelled",
            lastSeq: 2,
            endedAt: "2026-01-01T00:00:02.000Z",
            reason: "changed my mind",
            // a model turn's tokens are kept with it
            usage: { inputTokens: 1234, outputTokens: 0 }
          })
          yield* store.commit({
            worker: worker("a", { turn: 1, lastSeq: 2 }),
            entries: [entry(2, { role: "runtime", content: "cancelled: changed my mind", outcome: "cancelled" })],
            turns: [cancelled]
          })
          expect(yield* store.turn(wid("a"), 1)).toEqual(cancelled)
          // one change may end a turn and start the next (an interrupt)
          const interrupted = turnRecord("a", 2, {
            status: "interrupted",
            inputSeq: 3,
            lastSeq: 4,
            endedAt: "2026-01-01T00:00:04.000Z",
            reason: "interrupted by a new input"
          })
          const next = turnRecord("a", 3, { inputSeq: 5, lastSeq: 5, startedAt: "2026-01-01T00:00:05.000Z" })
          yield* store.commit({
            worker: worker("a", { status: "busy", turn: 3, lastSeq: 5 }),
            entries: [
              entry(3, { role: "user", turn: 2 }),
              entry(4, { role: "runtime", content: "interrupted", outcome: "interrupted", turn: 2 }),
              entry(5, { role: "user", turn: 3 })
            ],
            turns: [turnRecord("a", 2, { inputSeq: 3, lastSeq: 3 }), interrupted, next]
          })
          expect(yield* store.turn(wid("a"), 2)).toEqual(interrupted)
          expect(yield* store.turn(wid("a"), 3)).toEqual(next)
          expect(yield* store.turn(wid("a"), 1)).toEqual(cancelled)
          expect(yield* store.turn(wid("a"), 4)).toBeUndefined()
          expect(yield* store.turn(wid("b"), 1)).toBeUndefined()
          expect(yield* store.turn(wid("zzz"), 1)).toBeUndefined()
        }).pipe((effect) => withStore(makePlace(), effect)))

      it.effect("idempotency keys: unique in the store; an insert with a taken key stores nothing and returns the holder", () =>
        Effect.gen(function*() {
          const store = yield* RuntimeStore
          const results = yield* Effect.forEach(
            Array.from({ length: 20 }, (_, i) => `w${String(i).padStart(2, "0")}`),
            (id) => store.insertWorker(worker(id, { metadata: { team: id } }), "same-key"),
            { concurrency: "unbounded" }
          )
          const created = results.filter((result) => result.created)
          expect(created).toHaveLength(1)
          const holders = new Set(results.flatMap((result) => result.created ? [] : [result.existing.id]))
          expect(holders.size).toBe(1)
          const stored = yield* store.loadWorkers
          expect(stored).toHaveLength(1)
          expect(stored[0]!.idempotencyKey).toBe("same-key")
          expect([...holders]).toEqual([stored[0]!.worker.id])
          // Nothing of the others was kept, their metadata pairs neither.
          const team = stored[0]!.worker.metadata["team"]!
          for (let i = 0; i < 20; i++) {
            const id = `w${String(i).padStart(2, "0")}`
            expect((yield* store.listWorkers({ limit: 10, metadata: { team: id } })).length).toBe(id === team ? 1 : 0)
          }
          // Once its Worker is deleted, the key is free again.
          yield* store.deleteWorker(stored[0]!.worker.id)
          expect(yield* store.insertWorker(worker("x"), "same-key")).toEqual({ created: true })
        }).pipe((effect) => withStore(makePlace(), effect)))

      it.effect("queues: enqueued and dequeued inputs; loadWorkers brings queues in order and keys", () =>
        Effect.gen(function*() {
          const store = yield* RuntimeStore
          yield* store.insertWorker(worker("a", { status: "busy", turn: 1 }), "key-a")
          yield* store.insertWorker(worker("b"), undefined)
          yield* store.insertWorker(worker("c"), "key-c")
          // ids 9, 10, 11: ordered as numbers, not as text
          for (const id of [9, 10, 11]) {
            yield* store.commit({
              worker: worker("a", { status: "busy", turn: 1, queued: id - 8 }),
              entries: [],
              enqueue: queuedInput(id)
            })
          }
          expect((yield* store.loadWorkers)[0]!.queue).toEqual([queuedRef(9), queuedRef(10), queuedRef(11)])
          // the next turn starts with the first
          yield* store.commit({
            worker: worker("a", { status: "busy", turn: 2, lastSeq: 1, queued: 2 }),
            entries: [entry(1, { role: "user", turn: 2, content: "queued 9" })],
            dequeue: [9]
          })
          // one change may drop one and add another
          yield* store.commit({
            worker: worker("a", { status: "busy", turn: 2, lastSeq: 1, queued: 2 }),
            entries: [],
            dequeue: [10],
            enqueue: queuedInput(12)
          })
          // the queue of another Worker
          yield* store.commit({
            worker: worker("c", { status: "busy", queued: 1 }),
            entries: [],
            enqueue: queuedInput(1)
          })
          expect(yield* store.loadWorkers).toEqual([
            {
              worker: worker("a", { status: "busy", turn: 2, lastSeq: 1, queued: 2 }),
              idempotencyKey: "key-a",
              queue: [queuedRef(11), queuedRef(12)]
            },
            { worker: worker("b"), idempotencyKey: undefined, queue: [] },
            { worker: worker("c", { status: "busy", queued: 1 }), idempotencyKey: "key-c", queue: [queuedRef(1)] }
          ])
          // Their content stays in the store until a turn takes it; a dequeued one is gone.
          expect(yield* store.queuedContent(wid("a"), 12)).toBe(queuedInput(12).content)
          expect(yield* store.queuedContent(wid("c"), 1)).toBe(queuedInput(1).content)
          expect(yield* Effect.flip(store.queuedContent(wid("a"), 9))).toBeInstanceOf(StoreError)
          // a cleared queue
          yield* store.commit({
            worker: worker("a", { status: "busy", turn: 2, lastSeq: 1 }),
            entries: [],
            dequeue: [11, 12]
          })
          const [a, , c] = yield* store.loadWorkers
          expect(a!.queue).toEqual([])
          expect(a!.worker.queued).toBe(0)
          expect(c!.queue).toEqual([queuedRef(1)])
        }).pipe((effect) => withStore(makePlace(), effect)))

      it.effect("lists by metadata: exact pairs, all of them, with the status and the cursor", () =>
        Effect.gen(function*() {
          const store = yield* RuntimeStore
          const workers = [
            worker("a", { metadata: { team: "x", user: "1" } }),
            worker("b", { metadata: { team: "x", user: "2" }, status: "busy" }),
            worker("c", { metadata: { team: "x" } }),
            // near misses: a longer value, a longer key, the pair split elsewhere, the value as a key
            worker("d", { metadata: { team: "xy", user: "1" } }),
            worker("e", { metadata: { teams: "x" } }),
            worker("f", { metadata: { "team\u0000x": "1", x: "team" } }),
            worker("g", { metadata: { p: "1", q: "2", r: "3", s: "4", team: "x" } }),
            worker("h", { metadata: {} })
          ]
          // inserted out of order
          for (const w of [...workers].reverse()) yield* store.insertWorker(w, undefined)
          const ids = (query: Parameters<typeof store.listWorkers>[0]) =>
            Effect.map(store.listWorkers(query), (ws) => ws.map((w) => w.id))
          const team = { team: "x" }
          expect(yield* store.listWorkers({ limit: 10, metadata: team })).toEqual([
            workers[0],
            workers[1],
            workers[2],
            workers[6]
          ])
          expect(yield* ids({ limit: 10, metadata: team, status: "idle" })).toEqual(["a", "c", "g"])
          expect(yield* ids({ limit: 10, metadata: team, status: "busy" })).toEqual(["b"])
          expect(yield* ids({ limit: 10, metadata: team, status: "stopped" })).toEqual([])
          // the cursor: after an id, also one that is not stored; the limit
          expect(yield* ids({ limit: 10, metadata: team, after: "a" })).toEqual(["b", "c", "g"])
          expect(yield* ids({ limit: 10, metadata: team, after: "b0" })).toEqual(["c", "g"])
          expect(yield* ids({ limit: 2, metadata: team })).toEqual(["a", "b"])
          expect(yield* ids({ limit: 1, metadata: team, after: "b", status: "idle" })).toEqual(["c"])
          expect(yield* ids({ limit: 10, metadata: team, after: "g" })).toEqual([])
          // several pairs: all must match, in any order
          expect(yield* ids({ limit: 10, metadata: { team: "x", user: "1" } })).toEqual(["a"])
          expect(yield* ids({ limit: 10, metadata: { user: "1", team: "x" } })).toEqual(["a"])
          expect(yield* ids({ limit: 10, metadata: { user: "1" } })).toEqual(["a", "d"])
          expect(yield* ids({ limit: 10, metadata: { team: "x", user: "2" }, status: "idle" })).toEqual([])
          expect(yield* ids({ limit: 10, metadata: { p: "1", q: "2", r: "3", s: "4" } })).toEqual(["g"])
          expect(yield* ids({ limit: 10, metadata: { p: "1", q: "2", r: "3", s: "5" } })).toEqual([])
          expect(yield* ids({ limit: 10, metadata: { team: "x", p: "1", s: "4" }, after: "c" })).toEqual(["g"])
          // no false matches
          expect(yield* ids({ limit: 10, metadata: { team: "xy" } })).toEqual(["d"])
          expect(yield* ids({ limit: 10, metadata: { teams: "x" } })).toEqual(["e"])
          expect(yield* ids({ limit: 10, metadata: { tea: "x" } })).toEqual([])
          expect(yield* ids({ limit: 10, metadata: { team: "" } })).toEqual([])
          expect(yield* ids({ limit: 10, metadata: { team: "x\u00001" } })).toEqual([])
          expect(yield* ids({ limit: 10, metadata: { x: "team" } })).toEqual(["f"])
          expect(yield* ids({ limit: 10, metadata: { team: "x", teams: "x" } })).toEqual([])
          // no pairs: every Worker
          expect(yield* ids({ limit: 10, metadata: {} })).toEqual(["a", "b", "c", "d", "e", "f", "g", "h"])
        }).pipe((effect) => withStore(makePlace(), effect)))

      it.effect("deleteWorker removes the Worker and everything of it, and nothing else", () =>
        Effect.gen(function*() {
          const store = yield* RuntimeStore
          /** A Worker with a transcript, two turns, a queue and a key. */
          const populate = (id: string, metadata: Record<string, string>) =>
            Effect.gen(function*() {
              yield* store.insertWorker(worker(id, { metadata }), `key-${id}`)
              yield* store.commit({
                worker: worker(id, { metadata, status: "busy", turn: 2, lastSeq: 4, queued: 1 }),
                entries: [
                  entry(1, { role: "user" }),
                  entry(2, { role: "runtime", content: "completed", outcome: "completed" }),
                  entry(3, { role: "user", turn: 2 }),
                  entry(4, { turn: 2 })
                ],
                turns: [
                  turnRecord(id, 1, { status: "completed", lastSeq: 2, endedAt: "2026-01-01T00:00:02.000Z" }),
                  turnRecord(id, 2, { inputSeq: 3, lastSeq: 4 })
                ],
                enqueue: queuedInput(1)
              })
            })
          yield* populate("a", { team: "x", user: "1" })
          yield* populate("b", { team: "x", user: "2" })
          const b = (yield* store.loadWorkers)[1]!
          const bTranscript = yield* store.transcript(wid("b"), { after: 0, limit: 10 })
          expect(bTranscript).toHaveLength(4)

          yield* store.deleteWorker(wid("a"))
          expect(yield* store.transcript(wid("a"), { after: 0, limit: 10 })).toEqual([])
          expect(yield* store.turn(wid("a"), 1)).toBeUndefined()
          expect(yield* store.turn(wid("a"), 2)).toBeUndefined()
          const ids = (query: Parameters<typeof store.listWorkers>[0]) =>
            Effect.map(store.listWorkers(query), (ws) => ws.map((w) => w.id))
          expect(yield* ids({ limit: 10 })).toEqual(["b"])
          expect(yield* ids({ limit: 10, status: "busy" })).toEqual(["b"])
          expect(yield* ids({ limit: 10, metadata: { team: "x" } })).toEqual(["b"])
          expect(yield* ids({ limit: 10, metadata: { user: "1" } })).toEqual([])
          expect(yield* store.loadWorkers).toEqual([b])
          // its key is free again, and its metadata pairs are gone from the
          // index: a new Worker under the same id does not match them
          yield* store.insertWorker(worker("a", { metadata: { team: "y" } }), "key-a")
          expect(yield* ids({ limit: 10, metadata: { team: "x" } })).toEqual(["b"])
          expect(yield* ids({ limit: 10, metadata: { user: "1" } })).toEqual([])
          expect(yield* ids({ limit: 10, metadata: { team: "y" } })).toEqual(["a"])
          expect(yield* store.transcript(wid("a"), { after: 0, limit: 10 })).toEqual([])
          expect(yield* store.turn(wid("a"), 1)).toBeUndefined()
          expect(yield* store.loadWorkers).toEqual([
            { worker: worker("a", { metadata: { team: "y" } }), idempotencyKey: "key-a", queue: [] },
            b
          ])
          yield* store.deleteWorker(wid("a"))

          // the other Worker is whole
          expect(yield* store.transcript(wid("b"), { after: 0, limit: 10 })).toEqual(bTranscript)
          expect(yield* store.turn(wid("b"), 1)).toMatchObject({ status: "completed" })
          expect(yield* store.turn(wid("b"), 2)).toMatchObject({ status: "running" })
          expect(yield* store.loadWorkers).toEqual([b])
          // deleting an unknown id, or again, changes nothing
          yield* store.deleteWorker(wid("a"))
          yield* store.deleteWorker(wid("zzz"))
          expect(yield* store.loadWorkers).toEqual([b])
          expect(yield* ids({ limit: 10, metadata: { team: "x" } })).toEqual(["b"])
          // and it can still be written to
          yield* store.commit({ worker: { ...b.worker, lastSeq: 5 }, entries: [entry(5, { turn: 2 })] })
          expect(yield* store.transcript(wid("b"), { after: 4, limit: 10 })).toEqual([entry(5, { turn: 2 })])
        }).pipe((effect) => withStore(makePlace(), effect)))

      it.effect("getWorker: one Worker with its key and queue, as loadWorkers has it; undefined when unknown", () =>
        Effect.gen(function*() {
          const store = yield* RuntimeStore
          yield* store.insertWorker(worker("a", { metadata: { team: "x" } }), "key-a")
          yield* store.insertWorker(worker("b"), undefined)
          expect(yield* store.getWorker(wid("a"))).toEqual({
            worker: worker("a", { metadata: { team: "x" } }),
            idempotencyKey: "key-a",
            queue: []
          })
          for (const id of [9, 10]) {
            yield* store.commit({
              worker: worker("a", { metadata: { team: "x" }, status: "busy", turn: 1, queued: id - 8 }),
              entries: [],
              enqueue: queuedInput(id)
            })
          }
          yield* store.commit({ worker: worker("b", { status: "stopped", stopReason: "bye" }), entries: [] })
          const a = yield* store.getWorker(wid("a"))
          expect(a).toEqual({
            worker: worker("a", { metadata: { team: "x" }, status: "busy", turn: 1, queued: 2 }),
            idempotencyKey: "key-a",
            queue: [queuedRef(9), queuedRef(10)]
          })
          const b = yield* store.getWorker(wid("b"))
          expect(b).toEqual({
            worker: worker("b", { status: "stopped", stopReason: "bye" }),
            idempotencyKey: undefined,
            queue: []
          })
          expect(yield* store.loadWorkers).toEqual([a, b])
          // dequeued inputs are gone from it
          yield* store.commit({
            worker: worker("a", { metadata: { team: "x" }, status: "busy", turn: 2, queued: 1 }),
            entries: [],
            dequeue: [9]
          })
          expect((yield* store.getWorker(wid("a")))!.queue).toEqual([queuedRef(10)])
          expect(yield* store.getWorker(wid("zzz"))).toBeUndefined()
          yield* store.deleteWorker(wid("a"))
          expect(yield* store.getWorker(wid("a"))).toBeUndefined()
        }).pipe((effect) => withStore(makePlace(), effect)))

      it.effect("workerByKey: the Worker a key made, as stored; undefined for an unknown key or once it is deleted", () =>
        Effect.gen(function*() {
          const store = yield* RuntimeStore
          expect(yield* store.workerByKey("key-a")).toBeUndefined()
          yield* store.insertWorker(worker("a"), "key-a")
          yield* store.insertWorker(worker("b"), "key-b")
          yield* store.insertWorker(worker("c"), undefined)
          expect(yield* store.workerByKey("key-a")).toEqual(worker("a"))
          expect(yield* store.workerByKey("key-b")).toEqual(worker("b"))
          // as it is now, not as it was created
          yield* store.commit({ worker: worker("a", { status: "busy", turn: 1 }), entries: [] })
          expect(yield* store.workerByKey("key-a")).toEqual(worker("a", { status: "busy", turn: 1 }))
          // a taken key stores nothing: the key still names its first Worker
          yield* store.insertWorker(worker("d"), "key-a")
          expect((yield* store.workerByKey("key-a"))?.id).toBe("a")
          expect(yield* store.workerByKey("key-c")).toBeUndefined()
          expect(yield* store.workerByKey("")).toBeUndefined()
          yield* store.deleteWorker(wid("a"))
          expect(yield* store.workerByKey("key-a")).toBeUndefined()
          expect(yield* store.workerByKey("key-b")).toEqual(worker("b"))
        }).pipe((effect) => withStore(makePlace(), effect)))

      it.effect("busyWorkers and queuedWorkers: sorted ids, following commits and deletes", () =>
        Effect.gen(function*() {
          const store = yield* RuntimeStore
          expect(yield* store.busyWorkers).toEqual([])
          expect(yield* store.queuedWorkers).toEqual([])
          // inserted out of order
          for (const id of ["d", "b", "a", "c"]) yield* store.insertWorker(worker(id), undefined)
          expect(yield* store.busyWorkers).toEqual([])
          for (const id of ["d", "a", "c"]) {
            yield* store.commit({ worker: worker(id, { status: "busy", turn: 1 }), entries: [] })
          }
          expect(yield* store.busyWorkers).toEqual(["a", "c", "d"])
          // two inputs queued for d, one for a: each Worker once
          yield* store.commit({
            worker: worker("d", { status: "busy", turn: 1, queued: 1 }),
            entries: [],
            enqueue: queuedInput(1)
          })
          yield* store.commit({
            worker: worker("d", { status: "busy", turn: 1, queued: 2 }),
            entries: [],
            enqueue: queuedInput(2)
          })
          yield* store.commit({
            worker: worker("a", { status: "busy", turn: 1, queued: 1 }),
            entries: [],
            enqueue: queuedInput(1)
          })
          expect(yield* store.queuedWorkers).toEqual(["a", "d"])
          // a's turn ends and its queued input starts the next; d's first one is dropped
          yield* store.commit({
            worker: worker("a", { status: "busy", turn: 2, lastSeq: 1 }),
            entries: [entry(1, { role: "user", turn: 2 })],
            dequeue: [1]
          })
          yield* store.commit({
            worker: worker("d", { status: "busy", turn: 1, queued: 1 }),
            entries: [],
            dequeue: [1]
          })
          expect(yield* store.queuedWorkers).toEqual(["d"])
          // c ends its turn, d is stopped with its queue dropped
          yield* store.commit({ worker: worker("c", { turn: 1 }), entries: [] })
          yield* store.commit({
            worker: worker("d", { status: "stopped", turn: 1, stopReason: "x" }),
            entries: [],
            dequeue: [2]
          })
          expect(yield* store.busyWorkers).toEqual(["a"])
          expect(yield* store.queuedWorkers).toEqual([])
          // a deleted Worker is in neither
          yield* store.commit({
            worker: worker("b", { status: "busy", turn: 1, queued: 1 }),
            entries: [],
            enqueue: queuedInput(3)
          })
          expect(yield* store.busyWorkers).toEqual(["a", "b"])
          expect(yield* store.queuedWorkers).toEqual(["b"])
          yield* store.deleteWorker(wid("b"))
          expect(yield* store.busyWorkers).toEqual(["a"])
          expect(yield* store.queuedWorkers).toEqual([])
        }).pipe((effect) => withStore(makePlace(), effect)))

      it.effect("counts: Workers by status, after inserts, status changes and deletes", () =>
        Effect.gen(function*() {
          const store = yield* RuntimeStore
          const none = { idle: 0, busy: 0, stopped: 0, failed: 0 }
          expect(yield* store.counts).toEqual(none)
          yield* store.insertWorker(worker("a"), undefined)
          yield* store.insertWorker(worker("b"), "key-b")
          yield* store.insertWorker(worker("c", { status: "stopped", stopReason: "x" }), undefined)
          expect(yield* store.counts).toEqual({ ...none, idle: 2, stopped: 1 })
          // a taken key stores nothing, and counts nothing
          yield* store.insertWorker(worker("d"), "key-b")
          expect(yield* store.counts).toEqual({ ...none, idle: 2, stopped: 1 })
          yield* store.commit({ worker: worker("a", { status: "busy", turn: 1 }), entries: [] })
          // a commit that keeps the status changes no count
          yield* store.commit({ worker: worker("a", { status: "busy", turn: 1, lastSeq: 1 }), entries: [entry(1)] })
          yield* store.commit({ worker: worker("b", { status: "failed" }), entries: [] })
          expect(yield* store.counts).toEqual({ idle: 0, busy: 1, stopped: 1, failed: 1 })
          yield* store.commit({ worker: worker("a", { turn: 1, lastSeq: 1 }), entries: [] })
          expect(yield* store.counts).toEqual({ idle: 1, busy: 0, stopped: 1, failed: 1 })
          yield* store.deleteWorker(wid("b"))
          yield* store.deleteWorker(wid("c"))
          expect(yield* store.counts).toEqual({ ...none, idle: 1 })
          // deleting an unknown id, or again, counts nothing
          yield* store.deleteWorker(wid("c"))
          yield* store.deleteWorker(wid("zzz"))
          expect(yield* store.counts).toEqual({ ...none, idle: 1 })
        }).pipe((effect) => withStore(makePlace(), effect)))

      it.effect("counts: 20 concurrent inserts, and concurrent status changes, are all counted", () =>
        Effect.gen(function*() {
          const store = yield* RuntimeStore
          const ids = Array.from({ length: 20 }, (_, i) => `w${String(i).padStart(2, "0")}`)
          yield* Effect.forEach(ids, (id) => store.insertWorker(worker(id), undefined), { concurrency: "unbounded" })
          expect(yield* store.counts).toEqual({ idle: 20, busy: 0, stopped: 0, failed: 0 })
          yield* Effect.forEach(
            ids,
            (id, i) =>
              store.commit({
                worker: worker(id, { status: i % 4 === 0 ? "failed" : i % 2 === 0 ? "busy" : "idle" }),
                entries: []
              }),
            { concurrency: "unbounded" }
          )
          expect(yield* store.counts).toEqual({ idle: 10, busy: 5, stopped: 0, failed: 5 })
          yield* Effect.forEach(ids.slice(0, 10), (id) => store.deleteWorker(wid(id)), { concurrency: "unbounded" })
          expect(yield* store.counts).toEqual({ idle: 5, busy: 3, stopped: 0, failed: 2 })
        }).pipe((effect) => withStore(makePlace(), effect)))

      it.effect("lastWorkerId: the greatest id stored, whatever the order of inserts and deletes", () =>
        Effect.gen(function*() {
          const store = yield* RuntimeStore
          expect(yield* store.lastWorkerId).toBeUndefined()
          yield* store.insertWorker(worker("b"), undefined)
          expect(yield* store.lastWorkerId).toBe("b")
          yield* store.insertWorker(worker("d"), undefined)
          yield* store.insertWorker(worker("a"), undefined)
          expect(yield* store.lastWorkerId).toBe("d")
          // a taken key stores nothing
          yield* store.insertWorker(worker("c"), "key")
          yield* store.insertWorker(worker("z"), "key")
          expect(yield* store.lastWorkerId).toBe("d")
          // the last one deleted: the one before it
          yield* store.deleteWorker(wid("d"))
          expect(yield* store.lastWorkerId).toBe("c")
          yield* store.deleteWorker(wid("c"))
          yield* store.deleteWorker(wid("a"))
          expect(yield* store.lastWorkerId).toBe("b")
          yield* store.insertWorker(worker("e"), undefined)
          expect(yield* store.lastWorkerId).toBe("e")
          yield* store.deleteWorker(wid("e"))
          yield* store.deleteWorker(wid("b"))
          expect(yield* store.lastWorkerId).toBeUndefined()
        }).pipe((effect) => withStore(makePlace(), effect)))

      it.effect("expired: stopped and failed Workers updated before a time, oldest first, at most the limit", () =>
        Effect.gen(function*() {
          const store = yield* RuntimeStore
          const day = (n: number) => `2026-01-${String(n).padStart(2, "0")}T00:00:00.000Z`
          const ended = (id: string, status: "stopped" | "failed", updated: number) =>
            worker(id, { status, updatedAt: day(updated), ...(status === "stopped" ? { stopReason: "x" } : {}) })
          // ids and update times in different orders; two at the same time
          for (
            const w of [
              ended("a", "stopped", 5),
              ended("b", "failed", 2),
              ended("c", "stopped", 8),
              ended("d", "failed", 5),
              ended("e", "stopped", 3),
              worker("f", { updatedAt: day(1) }),
              worker("g", { status: "busy", updatedAt: day(1) }),
              ended("h", "failed", 9)
            ]
          ) yield* store.insertWorker(w, undefined)
          expect(yield* store.expired(day(10), 100)).toEqual(["b", "e", "a", "d", "c", "h"])
          // strictly before
          expect(yield* store.expired(day(8), 100)).toEqual(["b", "e", "a", "d"])
          expect(yield* store.expired(day(5), 100)).toEqual(["b", "e"])
          expect(yield* store.expired("2026-01-05T00:00:00.001Z", 100)).toEqual(["b", "e", "a", "d"])
          expect(yield* store.expired(day(2), 100)).toEqual([])
          // the limit takes the oldest
          expect(yield* store.expired(day(10), 3)).toEqual(["b", "e", "a"])
          expect(yield* store.expired(day(10), 1)).toEqual(["b"])
          expect(yield* store.expired(day(10), 0)).toEqual([])
          // a Worker that ends is in it from its update; one updated since is later
          yield* store.commit({ worker: worker("f", { status: "failed", updatedAt: day(4) }), entries: [] })
          yield* store.commit({ worker: ended("b", "failed", 7), entries: [] })
          expect(yield* store.expired(day(10), 100)).toEqual(["e", "f", "a", "d", "b", "c", "h"])
          // deleted ones are not
          yield* store.deleteWorker(wid("e"))
          yield* store.deleteWorker(wid("a"))
          expect(yield* store.expired(day(10), 3)).toEqual(["f", "d", "b"])
        }).pipe((effect) => withStore(makePlace(), effect)))

      it.effect("keeps any text as it was given: U+0000, backslashes, emoji in contents, queued contents and reasons", () =>
        Effect.gen(function*() {
          const store = yield* RuntimeStore
          const odd = "a\u0000b \\0 \\\\ \u{1F600} é\n"
          const bytes = new TextEncoder().encode(odd).length
          yield* store.insertWorker(worker("a"), undefined)
          yield* store.commit({
            worker: worker("a", { lastSeq: 2, turn: 1, queued: 1, status: "stopped", stopReason: odd }),
            entries: [entry(1, { content: odd, role: "user" }), entry(2, { content: odd, role: "runtime" })],
            turns: [
              turnRecord("a", 1, { status: "cancelled", lastSeq: 2, endedAt: "2026-01-01T00:00:02.000Z", reason: odd })
            ],
            enqueue: { ...queuedInput(1), content: odd }
          })
          const stored = yield* store.getWorker(wid("a"))
          expect(stored?.worker.stopReason).toBe(odd)
          expect(stored?.queue.map((ref) => ref.bytes)).toEqual([bytes])
          expect((yield* store.transcript(wid("a"), { after: 0, limit: 10 })).map((e) => e.content)).toEqual([odd, odd])
          // the byte limit counts UTF-8 bytes of the content as given
          expect(yield* store.transcript(wid("a"), { after: 0, limit: 10, maxBytes: bytes })).toHaveLength(1)
          expect((yield* store.turn(wid("a"), 1))?.reason).toBe(odd)
          expect(yield* store.queuedContent(wid("a"), 1)).toBe(odd)
        }).pipe((effect) => withStore(makePlace(), effect)))

      it.effect("input receipts: committed with their input, read by id; a second commit of an id fails and records nothing", () =>
        Effect.gen(function*() {
          const store = yield* RuntimeStore
          yield* store.insertWorker(worker("a"), undefined)
          yield* store.insertWorker(worker("b"), undefined)
          const started = worker("a", { status: "busy", turn: 1, lastSeq: 1, updatedAt: second(1) })
          const first = receipt("in-1", started, { seq: 1 })
          yield* store.commit({
            worker: started,
            entries: [entry(1, { role: "user" })],
            turns: [turnRecord("a", 1)],
            receipt: first
          })
          expect(yield* store.inputReceipt(wid("a"), "in-1")).toEqual(first)
          expect(yield* store.inputReceipt(wid("a"), "in-2")).toBeUndefined()
          // Input ids are the Worker's: another Worker's input may have the same.
          expect(yield* store.inputReceipt(wid("b"), "in-1")).toBeUndefined()
          const queued = { ...started, queued: 1, updatedAt: second(2) }
          const inQueue = receipt("in-2", queued, { position: 1 })
          yield* store.commit({ worker: queued, entries: [], enqueue: queuedInput(2), receipt: inQueue })
          expect(yield* store.inputReceipt(wid("a"), "in-2")).toEqual(inQueue)

          // The same input again, as a second owner would record it: refused whole.
          const again = { ...started, status: "busy" as const, turn: 2, lastSeq: 3, queued: 2, updatedAt: second(3) }
          const refused = yield* Effect.flip(store.commit({
            worker: again,
            entries: [entry(2, { role: "runtime", outcome: "cancelled" }), entry(3, { role: "user", turn: 2 })],
            turns: [turnRecord("a", 2, { inputSeq: 3, lastSeq: 3 })],
            enqueue: queuedInput(3),
            receipt: receipt("in-1", again, { seq: 3 })
          }))
          expect(refused).toBeInstanceOf(StoreError)
          const stored = yield* store.getWorker(wid("a"))
          expect(stored?.worker).toEqual(queued)
          expect(stored?.queue).toEqual([queuedRef(2)])
          expect(yield* store.transcript(wid("a"), { after: 0, limit: 10 })).toEqual([entry(1, { role: "user" })])
          expect(yield* store.turn(wid("a"), 2)).toBeUndefined()
          expect(yield* store.inputReceipt(wid("a"), "in-1")).toEqual(first)

          // Two commits of one id at once (two owners in a handover): one is stored, the other refused.
          const racing = [1, 2].map((n) => {
            const next = worker("b", { status: "busy", turn: 1, lastSeq: 1, updatedAt: second(n) })
            return {
              worker: next,
              entries: [entry(1, { role: "user", content: `from ${n}` })],
              receipt: receipt("in-1", next, { seq: 1 })
            }
          })
          const results = yield* Effect.forEach(racing, (change) => Effect.either(store.commit(change)), {
            concurrency: "unbounded"
          })
          expect(results.map((result) => result._tag).sort()).toEqual(["Left", "Right"])
          const won = racing[results.findIndex((result) => result._tag === "Right")]!
          expect(yield* store.transcript(wid("b"), { after: 0, limit: 10 })).toEqual(won.entries)
          expect(yield* store.inputReceipt(wid("b"), "in-1")).toEqual(won.receipt)

          // They go with their Worker.
          yield* store.deleteWorker(wid("a"))
          expect(yield* store.inputReceipt(wid("a"), "in-1")).toBeUndefined()
          expect(yield* store.inputReceipt(wid("a"), "in-2")).toBeUndefined()
          expect(yield* store.inputReceipt(wid("b"), "in-1")).toEqual(won.receipt)
        }).pipe((effect) => withStore(makePlace(), effect)))

      it.effect(`input receipts: a Worker keeps its latest ${RECEIPTS_PER_WORKER}`, () =>
        Effect.gen(function*() {
          const store = yield* RuntimeStore
          yield* store.insertWorker(worker("a"), undefined)
          yield* store.insertWorker(worker("b"), undefined)
          const inputs = RECEIPTS_PER_WORKER + 3
          const kept = (id: string, n: number) => {
            const next = worker(id, { status: "busy", turn: n, lastSeq: n })
            return {
              worker: next,
              entries: [entry(n, { role: "user", turn: n })],
              receipt: receipt(`in-${n}`, next, { seq: n })
            }
          }
          for (let n = 1; n <= inputs; n++) yield* store.commit(kept("a", n))
          yield* store.commit(kept("b", 1))
          const found = yield* Effect.forEach(
            Array.from({ length: inputs }, (_, i) => i + 1),
            (n) => Effect.map(store.inputReceipt(wid("a"), `in-${n}`), (found) => found !== undefined)
          )
          expect(found).toEqual(Array.from({ length: inputs }, (_, i) => i >= 3))
          expect(yield* store.inputReceipt(wid("a"), `in-${inputs}`)).toEqual(kept("a", inputs).receipt)
          // Another Worker's are its own.
          expect(yield* store.inputReceipt(wid("b"), "in-1")).toEqual(kept("b", 1).receipt)
        }).pipe((effect) => withStore(makePlace(), effect)))
    })

    // Concurrent commits may share a transaction (the SQL stores merge them
    // into a few statements): each must read back as if committed one by one.
    describe("concurrent commits", () => {
      const ids = Array.from({ length: 40 }, (_, i) => `w${String(i).padStart(2, "0")}`)

      it.effect("of many Workers at once: each Worker's row, entries, turn and queue as its commit left them", () =>
        Effect.gen(function*() {
          const store = yield* RuntimeStore
          yield* Effect.forEach(ids, (id) => store.insertWorker(worker(id), undefined), { discard: true })
          yield* Effect.forEach(
            ids,
            (id, i) =>
              store.commit({
                worker: worker(id, { status: i % 3 === 0 ? "idle" : "busy", turn: 1, lastSeq: 2, queued: i % 2 }),
                entries: [entry(1, { role: "user", content: `in ${id}` }), entry(2, { content: `out ${id}` })],
                turns: [turnRecord(id, 1, { lastSeq: 2 })],
                ...(i % 2 === 1 ? { enqueue: queuedInput(i) } : {})
              }),
            { concurrency: "unbounded", discard: true }
          )
          const stored = yield* store.loadWorkers
          expect(stored.map((s) => s.worker)).toEqual(
            ids.map((id, i) =>
              worker(id, { status: i % 3 === 0 ? "idle" : "busy", turn: 1, lastSeq: 2, queued: i % 2 })
            )
          )
          expect(stored.map((s) => s.queue)).toEqual(ids.map((_, i) => i % 2 === 1 ? [queuedRef(i)] : []))
          for (const id of ids) {
            expect(yield* store.transcript(wid(id), { after: 0, limit: 10 })).toEqual([
              entry(1, { role: "user", content: `in ${id}` }),
              entry(2, { content: `out ${id}` })
            ])
            expect(yield* store.turn(wid(id), 1)).toEqual(turnRecord(id, 1, { lastSeq: 2 }))
          }
          expect(yield* store.counts).toEqual({ idle: 14, busy: 26, stopped: 0, failed: 0 })
        }).pipe((effect) => withStore(makePlace(), effect)))

      it.effect("of one Worker at once: entries in commit order, the last state of the row and of a turn wins", () =>
        Effect.gen(function*() {
          const store = yield* RuntimeStore
          yield* store.insertWorker(worker("a"), undefined)
          yield* store.insertWorker(worker("b"), undefined)
          // Commits offered in this order (the writer takes them in it), none answered before the next.
          const commits = Array.from({ length: 30 }, (_, i) => {
            const seq = i + 1
            const turn = Math.floor(i / 3) + 1
            // A turn every three commits: started (busy), going on, ended (idle).
            const ends = i % 3 === 2
            return {
              worker: worker("a", {
                status: ends ? "idle" as const : "busy" as const,
                turn,
                lastSeq: seq,
                updatedAt: `2026-01-01T00:00:${String(seq).padStart(2, "0")}.000Z`
              }),
              entries: [entry(seq, { turn, content: `entry ${seq}` })],
              turns: [
                turnRecord("a", turn, {
                  inputSeq: turn * 3 - 2,
                  lastSeq: seq,
                  ...(ends ? { status: "completed" as const, endedAt: "2026-01-01T00:01:00.000Z" } : {})
                })
              ],
              // Each turn's start removes the input queued by the commit just before (in the same batch, likely).
              ...(i % 3 === 0 ? { dequeue: [100 + i] } : { enqueue: queuedInput(100 + seq) })
            }
          })
          yield* Effect.forEach(
            [...commits, { worker: worker("b", { status: "stopped", stopReason: "done" }), entries: [] }],
            (change) => store.commit(change),
            { concurrency: "unbounded", discard: true }
          )
          const a = yield* store.getWorker(wid("a"))
          expect(a?.worker).toEqual(commits[29]!.worker)
          // What the turns' ends queued was removed by the next start, but for the last turn's.
          expect(a?.queue.map((ref) => ref.id)).toEqual(
            commits.flatMap((_, i) => i % 3 === 1 || i === 29 ? [100 + i + 1] : [])
          )
          expect((yield* store.getWorker(wid("b")))?.worker).toEqual(
            worker("b", { status: "stopped", stopReason: "done" })
          )
          expect(yield* store.transcript(wid("a"), { after: 0, limit: 100 })).toEqual(
            commits.map((change) => change.entries[0]!)
          )
          for (let turn = 1; turn <= 10; turn++) {
            expect(yield* store.turn(wid("a"), turn)).toEqual(commits[turn * 3 - 1]!.turns[0])
          }
          expect(yield* store.counts).toEqual({ idle: 1, busy: 0, stopped: 1, failed: 0 })
        }).pipe((effect) => withStore(makePlace(), effect)))

      if (options.commitsCanFail === true) {
        it.effect("a failing commit among concurrent ones fails alone: the others are stored, it leaves nothing", () =>
          Effect.gen(function*() {
            const store = yield* RuntimeStore
            yield* Effect.forEach(ids, (id) => store.insertWorker(worker(id), undefined), { discard: true })
            yield* store.commit({ worker: worker("w05", { lastSeq: 1, turn: 1 }), entries: [entry(1)] })
            const good = (id: string) => ({
              worker: worker(id, { status: "busy", lastSeq: id === "w05" ? 2 : 1, turn: 1 }),
              entries: [entry(id === "w05" ? 2 : 1, { content: `good ${id}` })],
              turns: [turnRecord(id, 1)]
            })
            const changes = [
              ...ids.slice(0, 10).map(good),
              // No such Worker.
              { worker: worker("nope", { status: "busy", lastSeq: 1 }), entries: [entry(1)] },
              ...ids.slice(10, 20).map(good),
              // An entry w05 already has.
              { worker: worker("w05", { status: "failed", lastSeq: 9 }), entries: [entry(1, { content: "again" })] },
              ...ids.slice(20).map(good)
            ]
            const results = yield* Effect.forEach(changes, (change) => Effect.either(store.commit(change)), {
              concurrency: "unbounded"
            })
            expect(results.map((result) => result._tag)).toEqual(
              changes.map((change) =>
                change.worker.id === "nope" || change.worker.status === "failed" ? "Left" : "Right"
              )
            )
            const failures = results.flatMap((result) => result._tag === "Left" ? [result.left] : [])
            expect(failures.map((error) => error.message)).toEqual([
              expect.stringContaining("no Worker nope to commit to"),
              expect.stringContaining("w05")
            ])
            expect((yield* store.loadWorkers).map((s) => s.worker)).toEqual(ids.map((id) => good(id).worker))
            expect(yield* store.transcript(wid("w05"), { after: 0, limit: 10 })).toEqual([
              entry(1),
              entry(2, { content: "good w05" })
            ])
            expect(yield* store.transcript(wid("w17"), { after: 0, limit: 10 })).toEqual([
              entry(1, { content: "good w17" })
            ])
            expect(yield* store.transcript(wid("nope"), { after: 0, limit: 10 })).toEqual([])
            expect(yield* store.counts).toEqual({ idle: 0, busy: 40, stopped: 0, failed: 0 })
          }).pipe((effect) => withStore(makePlace(), effect)))
      }
    })

    describe("lifecycle over the store", () => {
      it.effect("closing the Runtime interrupts turns in flight and records them", () =>
        Effect.gen(function*() {
          const place = makePlace()
          const first = yield* openRuntime(place)
          const slow = yield* first.runtime.create({ profile: "slow" })
          const idle = yield* first.runtime.create({})
          yield* first.runtime.input(slow.id, { content: "long" })
          yield* Scope.close(first.scope, Exit.void)

          const second = yield* openRuntime(place)
          const rt = second.runtime
          expect(yield* rt.get(slow.id)).toMatchObject({ status: "idle", lastSeq: 2, turn: 1 })
          const entries = (yield* rt.transcript(slow.id, {})).entries
          expect(entries.map((e) => e.role)).toEqual(["user", "runtime"])
          expect(entries[1]!.content).toContain("interrupted")
          expect(yield* rt.get(idle.id)).toEqual(idle)
          // ids keep sorting after the ones issued before
          const next = yield* rt.create({})
          expect(next.id > idle.id).toBe(true)
          yield* Scope.close(second.scope, Exit.void)
        }))

      it.effect("drain refuses new work and lets turns finish within the grace", () =>
        Effect.gen(function*() {
          const { control, runtime: rt, scope } = yield* openRuntime(makePlace(), { shutdownGraceMs: SLOW_MS * 3 })
          const busy = yield* rt.create({ profile: "slow" })
          const idle = yield* rt.create({})
          yield* rt.input(busy.id, { content: "finishes" })
          yield* waitForSleeps(1)
          const drain = yield* Effect.fork(control.drain)
          yield* Effect.yieldNow()
          expect((yield* rt.info).status).toBe("draining")
          expect(yield* Effect.flip(rt.create({}))).toBeInstanceOf(Unavailable)
          expect(yield* Effect.flip(rt.input(idle.id, { content: "x" }))).toBeInstanceOf(Unavailable)
          // reads, cancel and stop keep working while draining
          expect((yield* rt.cancel(idle.id)).cancelled).toBe(false)
          expect((yield* rt.list({})).workers).toHaveLength(2)
          expect(drain.unsafePoll()).toBeNull()
          yield* TestClock.adjust(SLOW_MS)
          yield* Fiber.join(drain)
          const entries = (yield* rt.transcript(busy.id, {})).entries
          expect(entries.map((e) => e.role)).toEqual(["user", "worker", "runtime"])
          expect(entries[2]).toMatchObject({ outcome: "completed" })
          expect((yield* rt.get(busy.id)).status).toBe("idle")
          yield* rt.stop(idle.id)
          yield* Scope.close(scope, Exit.void)
        }))

      it.effect("drain interrupts and records turns still running when the grace ends", () =>
        Effect.gen(function*() {
          const { control, runtime: rt, scope } = yield* openRuntime(makePlace(), { shutdownGraceMs: SLOW_MS / 2 })
          const busy = yield* rt.create({ profile: "slow" })
          yield* rt.input(busy.id, { content: "too long" })
          yield* waitForSleeps(1)
          const drain = yield* Effect.fork(control.drain)
          yield* waitForSleeps(2)
          yield* TestClock.adjust(SLOW_MS / 2)
          yield* Fiber.join(drain)
          expect(yield* rt.get(busy.id)).toMatchObject({ status: "idle", lastSeq: 2 })
          const entries = (yield* rt.transcript(busy.id, {})).entries
          expect(entries.map((e) => e.role)).toEqual(["user", "runtime"])
          expect(entries[1]!.content).toContain("interrupted")
          yield* TestClock.adjust(SLOW_MS)
          expect((yield* rt.transcript(busy.id, {})).entries).toHaveLength(2)
          yield* Scope.close(scope, Exit.void)
        }))

      it.effect("closing the scope also honours the grace, then interrupts what still runs", () =>
        Effect.gen(function*() {
          const place = makePlace()
          const { runtime: rt, scope } = yield* openRuntime(place, { shutdownGraceMs: SLOW_MS / 2 })
          const busy = yield* rt.create({ profile: "slow" })
          yield* rt.input(busy.id, { content: "too long" })
          yield* waitForSleeps(1)
          const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
          yield* waitForSleeps(2)
          yield* TestClock.adjust(SLOW_MS / 2)
          yield* Fiber.join(closing)
          const reopened = yield* openRuntime(place)
          const entries = (yield* reopened.runtime.transcript(busy.id, {})).entries
          expect(entries.map((e) => e.role)).toEqual(["user", "runtime"])
          expect(entries[1]!.content).toContain("interrupted")
          yield* Scope.close(reopened.scope, Exit.void)
        }))

      it.effect("restart recovers a turn that was in flight: recorded as interrupted, Worker idle", () =>
        Effect.gen(function*() {
          const place = makePlace()
          // What a crash leaves: a busy Worker whose input is committed, no end.
          yield* withStore(
            place,
            Effect.gen(function*() {
              const store = yield* RuntimeStore
              yield* store.insertWorker(worker("01A", { runtimeId: RuntimeId.make("rt") }), undefined)
              yield* store.commit({
                worker: worker("01A", { status: "busy", turn: 1, lastSeq: 1 }),
                entries: [entry(1, { role: "user", content: "hi" })],
                turns: [turnRecord("01A", 1)]
              })
              yield* store.insertWorker(worker("01B", { status: "stopped", stopReason: "bye", lastSeq: 0 }), undefined)
            })
          )
          const { runtime: rt, scope } = yield* openRuntime(place, { runtimeId: "rt" })
          expect(yield* rt.get(WorkerId.make("01A"))).toMatchObject({ status: "idle", turn: 1, lastSeq: 2 })
          const entries = (yield* rt.transcript(WorkerId.make("01A"), {})).entries
          expect(entries.map((e) => [e.seq, e.role, e.turn])).toEqual([[1, "user", 1], [2, "runtime", 1]])
          expect(entries[1]!.content).toContain("restart")
          expect(yield* rt.get(WorkerId.make("01B"))).toMatchObject({ status: "stopped", stopReason: "bye" })
          expect((yield* rt.info).workers).toMatchObject({ total: 2, idle: 1, busy: 0, stopped: 1 })
          yield* rt.input(WorkerId.make("01A"), { content: "again" })
          yield* Scope.close(scope, Exit.void)
        }))
    })
  })

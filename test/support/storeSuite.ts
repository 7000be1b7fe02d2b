/**
 * The `RuntimeStore` contract and the Runtime's lifecycle over a store that
 * outlives it: shutdown records interrupted turns, drain honours its grace,
 * restart recovers turns that were in flight. Runs over every store.
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
  Unavailable,
  type Worker,
  WorkerId
} from "../../src/index.js"
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
  ...patch
})

/** A transcript entry for store-level tests. */
export const entry = (seq: number, patch: Partial<TranscriptEntry> = {}): TranscriptEntry => ({
  seq,
  at: "2026-01-01T00:00:00.000Z",
  role: "worker",
  content: `entry ${seq}`,
  turn: 1,
  ...patch
})

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

export const storeSuite = (label: string, makePlace: MakeStorePlace) =>
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
          yield* store.insertWorker(worker("b"))
          yield* store.insertWorker(worker("a"))
          yield* store.insertWorker(worker("c", { status: "stopped", stopReason: "x" }))
          expect((yield* store.loadWorkers).map((w) => w.id)).toEqual(["a", "b", "c"])
          yield* store.commit(worker("a", { status: "busy", lastSeq: 3, turn: 1 }), [entry(1), entry(2), entry(3)])
          yield* store.commit(worker("a", { status: "idle", lastSeq: 4, turn: 1 }), [entry(4, { role: "runtime" })])
          yield* store.commit(worker("b", { metadata: { k: "v" } }), [])
          const loaded = yield* store.loadWorkers
          expect(loaded[0]).toEqual(worker("a", { status: "idle", lastSeq: 4, turn: 1 }))
          expect(loaded[1]).toEqual(worker("b", { metadata: { k: "v" } }))
          expect(loaded[2]).toEqual(worker("c", { status: "stopped", stopReason: "x" }))
          expect(yield* store.transcript("a", { after: 0, limit: 10 })).toEqual([
            entry(1),
            entry(2),
            entry(3),
            entry(4, { role: "runtime" })
          ])
          expect((yield* store.transcript("a", { after: 1, limit: 2 })).map((e) => e.seq)).toEqual([2, 3])
          expect(yield* store.transcript("a", { after: 4, limit: 10 })).toEqual([])
          expect(yield* store.transcript("zzz", { after: 0, limit: 10 })).toEqual([])
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
          expect(entries.map((e) => e.role)).toEqual(["user", "worker"])
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
              yield* store.insertWorker(worker("01A", { runtimeId: RuntimeId.make("rt") }))
              yield* store.commit(worker("01A", { status: "busy", turn: 1, lastSeq: 1 }), [
                entry(1, { role: "user", content: "hi" })
              ])
              yield* store.insertWorker(worker("01B", { status: "stopped", stopReason: "bye", lastSeq: 0 }))
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

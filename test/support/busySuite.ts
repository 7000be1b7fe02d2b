/**
 * The busy policy (docs/rest.md): `ifBusy: enqueue` queues inputs that become
 * turns in arrival order, `interrupt` cancels the turn in flight and starts
 * the new one with nothing in between; cancel with `clearQueue` and stop drop
 * the queue and say how many. Runs embedded, over HTTP and on SQLite.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, TestClock } from "effect"
import {
  Busy,
  Runtime,
  type RuntimeOptions,
  type TranscriptEntry,
  type Worker,
  type WorkerId
} from "../../src/index.js"
import { SLOW_MS, suiteProfiles } from "./engines.js"
import { eventually, waitForSleeps } from "./eventually.js"
import type { MakeRuntimeLayer } from "./followSuite.js"

const rt = Runtime

const entriesOf = (workerId: WorkerId) =>
  Effect.flatMap(rt, (runtime) => Effect.map(runtime.transcript(workerId, { limit: 1000 }), (page) => page.entries))

const awaitWorker = (workerId: WorkerId, check: (worker: Worker) => boolean, what: string) =>
  Effect.flatMap(rt, (runtime) => eventually(runtime.get(workerId), check, what))

/** Lets the turn sleeping on the TestClock end. */
const endTurn = Effect.gen(function*() {
  yield* waitForSleeps(1)
  yield* TestClock.adjust(SLOW_MS)
})

const inputs = (entries: ReadonlyArray<TranscriptEntry>) =>
  entries.filter((entry) => entry.role === "user" || entry.role === "system")

export const busySuite = (label: string, make: MakeRuntimeLayer) =>
  describe(label, () => {
    const withRuntime = (options: RuntimeOptions = {}) => <A, E>(effect: Effect.Effect<A, E, Runtime>) =>
      Effect.provide(effect, make({ profiles: suiteProfiles, ...options }))

    it.effect("enqueue: 50 concurrent inputs on a busy Worker become turns in the order they were accepted", () =>
      Effect.gen(function*() {
        const runtime = yield* rt
        const worker = yield* runtime.create({ profile: "slow" })
        yield* runtime.input(worker.id, { content: "first" })
        const results = yield* Effect.forEach(
          Array.from({ length: 50 }, (_, i) => i),
          (i) => runtime.input(worker.id, { content: `q${i}`, ifBusy: "enqueue" }),
          { concurrency: "unbounded" }
        )
        expect(results.every((result) => result.queued && result.entry === undefined)).toBe(true)
        // Positions 1..50, in the order the runtime accepted them.
        const byPosition = [...results].sort((a, b) => a.position! - b.position!)
        expect(byPosition.map((result) => result.position)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1))
        expect((yield* runtime.get(worker.id)).queued).toBe(50)
        // Queued inputs are not in the transcript until their turn starts.
        expect(inputs(yield* entriesOf(worker.id)).map((entry) => entry.content)).toEqual(["first"])
        for (let turn = 0; turn < 51; turn++) yield* endTurn
        const idle = yield* awaitWorker(worker.id, (w) => w.status === "idle", "the queue drained")
        expect(idle).toMatchObject({ turn: 51, queued: 0 })
        const entries = yield* entriesOf(worker.id)
        // Input i, accepted at position p, is the input of turn p + 1: arrival order.
        results.forEach((result, i) => {
          expect(inputs(entries).find((entry) => entry.turn === result.position! + 1)?.content).toBe(`q${i}`)
        })
        // Each queued input is recorded right after the end of the turn before it.
        for (const input of inputs(entries).slice(1)) {
          const before = entries[input.seq - 2]!
          expect(before).toMatchObject({ role: "runtime", outcome: "completed", turn: input.turn - 1 })
        }
        expect(entries.map((entry) => entry.seq)).toEqual(entries.map((_, i) => i + 1))
        expect(new Set(inputs(entries).map((entry) => entry.content)).size).toBe(51)
      }).pipe(withRuntime()))

    it.effect("enqueue: past maxQueuedInputs it is Busy; on an idle Worker every policy starts a turn at once", () =>
      Effect.gen(function*() {
        const runtime = yield* rt
        const idle = yield* runtime.create({ profile: "slow" })
        for (const ifBusy of ["enqueue", "interrupt", "reject"] as const) {
          const other = yield* runtime.create({ profile: "slow" })
          const accepted = yield* runtime.input(other.id, { content: "x", ifBusy })
          expect(accepted).toMatchObject({ queued: false, entry: { seq: 1 }, worker: { status: "busy" } })
        }
        yield* runtime.input(idle.id, { content: "x" })
        for (let i = 0; i < 3; i++) {
          const queued = yield* runtime.input(idle.id, { content: `q${i}`, ifBusy: "enqueue" })
          expect(queued).toMatchObject({ queued: true, position: i + 1, worker: { queued: i + 1 } })
        }
        const full = yield* Effect.flip(runtime.input(idle.id, { content: "q3", ifBusy: "enqueue" }))
        expect(full).toBeInstanceOf(Busy)
        expect((yield* runtime.get(idle.id)).queued).toBe(3)
      }).pipe(withRuntime({ maxQueuedInputs: 3 })))

    it.effect("enqueue: past maxQueuedBytes of queued content it is Busy, and queued content still runs in order", () =>
      Effect.gen(function*() {
        const runtime = yield* rt
        const worker = yield* runtime.create({ profile: "slow" })
        yield* runtime.input(worker.id, { content: "first" })
        // 5 + 4 bytes fit in 10 ("é" is 2 bytes in UTF-8); 3 more would not.
        yield* runtime.input(worker.id, { content: "été", ifBusy: "enqueue" })
        yield* runtime.input(worker.id, { content: "four", ifBusy: "enqueue" })
        const full = yield* Effect.flip(runtime.input(worker.id, { content: "xyz", ifBusy: "enqueue" }))
        expect(full).toBeInstanceOf(Busy)
        expect(full.message).toContain("9 bytes of input queued; at most 10")
        expect((yield* runtime.get(worker.id)).queued).toBe(2)
        for (let turn = 1; turn <= 3; turn++) {
          yield* endTurn
          yield* awaitWorker(worker.id, (w) => w.turn > turn || w.status === "idle", `turn ${turn} ended`)
        }
        yield* awaitWorker(worker.id, (w) => w.status === "idle", "the queue run")
        const page = yield* runtime.transcript(worker.id, {})
        expect(inputs(page.entries).map((entry) => entry.content)).toEqual(["first", "été", "four"])
      }).pipe(withRuntime({ maxQueuedBytes: 10 })))

    it.effect("interrupt: 20 concurrent interrupts each become a turn, every turn but the last cancelled", () =>
      Effect.gen(function*() {
        const runtime = yield* rt
        const worker = yield* runtime.create({ profile: "slow" })
        yield* runtime.input(worker.id, { content: "first" })
        const results = yield* Effect.forEach(
          Array.from({ length: 20 }, (_, i) => i),
          (i) => Effect.either(runtime.input(worker.id, { content: `i${i}`, ifBusy: "interrupt" })),
          { concurrency: "unbounded" }
        )
        expect(results.every(Either.isRight)).toBe(true)
        yield* endTurn
        const idle = yield* awaitWorker(worker.id, (w) => w.status === "idle", "the last turn's end")
        expect(idle.turn).toBe(21)
        const entries = yield* entriesOf(worker.id)
        expect(entries.map((entry) => entry.seq)).toEqual(entries.map((_, i) => i + 1))
        const ends = entries.filter((entry) => entry.role === "runtime")
        expect(ends).toHaveLength(21)
        expect(ends.slice(0, 20).every((entry) => entry.outcome === "cancelled")).toBe(true)
        expect(ends[0]!.content).toBe("cancelled: interrupted by new input")
        expect(ends[20]).toMatchObject({ outcome: "completed", turn: 21 })
        // Nothing slipped in between: each cancelled end is followed by the next input.
        for (const end of ends.slice(0, 20)) {
          expect(entries[end.seq]).toMatchObject({ role: "user", turn: end.turn + 1 })
        }
      }).pipe(withRuntime()))

    it.effect("cancel without clearQueue starts the next queued input; with it, the queue is dropped and counted", () =>
      Effect.gen(function*() {
        const runtime = yield* rt
        const worker = yield* runtime.create({ profile: "slow" })
        yield* runtime.input(worker.id, { content: "first" })
        yield* runtime.input(worker.id, { content: "second", ifBusy: "enqueue" })
        yield* runtime.input(worker.id, { content: "third", ifBusy: "enqueue" })
        yield* runtime.input(worker.id, { content: "fourth", ifBusy: "enqueue" })
        const next = yield* runtime.cancel(worker.id, { reason: "skip" })
        expect(next).toMatchObject({ cancelled: true, worker: { status: "busy", turn: 2, queued: 2 } })
        const cleared = yield* runtime.cancel(worker.id, { reason: "enough", clearQueue: true })
        expect(cleared).toMatchObject({ cancelled: true, worker: { status: "idle", turn: 2, queued: 0 } })
        const entries = yield* entriesOf(worker.id)
        expect(entries.map(({ content, role }) => `${role}: ${content}`)).toEqual([
          "user: first",
          "runtime: cancelled: skip",
          "user: second",
          "runtime: cancelled: enough (2 queued inputs dropped)"
        ])
      }).pipe(withRuntime()))

    it.effect("stop drops the queue and says how many", () =>
      Effect.gen(function*() {
        const runtime = yield* rt
        const worker = yield* runtime.create({ profile: "slow" })
        yield* runtime.input(worker.id, { content: "first" })
        yield* runtime.input(worker.id, { content: "second", ifBusy: "enqueue" })
        const stopped = yield* runtime.stop(worker.id, { reason: "bye" })
        expect(stopped).toMatchObject({ status: "stopped", queued: 0 })
        const last = (yield* entriesOf(worker.id)).at(-1)
        expect(last).toMatchObject({ outcome: "stopped", content: "stopped: bye (1 queued input dropped)" })
      }).pipe(withRuntime()))
  })

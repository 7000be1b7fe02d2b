/**
 * The behavioural suite of the Worker semantics and error table of docs/rest.md,
 * written against the `Runtime` tag only. It runs over `RuntimeLive`, over
 * `RuntimeHttpClient -> server -> RuntimeLive`, and over the SQLite store.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, type Layer, TestClock } from "effect"

import {
  Busy,
  InvalidInput,
  Runtime,
  type RuntimeOptions,
  type TranscriptEntry,
  Unavailable,
  UnknownWorker,
  Unsupported,
  type Worker,
  WorkerId
} from "../../src/index.js"
import { forgetfulReleases, SLOW_MS, suiteProfiles } from "./engines.js"
import { eventually, eventuallyLive, HANG_MS, settle, waitForSleeps } from "./eventually.js"

export type MakeRuntimeLayer = (options: RuntimeOptions) => Layer.Layer<Runtime, unknown>

/** Advances the TestClock once a turn has started sleeping on it. */
const advanceTurn = Effect.gen(function*() {
  yield* waitForSleeps(1)
  yield* TestClock.adjust(SLOW_MS)
})

const rt = Runtime

const awaitStatus = (workerId: WorkerId, status: Worker["status"]) =>
  Effect.flatMap(
    rt,
    (runtime) => eventually(runtime.get(workerId), (worker) => worker.status === status, `Worker ${status}`)
  )

const entriesOf = (workerId: WorkerId) =>
  Effect.flatMap(rt, (runtime) => Effect.map(runtime.transcript(workerId, { limit: 1000 }), (page) => page.entries))

const shape = (entries: ReadonlyArray<TranscriptEntry>) =>
  entries.map(({ content, outcome, role, seq, turn }) => ({
    seq,
    role,
    content,
    turn,
    ...(outcome === undefined ? {} : { outcome })
  }))

export const runtimeSuite = (label: string, make: MakeRuntimeLayer) =>
  describe(label, () => {
    const withRuntime = (options: RuntimeOptions = {}) => <A, E>(effect: Effect.Effect<A, E, Runtime>) =>
      Effect.provide(effect, make({ profiles: suiteProfiles, ...options }))

    describe("create and get", () => {
      it.effect("creates an idle Worker with the contract's fields", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const info = yield* runtime.info
          const worker = yield* runtime.create({ metadata: { team: "a" } })
          expect(worker).toMatchObject({
            runtimeId: info.runtimeId,
            profile: "default",
            status: "idle",
            turn: 0,
            lastSeq: 0,
            metadata: { team: "a" }
          })
          expect(worker.stopReason).toBeUndefined()
          expect(worker.createdAt).toBe(worker.updatedAt)
          expect(Number.isNaN(Date.parse(worker.createdAt))).toBe(false)
          expect(yield* runtime.get(worker.id)).toEqual(worker)
          const other = yield* runtime.create({ profile: "slow" })
          expect(other.profile).toBe("slow")
          expect(other.metadata).toEqual({})
        }).pipe(withRuntime()))

      it.effect("issues unique, URL-safe ids that sort by creation", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const workers = yield* Effect.forEach(Array.from({ length: 50 }), () => runtime.create({}))
          const ids = workers.map((worker) => worker.id)
          expect(new Set(ids).size).toBe(ids.length)
          expect([...ids].sort()).toEqual(ids)
          for (const id of ids) expect(encodeURIComponent(id)).toBe(id)
        }).pipe(withRuntime()))

      it.effect("answers UnknownWorker for an id it does not hold", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const error = yield* Effect.flip(runtime.get(WorkerId.make("nope")))
          expect(error).toBeInstanceOf(UnknownWorker)
          expect(error).toMatchObject({ _tag: "UnknownWorker", workerId: "nope" })
          expect(typeof error.message).toBe("string")
        }).pipe(withRuntime()))

      it.effect("rejects an unknown profile and every malformed create as InvalidInput", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const bad: Array<unknown> = [
            { profile: "nope" },
            { profile: "" },
            { profile: "constructor" },
            { profile: "toString" },
            { profile: "__proto__" },
            { command: ["sh"] },
            { profile: "default", env: { A: "b" } },
            { profile: 1 },
            { metadata: { "": "empty key" } },
            { metadata: { ["k".repeat(65)]: "long key" } },
            { metadata: { key: "v".repeat(1025) } },
            { metadata: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, "v"])) },
            { metadata: { key: 1 } },
            { metadata: JSON.parse("{\"__proto__\":\"x\",\"a\":\"b\"}") },
            { metadata: "no" }
          ]
          for (const request of bad) {
            // deliberately untyped: the Runtime validates what it is given
            const error = yield* Effect.flip(runtime.create(request as never))
            expect(error, JSON.stringify(request)).toBeInstanceOf(InvalidInput)
          }
          const edge = yield* runtime.create({
            metadata: {
              ["k".repeat(64)]: "v".repeat(1024),
              ...Object.fromEntries(Array.from({ length: 31 }, (_, i) => [`k${i}`, ""]))
            }
          })
          expect(Object.keys(edge.metadata)).toHaveLength(32)
          expect((yield* runtime.info).workers.total).toBe(1)
        }).pipe(withRuntime()))
    })

    describe("input and turns", () => {
      it.effect("records the input, answers at once, then the echo turn appends the output", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({})
          const accepted = yield* runtime.input(worker.id, { content: "hello" })
          expect(accepted.entry).toMatchObject({ seq: 1, role: "user", content: "hello", turn: 1 })
          expect(accepted.worker).toMatchObject({ id: worker.id, status: "busy", turn: 1, lastSeq: 1 })
          const idle = yield* awaitStatus(worker.id, "idle")
          expect(idle).toMatchObject({ turn: 1, lastSeq: 3 })
          expect(shape(yield* entriesOf(worker.id))).toEqual([
            { seq: 1, role: "user", content: "hello", turn: 1 },
            { seq: 2, role: "worker", content: "hello", turn: 1 },
            { seq: 3, role: "runtime", content: "completed", turn: 1, outcome: "completed" }
          ])
          yield* runtime.input(worker.id, { content: "again", kind: "system" })
          yield* awaitStatus(worker.id, "idle")
          const entries = yield* entriesOf(worker.id)
          expect(shape(entries.slice(3))).toEqual([
            { seq: 4, role: "system", content: "again", turn: 2 },
            { seq: 5, role: "worker", content: "again", turn: 2 },
            { seq: 6, role: "runtime", content: "completed", turn: 2, outcome: "completed" }
          ])
        }).pipe(withRuntime()))

      it.effect("gives the engine the input kind and records what it emits, in order", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({ profile: "chatty" })
          yield* runtime.input(worker.id, { content: "x", kind: "system" })
          yield* awaitStatus(worker.id, "idle")
          expect(shape(yield* entriesOf(worker.id))).toEqual([
            { seq: 1, role: "system", content: "x", turn: 1 },
            { seq: 2, role: "worker", content: "one:x", turn: 1 },
            { seq: 3, role: "worker", content: "two:system", turn: 1 },
            { seq: 4, role: "worker", content: "three:1", turn: 1 },
            { seq: 5, role: "runtime", content: "completed", turn: 1, outcome: "completed" }
          ])
          expect((yield* runtime.get(worker.id)).lastSeq).toBe(5)
        }).pipe(withRuntime()))

      it.effect("of 100 concurrent inputs to one idle Worker exactly one is accepted", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({ profile: "slow" })
          const results = yield* Effect.forEach(
            Array.from({ length: 100 }, (_, i) => i),
            (i) => Effect.either(runtime.input(worker.id, { content: `n${i}` })),
            { concurrency: "unbounded" }
          )
          const accepted = results.filter(Either.isRight)
          const refused = results.filter(Either.isLeft).map((result) => result.left)
          expect(accepted).toHaveLength(1)
          expect(refused).toHaveLength(99)
          for (const error of refused) {
            expect(error).toBeInstanceOf(Busy)
            expect(error).toMatchObject({ workerId: worker.id, turn: 1 })
          }
          const entries = yield* entriesOf(worker.id)
          expect(entries).toHaveLength(1)
          expect(entries[0]!.content).toBe(accepted[0]!.right.entry?.content)
          yield* advanceTurn
          yield* awaitStatus(worker.id, "idle")
          expect(yield* entriesOf(worker.id)).toHaveLength(3)
        }).pipe(withRuntime()))

      it.effect("answers Busy while a turn is in flight and records nothing", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({ profile: "slow" })
          yield* runtime.input(worker.id, { content: "first" })
          const error = yield* Effect.flip(runtime.input(worker.id, { content: "second" }))
          expect(error).toBeInstanceOf(Busy)
          expect((yield* runtime.get(worker.id)).lastSeq).toBe(1)
          yield* advanceTurn
          yield* awaitStatus(worker.id, "idle")
          yield* runtime.input(worker.id, { content: "third" })
          yield* advanceTurn
          yield* awaitStatus(worker.id, "idle")
          expect(shape(yield* entriesOf(worker.id)).map((entry) => entry.content)).toEqual([
            "first",
            "first",
            "completed",
            "third",
            "third",
            "completed"
          ])
        }).pipe(withRuntime()))

      it.effect("turns on different Workers run at the same time", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const workers = yield* Effect.forEach(Array.from({ length: 20 }), () => runtime.create({ profile: "slow" }))
          yield* Effect.forEach(workers, (worker) => runtime.input(worker.id, { content: worker.id }), {
            concurrency: "unbounded"
          })
          expect((yield* runtime.info).workers.busy).toBe(20)
          yield* eventually(TestClock.sleeps(), (sleeps) => Chunk.size(sleeps) === 20, "20 turns sleeping")
          yield* TestClock.adjust(SLOW_MS)
          for (const worker of workers) yield* awaitStatus(worker.id, "idle")
          expect((yield* runtime.info).workers).toMatchObject({ total: 20, idle: 20, busy: 0 })
        }).pipe(withRuntime()))

      it.effect("validates input: shape before UnknownWorker, size after it", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({})
          const malformed: Array<unknown> = [
            { content: "" },
            {},
            { content: 1 },
            { content: "x", kind: "worker" },
            { content: "x", kind: "runtime" },
            { content: "x", extra: true },
            null
          ]
          for (const input of malformed) {
            const error = yield* Effect.flip(runtime.input(worker.id, input as never))
            expect(error, JSON.stringify(input)).toBeInstanceOf(InvalidInput)
            const onUnknown = yield* Effect.flip(runtime.input(WorkerId.make("nope"), input as never))
            expect(onUnknown, JSON.stringify(input)).toBeInstanceOf(InvalidInput)
          }
          const big = "é".repeat(40) // 80 UTF-8 bytes, 40 UTF-16 units
          const tooBig = yield* Effect.flip(runtime.input(worker.id, { content: big }))
          expect(tooBig).toBeInstanceOf(InvalidInput)
          expect(yield* Effect.flip(runtime.input(WorkerId.make("nope"), { content: big }))).toBeInstanceOf(
            UnknownWorker
          )
          yield* runtime.input(worker.id, { content: "é".repeat(32) }) // exactly 64 bytes
          expect((yield* runtime.get(worker.id)).lastSeq).toBeGreaterThanOrEqual(1)
        }).pipe(withRuntime({ maxInputBytes: 64 })))

      it.effect("refuses an input kind the engine does not take as Unsupported", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({ profile: "userOnly" })
          const error = yield* Effect.flip(runtime.input(worker.id, { content: "x", kind: "system" }))
          expect(error).toBeInstanceOf(Unsupported)
          expect(error).toMatchObject({ operation: "input:system", workerId: worker.id })
          expect((yield* runtime.get(worker.id)).lastSeq).toBe(0)
          yield* runtime.input(worker.id, { content: "x" })
        }).pipe(withRuntime()))

      it.effect("records an engine failure and keeps the Worker usable", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({ profile: "failing" })
          yield* runtime.input(worker.id, { content: "go" })
          yield* awaitStatus(worker.id, "idle")
          const entries = shape(yield* entriesOf(worker.id))
          expect(entries.map(({ role }) => role)).toEqual(["user", "worker", "runtime"])
          expect(entries[2]!.content).toContain("boom")
          yield* runtime.input(worker.id, { content: "again" })
          yield* awaitStatus(worker.id, "idle")
          expect((yield* runtime.get(worker.id)).lastSeq).toBe(6)
        }).pipe(withRuntime()))

      it.effect("records an engine defect as a failure too", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({ profile: "defect" })
          yield* runtime.input(worker.id, { content: "go" })
          yield* awaitStatus(worker.id, "idle")
          const entries = yield* entriesOf(worker.id)
          expect(entries.map(({ role }) => role)).toEqual(["user", "runtime"])
        }).pipe(withRuntime()))

      it.effect("marks the Worker failed when the engine says it cannot continue", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({ profile: "fatal" })
          yield* runtime.input(worker.id, { content: "go" })
          const failed = yield* awaitStatus(worker.id, "failed")
          expect(failed.lastSeq).toBe(2)
          expect((yield* entriesOf(worker.id))[1]!.content).toContain("cannot continue")
          const input = yield* Effect.flip(runtime.input(worker.id, { content: "more" }))
          expect(input).toMatchObject({ _tag: "Unsupported", operation: "input" })
          const cancel = yield* Effect.flip(runtime.cancel(worker.id, {}))
          expect(cancel).toMatchObject({ _tag: "Unsupported", operation: "cancel" })
          expect((yield* runtime.info).workers.failed).toBe(1)
          const stopped = yield* runtime.stop(worker.id)
          expect(stopped.status).toBe("stopped")
        }).pipe(withRuntime()))
    })

    describe("cancel", () => {
      it.effect("interrupts the turn in flight and records the reason", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({ profile: "slow" })
          yield* runtime.input(worker.id, { content: "long" })
          const result = yield* runtime.cancel(worker.id, { reason: "user pressed stop" })
          expect(result.cancelled).toBe(true)
          expect(result.worker).toMatchObject({ status: "idle", lastSeq: 2, turn: 1 })
          yield* TestClock.adjust(SLOW_MS * 2)
          yield* settle
          const entries = shape(yield* entriesOf(worker.id))
          expect(entries).toHaveLength(2)
          expect(entries[1]).toEqual({
            seq: 2,
            role: "runtime",
            turn: 1,
            outcome: "cancelled",
            content: "cancelled: user pressed stop"
          })
          yield* runtime.input(worker.id, { content: "next" })
          yield* advanceTurn
          const idle = yield* awaitStatus(worker.id, "idle")
          expect(idle).toMatchObject({ turn: 2, lastSeq: 5 })
        }).pipe(withRuntime()))

      it.effect("on an idle Worker answers cancelled: false and records nothing", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({})
          const result = yield* runtime.cancel(worker.id)
          expect(result).toEqual({ worker, cancelled: false })
          const again = yield* runtime.cancel(worker.id, {})
          expect(again.cancelled).toBe(false)
          expect((yield* runtime.get(worker.id)).lastSeq).toBe(0)
        }).pipe(withRuntime()))

      it.effect("of concurrent cancels exactly one cancels", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({ profile: "slow" })
          yield* runtime.input(worker.id, { content: "long" })
          const results = yield* Effect.forEach(
            Array.from({ length: 50 }),
            () => runtime.cancel(worker.id, { reason: "race" }),
            { concurrency: "unbounded" }
          )
          expect(results.filter((result) => result.cancelled)).toHaveLength(1)
          expect((yield* entriesOf(worker.id)).filter((entry) => entry.role === "runtime")).toHaveLength(1)
        }).pipe(withRuntime()))

      it.effect("answers UnknownWorker, and Unsupported for an engine that cannot cancel", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          expect(yield* Effect.flip(runtime.cancel(WorkerId.make("nope")))).toBeInstanceOf(UnknownWorker)
          const worker = yield* runtime.create({ profile: "uncancellable" })
          yield* runtime.input(worker.id, { content: "x" })
          const error = yield* Effect.flip(runtime.cancel(worker.id))
          expect(error).toMatchObject({ _tag: "Unsupported", operation: "cancel", workerId: worker.id })
          const stopped = yield* runtime.stop(worker.id)
          expect(stopped.status).toBe("stopped")
        }).pipe(withRuntime()))
    })

    describe("stop", () => {
      it.effect("interrupts the turn, records one runtime entry and is terminal", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({ profile: "slow" })
          yield* runtime.input(worker.id, { content: "long" })
          const stopped = yield* runtime.stop(worker.id, { reason: "done here" })
          expect(stopped).toMatchObject({ status: "stopped", stopReason: "done here", lastSeq: 2 })
          yield* TestClock.adjust(SLOW_MS * 2)
          yield* settle
          const entries = shape(yield* entriesOf(worker.id))
          expect(entries.map(({ role }) => role)).toEqual(["user", "runtime"])
          expect(entries[1]!.content).toContain("done here")
          const again = yield* runtime.stop(worker.id, { reason: "other" })
          expect(again).toEqual(stopped)
          expect(yield* entriesOf(worker.id)).toHaveLength(2)
          const input = yield* Effect.flip(runtime.input(worker.id, { content: "x" }))
          expect(input).toMatchObject({ _tag: "Unsupported", operation: "input", workerId: worker.id })
          const cancel = yield* Effect.flip(runtime.cancel(worker.id))
          expect(cancel).toMatchObject({ _tag: "Unsupported", operation: "cancel" })
        }).pipe(withRuntime()))

      it.effect("of an idle Worker records one entry and defaults the reason to \"stopped\"", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({})
          const stopped = yield* runtime.stop(worker.id)
          expect(stopped).toMatchObject({ status: "stopped", stopReason: "stopped", lastSeq: 1, turn: 0 })
          const entries = yield* entriesOf(worker.id)
          expect(entries).toHaveLength(1)
          expect(entries[0]).toMatchObject({ seq: 1, role: "runtime", turn: 0 })
          expect(yield* Effect.flip(runtime.stop(WorkerId.make("nope")))).toBeInstanceOf(UnknownWorker)
          const other = yield* runtime.create({})
          const blank = yield* runtime.stop(other.id, { reason: "" })
          expect(blank.stopReason).toBe("stopped")
          expect((yield* entriesOf(other.id))[0]!.content).toBe("stopped")
        }).pipe(withRuntime()))

      it.effect("of concurrent stops exactly one records", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({ profile: "slow" })
          yield* runtime.input(worker.id, { content: "x" })
          const results = yield* Effect.forEach(
            Array.from({ length: 50 }, (_, i) => i),
            (i) => runtime.stop(worker.id, { reason: `r${i}` }),
            { concurrency: "unbounded" }
          )
          const reasons = new Set(results.map((result) => result.stopReason))
          expect(reasons.size).toBe(1)
          expect(yield* entriesOf(worker.id)).toHaveLength(2)
        }).pipe(withRuntime()))

      it.effect("racing with inputs and cancels leaves contiguous seqs and a consistent Worker", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const workers = yield* Effect.forEach(Array.from({ length: 10 }), () => runtime.create({}))
          yield* Effect.forEach(
            Array.from({ length: 300 }, (_, i) => i),
            (i) => {
              const worker = workers[i % workers.length]!
              const op: Effect.Effect<unknown, unknown> = i % 3 === 0
                ? runtime.input(worker.id, { content: `c${i}` })
                : i % 3 === 1
                ? runtime.cancel(worker.id, { reason: `r${i}` })
                : i % 50 === 2
                ? runtime.stop(worker.id)
                : runtime.get(worker.id)
              return Effect.either(Effect.asVoid(op))
            },
            { concurrency: "unbounded" }
          )
          for (const worker of workers) {
            const settled = yield* eventually(
              runtime.get(worker.id),
              (w) => w.status !== "busy",
              "Worker settled"
            )
            const entries = yield* entriesOf(worker.id)
            expect(entries.map((entry) => entry.seq)).toEqual(entries.map((_, i) => i + 1))
            expect(settled.lastSeq).toBe(entries.length)
          }
        }).pipe(withRuntime()))
    })

    describe("transcript", () => {
      it.effect("stops a page before its content passes 4 MiB, at least one entry, and continues from there", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({ profile: "big" })
          yield* runtime.input(worker.id, { content: "x" })
          yield* awaitStatus(worker.id, "idle")
          // The input (1 byte), then five entries of 1.5 MiB.
          const first = yield* runtime.transcript(worker.id, { limit: 1000 })
          expect(first.entries.map((entry) => entry.seq)).toEqual([1, 2, 3])
          expect(first.nextAfter).toBe(3)
          const second = yield* runtime.transcript(worker.id, { after: 3, limit: 1000 })
          expect(second.entries.map((entry) => entry.seq)).toEqual([4, 5])
          const third = yield* runtime.transcript(worker.id, { after: 5 })
          expect(third.entries.map((entry) => entry.seq)).toEqual([6, 7])
          expect(third.nextAfter).toBeNull()
        }).pipe(withRuntime()))

      it.effect("pages by seq with after and limit", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({})
          for (let i = 0; i < 5; i++) {
            yield* runtime.input(worker.id, { content: `m${i}` })
            yield* awaitStatus(worker.id, "idle")
          }
          const all = yield* runtime.transcript(worker.id, {})
          expect(all).toMatchObject({ workerId: worker.id, nextAfter: null, lastSeq: 15 })
          expect(all.entries.map((entry) => entry.seq)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1))
          const first = yield* runtime.transcript(worker.id, { limit: 4 })
          expect(first.entries.map((entry) => entry.seq)).toEqual([1, 2, 3, 4])
          expect(first.nextAfter).toBe(4)
          const middle = yield* runtime.transcript(worker.id, { after: 4, limit: 4 })
          expect(middle.entries.map((entry) => entry.seq)).toEqual([5, 6, 7, 8])
          expect(middle.nextAfter).toBe(8)
          const last = yield* runtime.transcript(worker.id, { after: 12, limit: 4 })
          expect(last.entries.map((entry) => entry.seq)).toEqual([13, 14, 15])
          expect(last.nextAfter).toBeNull()
          const exact = yield* runtime.transcript(worker.id, { after: 11, limit: 4 })
          expect(exact.nextAfter).toBeNull()
          const beyond = yield* runtime.transcript(worker.id, { after: 50 })
          expect(beyond).toMatchObject({ entries: [], nextAfter: null, lastSeq: 15 })
          const fresh = yield* runtime.create({})
          expect(yield* runtime.transcript(fresh.id, {})).toEqual({
            workerId: fresh.id,
            entries: [],
            nextAfter: null,
            lastSeq: 0
          })
        }).pipe(withRuntime()))

      it.effect("defaults to 100 entries and takes up to 1000", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({})
          for (let i = 0; i < 40; i++) {
            yield* runtime.input(worker.id, { content: `m${i}` })
            yield* awaitStatus(worker.id, "idle")
          }
          const page = yield* runtime.transcript(worker.id, {})
          expect(page.entries).toHaveLength(100)
          expect(page.nextAfter).toBe(100)
          expect((yield* runtime.transcript(worker.id, { limit: 1000 })).entries).toHaveLength(120)
        }).pipe(withRuntime()))

      it.effect("validates the query before the Worker", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({})
          const bad: Array<unknown> = [
            { limit: 0 },
            { limit: 1001 },
            { limit: 1.5 },
            { after: -1 },
            { after: 0.5 }
          ]
          for (const query of bad) {
            expect(yield* Effect.flip(runtime.transcript(worker.id, query as never))).toBeInstanceOf(InvalidInput)
            expect(yield* Effect.flip(runtime.transcript(WorkerId.make("nope"), query as never))).toBeInstanceOf(
              InvalidInput
            )
          }
          expect(yield* Effect.flip(runtime.transcript(WorkerId.make("nope"), {}))).toBeInstanceOf(UnknownWorker)
          // unknown query keys are ignored, as in a URL query string
          expect((yield* runtime.transcript(worker.id, { other: 1 } as never)).entries).toEqual([])
        }).pipe(withRuntime()))
    })

    describe("list", () => {
      it.effect("pages Workers in creation order with a cursor and filters by status", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const workers = yield* Effect.forEach(Array.from({ length: 7 }), () => runtime.create({}))
          const ids = workers.map((worker) => worker.id)
          yield* runtime.stop(ids[1]!)
          yield* runtime.stop(ids[4]!)
          const all = yield* runtime.list({})
          expect(all.workers.map((worker) => worker.id)).toEqual(ids)
          expect(all.nextAfter).toBeNull()
          const first = yield* runtime.list({ limit: 3 })
          expect(first.workers.map((worker) => worker.id)).toEqual(ids.slice(0, 3))
          expect(first.nextAfter).toBe(ids[2])
          const second = yield* runtime.list({ limit: 3, after: first.nextAfter! })
          expect(second.workers.map((worker) => worker.id)).toEqual(ids.slice(3, 6))
          const third = yield* runtime.list({ limit: 3, after: second.nextAfter! })
          expect(third.workers.map((worker) => worker.id)).toEqual(ids.slice(6))
          expect(third.nextAfter).toBeNull()
          const exact = yield* runtime.list({ limit: 7 })
          expect(exact.nextAfter).toBeNull()
          const stopped = yield* runtime.list({ status: "stopped" })
          expect(stopped.workers.map((worker) => worker.id)).toEqual([ids[1], ids[4]])
          const idle = yield* runtime.list({ status: "idle", limit: 2 })
          expect(idle.workers.map((worker) => worker.id)).toEqual([ids[0], ids[2]])
          const idleNext = yield* runtime.list({ status: "idle", limit: 10, after: idle.nextAfter! })
          expect(idleNext.workers.map((worker) => worker.id)).toEqual([ids[3], ids[5], ids[6]])
          expect((yield* runtime.list({ status: "busy" })).workers).toEqual([])
          // `after` is a position: any string works
          expect((yield* runtime.list({ after: "" })).workers).toHaveLength(7)
          expect((yield* runtime.list({ after: "~" })).workers).toHaveLength(0)
          expect((yield* runtime.list({ after: ids[3]!.slice(0, 5) })).workers.length).toBeGreaterThan(0)
        }).pipe(withRuntime()))

      it.effect("rejects a malformed query as InvalidInput", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const bad: Array<unknown> = [{ limit: 0 }, { limit: 1001 }, { status: "asleep" }, { after: 3 }]
          for (const query of bad) {
            expect(yield* Effect.flip(runtime.list(query as never)), JSON.stringify(query)).toBeInstanceOf(
              InvalidInput
            )
          }
        }).pipe(withRuntime()))
    })

    describe("capacity and info", () => {
      it.effect("refuses creates beyond maxWorkers not stopped, also when racing", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const results = yield* Effect.forEach(
            Array.from({ length: 20 }),
            () => Effect.either(runtime.create({})),
            { concurrency: "unbounded" }
          )
          const created = results.filter(Either.isRight).map((result) => result.right)
          expect(created).toHaveLength(3)
          for (const result of results.filter(Either.isLeft)) {
            expect(result.left).toBeInstanceOf(Unavailable)
          }
          // an unknown profile is a value error and wins over capacity
          expect(yield* Effect.flip(runtime.create({ profile: "nope" }))).toBeInstanceOf(InvalidInput)
          yield* runtime.stop(created[0]!.id)
          yield* runtime.create({})
          expect(yield* Effect.flip(runtime.create({}))).toBeInstanceOf(Unavailable)
          expect((yield* runtime.info).workers).toEqual({ total: 4, idle: 3, busy: 0, stopped: 1, failed: 0 })
        }).pipe(withRuntime({ maxWorkers: 3 })))

      it.effect("reports identity, profiles, counts and limits", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const a = yield* runtime.create({ profile: "slow" })
          yield* runtime.create({})
          yield* runtime.input(a.id, { content: "x" })
          const info = yield* runtime.info
          expect(info).toMatchObject({
            runtimeId: "rt-suite",
            displayName: "Suite",
            status: "running",
            profiles: Object.keys(suiteProfiles),
            workers: { total: 2, idle: 1, busy: 1, stopped: 0, failed: 0 },
            limits: { maxWorkers: 10_000, maxInputBytes: 1024 * 1024, maxTranscriptPage: 1000 }
          })
          expect(["memory", "sqlite", "postgres"]).toContain(info.store)
          expect(typeof info.version).toBe("string")
          expect(Number.isNaN(Date.parse(info.startedAt))).toBe(false)
        }).pipe(withRuntime({ runtimeId: "rt-suite", displayName: "Suite" })))
    })

    describe("races in real time", () => {
      /** Fails instead of hanging when a call never answers (disconnected: even an uninterruptible one). */
      const answers = <A, E>(what: string, call: Effect.Effect<A, E>) =>
        Effect.disconnect(Effect.either(call)).pipe(
          Effect.timeoutFail({ duration: HANG_MS, onTimeout: () => new Error(`never answered: ${what}`) }),
          Effect.orDie
        )

      const pause = Effect.suspend(() => Effect.sleep(Math.floor(Math.random() * 6)))

      it.live("cancel, stop, turn ends and output at random moments never lock a Worker up", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const rounds = 200
          const ids = yield* Effect.forEach(
            Array.from({ length: rounds }, (_, i) => i),
            (round) =>
              Effect.gen(function*() {
                const worker = yield* runtime.create({ profile: "racy" })
                for (let step = 0; step < 3; step++) {
                  yield* answers("input", runtime.input(worker.id, { content: `r${round}s${step}` }))
                  yield* pause
                  const move = Math.floor(Math.random() * 5)
                  if (move === 0) yield* answers("cancel", runtime.cancel(worker.id, { reason: "race" }))
                  if (move === 1) {
                    yield* Effect.all([
                      answers("cancel", runtime.cancel(worker.id)),
                      answers("cancel", runtime.cancel(worker.id))
                    ], { concurrency: "unbounded" })
                  }
                  if (move === 2) {
                    yield* Effect.all([
                      answers("cancel", runtime.cancel(worker.id)),
                      answers("stop", runtime.stop(worker.id))
                    ], { concurrency: "unbounded" })
                  }
                  // 3 and 4: the turn ends on its own, perhaps while the next input arrives.
                }
                if (round % 2 === 0) yield* answers("stop", runtime.stop(worker.id, { reason: "done" }))
                return worker.id
              }),
            { concurrency: 20 }
          )
          for (const id of ids) {
            const worker = yield* answers(
              "get",
              eventuallyLive(
                runtime.get(id),
                (worker) => worker.status === "idle" || worker.status === "stopped",
                `Worker ${id} settled`,
                { everyMs: 10 }
              )
            ).pipe(Effect.flatten)
            const page = yield* runtime.transcript(id, { limit: 1000 })
            expect(page.entries.map((entry) => entry.seq)).toEqual(
              Array.from({ length: worker.lastSeq }, (_, i) => i + 1)
            )
          }
          expect((yield* runtime.info).workers.busy).toBe(0)
        }).pipe(withRuntime()))

      it.live("cancel and stop answer even when the turn loses their interrupt", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          for (const end of ["cancel", "stop"] as const) {
            const worker = yield* runtime.create({ profile: "forgetful" })
            const begun = forgetfulReleases.begun
            yield* runtime.input(worker.id, { content: "x" })
            // Inside the engine's release, which lasts until it is sent an interrupt.
            yield* eventuallyLive(Effect.sync(() => forgetfulReleases.begun), (count) => count > begun, "the release")
            yield* answers(
              end,
              end === "cancel" ? Effect.asVoid(runtime.cancel(worker.id)) : Effect.asVoid(runtime.stop(worker.id))
            )
            expect((yield* runtime.get(worker.id)).status).toBe(end === "cancel" ? "idle" : "stopped")
          }
        }).pipe(withRuntime()))
    })
  })

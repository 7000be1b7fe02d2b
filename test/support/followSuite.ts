/**
 * Following a Worker (docs/rest.md): turn outcomes in the transcript, the
 * `turn` record and its wait, and the events stream: replay, live delivery,
 * exactly once under races, the end on stop and on delete, a consumer that
 * never reads, many consumers. Written against the `Runtime` tag; it runs
 * embedded, over HTTP and on SQLite.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Fiber, type Layer, Stream, TestClock } from "effect"
import {
  InvalidInput,
  Runtime,
  type RuntimeOptions,
  type TranscriptEntry,
  UnknownWorker,
  type Worker,
  type WorkerEvent,
  WorkerId
} from "../../src/index.js"
import { SLOW_MS, suiteProfiles } from "./engines.js"
import { eventually, eventuallyLive, waitForSleeps } from "./eventually.js"

export type MakeRuntimeLayer = (options: RuntimeOptions) => Layer.Layer<Runtime, unknown>

const rt = Runtime

const entriesOf = (workerId: WorkerId) =>
  Effect.flatMap(rt, (runtime) => Effect.map(runtime.transcript(workerId, { limit: 1000 }), (page) => page.entries))

const awaitStatus = (workerId: WorkerId, status: Worker["status"]) =>
  Effect.flatMap(rt, (runtime) => eventually(runtime.get(workerId), (w) => w.status === status, `Worker ${status}`))

const awaitStatusLive = (workerId: WorkerId, status: Worker["status"]) =>
  Effect.flatMap(rt, (runtime) => eventuallyLive(runtime.get(workerId), (w) => w.status === status, `Worker ${status}`))

const runtimeEntries = (entries: ReadonlyArray<TranscriptEntry>) => entries.filter((entry) => entry.role === "runtime")

const seqsOf = (events: ReadonlyArray<WorkerEvent>) =>
  events.flatMap((event) => (event.type === "entry" ? [event.entry.seq] : []))

const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i)

export const followSuite = (label: string, make: MakeRuntimeLayer) =>
  describe(label, () => {
    const withRuntime = (options: RuntimeOptions = {}) => <A, E>(effect: Effect.Effect<A, E, Runtime>) =>
      Effect.provide(effect, make({ profiles: suiteProfiles, ...options }))

    describe("turn outcomes", () => {
      it.effect("every turn that starts ends with exactly one runtime entry with its outcome", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const echo = yield* runtime.create({})
          yield* runtime.input(echo.id, { content: "a" })
          yield* awaitStatus(echo.id, "idle")
          const failing = yield* runtime.create({ profile: "failing" })
          yield* runtime.input(failing.id, { content: "b" })
          yield* awaitStatus(failing.id, "idle")
          const slow = yield* runtime.create({ profile: "slow" })
          yield* runtime.input(slow.id, { content: "c" })
          yield* runtime.cancel(slow.id, { reason: "enough" })
          yield* runtime.input(slow.id, { content: "d" })
          yield* runtime.stop(slow.id)
          const fatal = yield* runtime.create({ profile: "fatal" })
          yield* runtime.input(fatal.id, { content: "e" })
          yield* awaitStatus(fatal.id, "failed")
          expect(runtimeEntries(yield* entriesOf(echo.id))).toMatchObject([
            { turn: 1, outcome: "completed", content: "completed" }
          ])
          expect(runtimeEntries(yield* entriesOf(failing.id))).toMatchObject([
            { turn: 1, outcome: "failed", content: "failed: boom" }
          ])
          expect(runtimeEntries(yield* entriesOf(slow.id))).toMatchObject([
            { turn: 1, outcome: "cancelled", content: "cancelled: enough" },
            { turn: 2, outcome: "stopped", content: "stopped" }
          ])
          expect(runtimeEntries(yield* entriesOf(fatal.id))).toMatchObject([{ turn: 1, outcome: "failed" }])
          for (const entry of yield* entriesOf(echo.id)) {
            if (entry.role !== "runtime") expect(entry).not.toHaveProperty("outcome")
          }
        }).pipe(withRuntime()))

      it.effect("a stop of an idle Worker records `stopped` and closes no turn", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({})
          yield* runtime.input(worker.id, { content: "a" })
          yield* awaitStatus(worker.id, "idle")
          yield* runtime.stop(worker.id, { reason: "bye" })
          const last = (yield* entriesOf(worker.id)).at(-1)
          expect(last).toMatchObject({ role: "runtime", outcome: "stopped", content: "stopped: bye", turn: 0 })
          expect(yield* runtime.turn(worker.id, 1)).toMatchObject({ status: "completed" })
        }).pipe(withRuntime()))
    })

    describe("turn", () => {
      it.effect("answers the record of a running turn and of an ended one", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({ profile: "slow" })
          yield* runtime.input(worker.id, { content: "x" })
          const running = yield* runtime.turn(worker.id, 1)
          expect(running).toMatchObject({
            workerId: worker.id,
            turn: 1,
            status: "running",
            inputSeq: 1,
            lastSeq: 1,
            endedAt: null,
            reason: null
          })
          yield* waitForSleeps(1)
          yield* TestClock.adjust(SLOW_MS)
          yield* awaitStatus(worker.id, "idle")
          const ended = yield* runtime.turn(worker.id, 1)
          expect(ended).toMatchObject({ status: "completed", inputSeq: 1, lastSeq: 3, reason: null })
          expect(ended.startedAt).toBe(running.startedAt)
          expect(ended.endedAt).toEqual(expect.any(String))
          yield* runtime.input(worker.id, { content: "y" })
          yield* runtime.cancel(worker.id, { reason: "why" })
          expect(yield* runtime.turn(worker.id, 2)).toMatchObject({
            status: "cancelled",
            inputSeq: 4,
            lastSeq: 5,
            reason: "why"
          })
          expect(yield* runtime.turn(worker.id, 1)).toEqual(ended)
        }).pipe(withRuntime()))

      it.effect("with waitMs waits for the end of the turn, or answers it running when the time is up", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({ profile: "slow" })
          yield* runtime.input(worker.id, { content: "x" })
          yield* waitForSleeps(1)
          const waiting = yield* Effect.fork(runtime.turn(worker.id, 1, { waitMs: 60_000 }))
          yield* waitForSleeps(2)
          yield* TestClock.adjust(SLOW_MS)
          expect(yield* Fiber.join(waiting)).toMatchObject({ status: "completed" })
          yield* runtime.input(worker.id, { content: "y" })
          yield* waitForSleeps(1)
          const short = yield* Effect.fork(runtime.turn(worker.id, 2, { waitMs: 100 }))
          yield* waitForSleeps(2)
          yield* TestClock.adjust(100)
          expect(yield* Fiber.join(short)).toMatchObject({ status: "running", turn: 2 })
        }).pipe(withRuntime()))

      it.effect("refuses turn 0, a turn beyond the Worker's, and waitMs out of range; UnknownWorker first", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({})
          yield* runtime.input(worker.id, { content: "x" })
          yield* awaitStatus(worker.id, "idle")
          expect(yield* Effect.flip(runtime.turn(worker.id, 0))).toBeInstanceOf(InvalidInput)
          expect(yield* Effect.flip(runtime.turn(worker.id, 2))).toBeInstanceOf(InvalidInput)
          expect(yield* Effect.flip(runtime.turn(worker.id, 1, { waitMs: 60_001 }))).toBeInstanceOf(InvalidInput)
          expect(yield* Effect.flip(runtime.turn(WorkerId.make("nope"), 1))).toBeInstanceOf(UnknownWorker)
        }).pipe(withRuntime()))
    })

    describe("events", () => {
      /** Every event of the Worker's stream until it ends (stopped, failed, deleted). */
      const collect = (workerId: WorkerId, after?: number) =>
        Effect.flatMap(rt, (runtime) =>
          Stream.runCollect(runtime.events(workerId, after === undefined ? {} : { after })).pipe(
            Effect.map(Chunk.toReadonlyArray)
          ))

      /**
       * A follower, forked, once it is subscribed: its first event (the
       * Worker) has arrived. Every event after that is live or replayed; it
       * waits on `gate` (when given) before taking each event.
       */
      const subscribed = (workerId: WorkerId, after?: number, gate?: Effect.Latch) =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const first = yield* Deferred.make<void>()
          const follower = yield* Effect.fork(
            Stream.runCollect(
              runtime.events(workerId, after === undefined ? {} : { after }).pipe(
                Stream.tap(() =>
                  Effect.zipRight(Deferred.succeed(first, undefined), gate?.await ?? Effect.void)
                )
              )
            ).pipe(Effect.map(Chunk.toReadonlyArray))
          )
          yield* Deferred.await(first)
          return follower
        })

      it.live("replays from after, then delivers live, then ends once the Worker is stopped", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({})
          yield* runtime.input(worker.id, { content: "one" })
          yield* awaitStatusLive(worker.id, "idle")
          const following = yield* subscribed(worker.id, 1)
          yield* runtime.input(worker.id, { content: "two" })
          yield* awaitStatusLive(worker.id, "idle")
          yield* runtime.stop(worker.id, { reason: "done" })
          const events = yield* Fiber.join(following)
          expect(events[0]).toMatchObject({ type: "worker", worker: { id: worker.id } })
          const last = (yield* runtime.get(worker.id)).lastSeq
          expect(seqsOf(events)).toEqual(range(2, last))
          const statuses = events.flatMap((event) => (event.type === "worker" ? [event.worker.status] : []))
          expect(statuses.at(-1)).toBe("stopped")
          expect(statuses).toContain("busy")
          expect(events.at(-1)).toMatchObject({ type: "worker", worker: { status: "stopped", lastSeq: last } })
        }).pipe(withRuntime()))

      it.live("of a stopped Worker: the Worker, every entry after `after`, then the end", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({})
          yield* runtime.input(worker.id, { content: "x" })
          yield* awaitStatusLive(worker.id, "idle")
          yield* runtime.stop(worker.id)
          const events = yield* collect(worker.id)
          expect(events[0]).toMatchObject({ type: "worker", worker: { status: "stopped" } })
          expect(seqsOf(events)).toEqual([1, 2, 3, 4])
          expect(seqsOf(yield* collect(worker.id, 3))).toEqual([4])
          expect(yield* Effect.flip(collect(WorkerId.make("nope")))).toBeInstanceOf(UnknownWorker)
          expect(yield* Effect.flip(collect(worker.id, -1))).toBeInstanceOf(InvalidInput)
        }).pipe(withRuntime()))

      it.live("refuses an after past the Worker's last entry (it would skip the entries written up to it)", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({})
          yield* runtime.input(worker.id, { content: "x" })
          yield* awaitStatusLive(worker.id, "idle")
          const { lastSeq } = yield* runtime.get(worker.id)
          const error = yield* Effect.flip(Stream.runCollect(runtime.events(worker.id, { after: lastSeq + 1 })))
          expect(error).toBeInstanceOf(InvalidInput)
          expect(error.message).toContain(`past the Worker's last entry (seq ${lastSeq})`)
        }).pipe(withRuntime()))

      it.live("delivers every entry exactly once to subscribers started at random moments of a busy turn", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({ profile: "lines" })
          yield* runtime.input(worker.id, { content: "2000" })
          const followers = yield* Effect.forEach(
            Array.from({ length: 30 }, (_, i) => i),
            (i) =>
              Effect.fork(
                Effect.zipRight(
                  Effect.sleep(Math.floor(Math.random() * 40)),
                  // From an entry that exists already, however fast the store commits.
                  Effect.flatMap(runtime.get(worker.id), ({ lastSeq }) =>
                    collect(worker.id, i % 3 === 0 ? Math.floor(Math.random() * Math.min(50, lastSeq + 1)) : 0))
                ).pipe(Effect.map((events) =>
                  [i, events] as const
                ))
              ),
            { concurrency: "unbounded" }
          )
          yield* awaitStatusLive(worker.id, "idle")
          yield* runtime.stop(worker.id)
          const last = (yield* runtime.get(worker.id)).lastSeq
          expect(last).toBe(1 + 2000 + 1 + 1)
          for (const follower of followers) {
            const [, events] = yield* Fiber.join(follower)
            const seqs = seqsOf(events)
            expect(seqs.length).toBeGreaterThan(0)
            expect(seqs).toEqual(range(seqs[0]!, last))
            expect(events[0]!.type).toBe("worker")
          }
        }).pipe(withRuntime()))

      it.live("ends the stream of a Worker that is deleted", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({})
          const following = yield* subscribed(worker.id)
          yield* runtime.stop(worker.id)
          yield* runtime.delete(worker.id)
          const events = yield* Fiber.join(following)
          expect(events.at(-1)).toMatchObject({ type: "worker", worker: { status: "stopped" } })
        }).pipe(withRuntime()))

      /**
       * One turn of `profile` on `content` while a follower reads nothing; the
       * Worker is then stopped and the follower let go: every event it got.
       * The turn ends meanwhile: had the follower held it up, the Worker would
       * never be idle.
       */
      const turnBesidePausedFollower = (profile: string, content: string) =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({ profile })
          const paused = yield* Effect.makeLatch(false)
          const reader = yield* subscribed(worker.id, undefined, paused)
          yield* runtime.input(worker.id, { content })
          yield* awaitStatusLive(worker.id, "idle")
          yield* runtime.stop(worker.id)
          yield* paused.open
          return { events: yield* Fiber.join(reader), last: (yield* runtime.get(worker.id)).lastSeq }
        })

      // 20,000 entries: many times a follower's live buffer, so it overflows
      // and catches up from the store again and again.
      it.live("a consumer that does not read never holds the turn up, and then gets all 20,000 entries in order", () =>
        Effect.gen(function*() {
          const { events, last } = yield* turnBesidePausedFollower("lines", "20000")
          expect(seqsOf(events)).toEqual(range(1, last))
        }).pipe(withRuntime()))

      it.live("a consumer that does not read while large entries arrive catches up (its buffer is bounded in content)", () =>
        Effect.gen(function*() {
          const { events, last } = yield* turnBesidePausedFollower("big", "x")
          expect(seqsOf(events)).toEqual(range(1, last))
          const sizes = events.flatMap((event) =>
            event.type === "entry" && event.entry.role === "worker" ? [event.entry.content.length] : []
          )
          expect(sizes).toEqual([1, 2, 3, 4, 5].map(() => 1.5 * 1024 * 1024))
        }).pipe(withRuntime()))

      it.live("many consumers at once see the same sequence", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const worker = yield* runtime.create({ profile: "lines" })
          const followers = yield* Effect.forEach(
            Array.from({ length: 50 }),
            () => subscribed(worker.id),
            { concurrency: "unbounded" }
          )
          yield* runtime.input(worker.id, { content: "300" })
          yield* awaitStatusLive(worker.id, "idle")
          yield* runtime.stop(worker.id)
          const last = (yield* runtime.get(worker.id)).lastSeq
          for (const follower of followers) {
            expect(seqsOf(yield* Fiber.join(follower))).toEqual(range(1, last))
          }
        }).pipe(withRuntime()))
    })
  })

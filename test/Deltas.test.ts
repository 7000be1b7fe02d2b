/**
 * Deltas, whatever engine yields them: live to followers (embedded and SSE,
 * no id, not replayed), their text one `worker` entry committed with the
 * turn's end, kept on cancel and failure; usage on the Turn and in the
 * tokens metric. The engine here is scripted step by step by the test.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Metric, Queue, Stream } from "effect"
import {
  type Profiles,
  Runtime,
  RuntimeLive,
  type TranscriptEntry,
  TurnFailed,
  TurnOutput,
  type WorkerEngine,
  type WorkerEvent,
  type WorkerId
} from "../src/index.js"
import * as Metrics from "../src/Metrics.js"
import { eventually, within } from "./support/eventually.js"
import { baseUrl, httpRuntime, httpServer } from "./support/httpRuntime.js"
import { openEvents, raw } from "./support/raw.js"

/** One step of the scripted turn: an output, a failure, or the end. */
type Step = TurnOutput | TurnFailed | "end"

/** An engine whose turns take their steps from `steps`, one at a time. */
const scripted = (steps: Queue.Queue<Step>): WorkerEngine => ({
  name: "scripted",
  run: () =>
    Stream.fromQueue(steps).pipe(
      Stream.takeWhile((step): step is TurnOutput | TurnFailed => step !== "end"),
      Stream.mapEffect((step) => step instanceof TurnFailed ? Effect.fail(step) : Effect.succeed(step))
    )
})

const contents = (entries: ReadonlyArray<TranscriptEntry>) => entries.map((entry) => `${entry.role}:${entry.content}`)

const tokens = (profile: string, direction: "input" | "output") =>
  Metric.value(Metrics.modelTokens.pipe(Metric.tagged("profile", profile), Metric.tagged("direction", direction)))
    .pipe(Effect.map((state) => state.count))

/** Follows a Worker in the background, collecting its events; `until` ends the collection. */
const collect = (workerId: WorkerId, until: (event: WorkerEvent) => boolean) =>
  Effect.gen(function*() {
    const runtime = yield* Runtime
    const seen: Array<WorkerEvent> = []
    const fiber = yield* runtime.events(workerId).pipe(
      Stream.tap((event) => Effect.sync(() => seen.push(event))),
      Stream.takeUntil(until),
      Stream.runDrain,
      Effect.fork
    )
    return { seen, fiber }
  })

const isEnd = (event: WorkerEvent) => event.type === "entry" && event.entry.role === "runtime"

describe("deltas", () => {
  const runtimes = [
    ["embedded", "deltas-a", (profiles: Profiles) => RuntimeLive({ profiles })],
    ["over HTTP (the typed client)", "deltas-h", (profiles: Profiles) => httpRuntime({ profiles })]
  ] as const
  for (const [how, profile, layerOf] of runtimes) {
    it.scoped(`${how}: reach a follower live; the turn's text is one worker entry with its end; usage on the turn and in metrics`, () =>
      Effect.gen(function*() {
        const steps = yield* Queue.unbounded<Step>()
        yield* Effect.gen(function*() {
          const runtime = yield* Runtime
          const worker = yield* runtime.create({ profile })
          const { fiber, seen } = yield* collect(worker.id, isEnd)
          yield* eventually(Effect.sync(() => seen.length), (n) => n >= 1, "the follower's first event")
          yield* runtime.input(worker.id, { content: "hi" })
          yield* Queue.offerAll(steps, [TurnOutput.delta("Hel"), TurnOutput.delta("lo")])
          // Live, before anything of the turn's output is stored.
          yield* eventually(
            Effect.sync(() => seen.filter((event) => event.type === "delta").length),
            (n) => n === 2,
            "two deltas at the follower"
          )
          expect(contents(yield* runtime.transcript(worker.id, {}).pipe(Effect.map((page) => page.entries)))).toEqual([
            "user:hi"
          ])
          yield* Queue.offerAll(steps, [
            TurnOutput.delta(", world"),
            TurnOutput.usage({ inputTokens: 11, outputTokens: 3 }),
            "end"
          ])
          yield* Fiber.join(fiber).pipe(within("the follower seeing the turn's end"))
          const kinds = seen.slice(1).map((event) =>
            event.type === "delta"
              ? `delta ${event.turn} ${event.text}`
              : event.type === "entry"
              ? `entry ${event.entry.role}:${event.entry.content}`
              : `worker ${event.worker.status}`
          )
          expect(kinds.filter((kind) => !kind.startsWith("worker"))).toEqual([
            "entry user:hi",
            "delta 1 Hel",
            "delta 1 lo",
            "delta 1 , world",
            "entry worker:Hello, world",
            "entry runtime:completed"
          ])
          const turn = yield* runtime.turn(worker.id, 1)
          expect(turn).toMatchObject({ status: "completed", usage: { inputTokens: 11, outputTokens: 3 } })
          expect(yield* tokens(profile, "input")).toBe(11)
          expect(yield* tokens(profile, "output")).toBe(3)
          // From the store: entries only, no deltas.
          const replayed = yield* runtime.events(worker.id, { after: 0 }).pipe(
            Stream.takeUntil(isEnd),
            Stream.runCollect,
            within("a replay from the store")
          )
          expect(Chunk.toReadonlyArray(replayed).some((event) => event.type === "delta")).toBe(false)
        }).pipe(Effect.provide(layerOf({ [profile]: scripted(steps) })))
      }))
  }

  it.scoped("text so far is kept on cancel and on failure, before the runtime entry; usage null without a report", () =>
    Effect.gen(function*() {
      const steps = yield* Queue.unbounded<Step>()
      yield* Effect.gen(function*() {
        const runtime = yield* Runtime
        const worker = yield* runtime.create({ profile: "deltas-b" })
        const { seen } = yield* collect(worker.id, () => false)
        // Deltas go to followers registered when they are published.
        yield* eventually(Effect.sync(() => seen.length), (n) => n >= 1, "the follower's first event")
        yield* runtime.input(worker.id, { content: "one" })
        yield* Queue.offerAll(steps, [TurnOutput.delta("partial "), TurnOutput.delta("text")])
        yield* eventually(
          Effect.sync(() => seen.filter((event) => event.type === "delta").length),
          (n) => n === 2,
          "two deltas"
        )
        yield* runtime.cancel(worker.id, { reason: "enough" })
        yield* runtime.input(worker.id, { content: "two" })
        yield* Queue.offerAll(steps, [TurnOutput.delta("more"), new TurnFailed({ message: "boom" })])
        const ended = yield* eventually(
          runtime.turn(worker.id, 2),
          (turn) => turn?.status === "failed",
          "turn 2 failed"
        )
        const entries = (yield* runtime.transcript(worker.id, {})).entries
        expect(contents(entries)).toEqual([
          "user:one",
          "worker:partial text",
          "runtime:cancelled: enough",
          "user:two",
          "worker:more",
          "runtime:failed: boom"
        ])
        expect((yield* runtime.turn(worker.id, 1))?.usage).toBeNull()
        expect(ended?.usage).toBeNull()
        expect((yield* runtime.get(worker.id)).status).toBe("idle")
      }).pipe(Effect.provide(RuntimeLive({ profiles: { "deltas-b": scripted(steps) } })))
    }))

  it.scoped("a line after deltas: their text is an entry first, then the line", () =>
    Effect.gen(function*() {
      const steps = yield* Queue.unbounded<Step>()
      yield* Effect.gen(function*() {
        const runtime = yield* Runtime
        const worker = yield* runtime.create({ profile: "deltas-c" })
        yield* runtime.input(worker.id, { content: "x" })
        yield* Queue.offerAll(steps, [TurnOutput.delta("a"), TurnOutput.delta("b"), TurnOutput.line("L"), "end"])
        yield* eventually(runtime.turn(worker.id, 1), (turn) => turn?.status === "completed", "the turn's end")
        expect(contents((yield* runtime.transcript(worker.id, {})).entries)).toEqual([
          "user:x",
          "worker:ab",
          "worker:L",
          "runtime:completed"
        ])
      }).pipe(Effect.provide(RuntimeLive({ profiles: { "deltas-c": scripted(steps) } })))
    }))

  it.live("over SSE: event: delta frames without an id, data {turn, text}; not replayed", () =>
    Effect.gen(function*() {
      const steps = yield* Queue.unbounded<Step>()
      yield* Effect.gen(function*() {
        const url = yield* baseUrl
        const created = (yield* raw(url, "/v1/workers", { method: "POST", body: { profile: "p" } })).json as {
          id: string
        }
        const { close, readUntil } = yield* openEvents(url, created.id)
        yield* readUntil((t) => t.includes("event: worker"))
        yield* raw(url, `/v1/workers/${created.id}/input`, { method: "POST", body: { content: "hi" } })
        yield* Queue.offerAll(steps, [TurnOutput.delta("Hi \"there\"\n")])
        yield* readUntil((t) => t.includes("event: delta"))
        yield* Queue.offerAll(steps, [TurnOutput.delta("!"), "end"])
        const all = yield* readUntil((t) => t.includes("completed"))
        close()
        const frames = all.split("\n\n").filter((frame) => frame.includes("event: delta"))
        expect(frames).toEqual([
          "event: delta\ndata: {\"turn\":1,\"text\":\"Hi \\\"there\\\"\\n\"}",
          "event: delta\ndata: {\"turn\":1,\"text\":\"!\"}"
        ])
        const replay = yield* raw(url, `/v1/workers/${created.id}/transcript`)
        expect(JSON.stringify(replay.json)).toContain("Hi \\\"there\\\"\\n!")
      }).pipe(Effect.provide(httpServer({ profiles: { p: scripted(steps) } })))
    }))
})

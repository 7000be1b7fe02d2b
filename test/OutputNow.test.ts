/**
 * A turn whose whole output is known when it starts (`outputNow`: the echo
 * engine without a delay) ends in the same hold of the Worker's lock as its
 * start: by the time `input` answers, the turn is recorded ended, with the
 * entries, events, usage and metrics a turn run by its own fiber records.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Metric, Stream } from "effect"
import { Runtime, RuntimeLive, TurnOutput, type WorkerEngine, type WorkerEvent } from "../src/index.js"
import * as Metrics from "../src/Metrics.js"
import { outputNow } from "../src/WorkerEngine.js"

const usage = { inputTokens: 7, outputTokens: 3 }

/** Deltas, a line and usage, all known at the turn's start. */
const known: WorkerEngine = {
  name: "known",
  run: (context) =>
    outputNow([
      TurnOutput.delta("he"),
      TurnOutput.delta("llo"),
      TurnOutput.line(`echo: ${context.input.content}`),
      TurnOutput.usage(usage)
    ])
}

const describeEvent = (event: WorkerEvent) =>
  event.type === "entry"
    ? `entry ${event.entry.role}:${event.entry.content}`
    : event.type === "delta"
    ? `delta ${event.text}`
    : `worker ${event.worker.status}`

describe("a turn whose output is known at its start", () => {
  it.effect("the echo engine's: ended when input answers, its entries and record as a turn of its own fiber", () =>
    Effect.gen(function*() {
      const runtime = yield* Runtime
      const worker = yield* runtime.create({})
      const accepted = yield* runtime.input(worker.id, { content: "hi" })
      // The answer is the input's commit: the turn started.
      expect(accepted.worker.status).toBe("busy")
      expect(accepted.entry?.seq).toBe(1)
      // Its end was committed before the answer.
      const now = yield* runtime.get(worker.id)
      expect(now.status).toBe("idle")
      expect(now.lastSeq).toBe(3)
      const page = yield* runtime.transcript(worker.id, {})
      expect(page.entries.map((entry) => `${entry.role}:${entry.content}:${entry.outcome ?? ""}`)).toEqual([
        "user:hi:",
        "worker:hi:",
        "runtime:completed:completed"
      ])
      const turn = yield* runtime.turn(worker.id, 1, {})
      expect(turn).toMatchObject({ status: "completed", inputSeq: 1, lastSeq: 3, reason: null, usage: null })
      // The next input starts the next turn at once.
      const next = yield* runtime.input(worker.id, { content: "again" })
      expect(next.worker.turn).toBe(2)
      expect(next.queued).toBe(false)
    }).pipe(Effect.provide(RuntimeLive())))

  it.effect("deltas to followers, their text one entry before the line, usage on the turn and in the metric", () =>
    Effect.gen(function*() {
      const runtime = yield* Runtime
      const worker = yield* runtime.create({ profile: "known" })
      const tokensBefore = yield* Metric.value(
        Metrics.modelTokens.pipe(Metric.tagged("profile", "known"), Metric.tagged("direction", "input"))
      )
      const seen: Array<string> = []
      const following = yield* Deferred.make<void>()
      const follower = yield* runtime.events(worker.id).pipe(
        Stream.tap((event) =>
          Effect.zipRight(Effect.sync(() => seen.push(describeEvent(event))), Deferred.succeed(following, undefined))
        ),
        Stream.takeUntil((event) => event.type === "entry" && event.entry.role === "runtime"),
        Stream.runDrain,
        Effect.fork
      )
      // Deltas are live only: the follower must be there before the turn.
      yield* Deferred.await(following)
      yield* runtime.input(worker.id, { content: "x" })
      yield* Fiber.join(follower)
      // The Worker as it was when the follower came, then the turn.
      expect(seen).toEqual([
        "worker idle",
        "entry user:x",
        "worker busy",
        "delta he",
        "delta llo",
        "entry worker:hello",
        "entry worker:echo: x",
        "entry runtime:completed"
      ])
      expect((yield* runtime.get(worker.id)).status).toBe("idle")
      const turn = yield* runtime.turn(worker.id, 1, {})
      expect(turn).toMatchObject({ status: "completed", lastSeq: 4, usage })
      const tokensAfter = yield* Metric.value(
        Metrics.modelTokens.pipe(Metric.tagged("profile", "known"), Metric.tagged("direction", "input"))
      )
      expect(tokensAfter.count - tokensBefore.count).toBe(usage.inputTokens)
    }).pipe(Effect.provide(RuntimeLive({ profiles: { known } }))))
})

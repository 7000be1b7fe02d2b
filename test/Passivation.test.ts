/**
 * Workers are activated on demand and passivated when they have nothing to
 * do: memory holds the Workers in use, the store holds all of them, and a
 * passivated Worker answers exactly as before once it is used again.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Stream } from "effect"

import { makeMemoryStore, Runtime, RuntimeControl, RuntimeFromStore, RuntimeStore } from "../src/index.js"
import { suiteProfiles } from "./support/engines.js"
import { eventuallyLive } from "./support/eventually.js"

const withRuntime = (passivateAfterMs: number) =>
  Effect.provide(
    RuntimeFromStore({ profiles: suiteProfiles, passivateAfterMs }).pipe(
      Layer.provide(Layer.sync(RuntimeStore, makeMemoryStore))
    )
  )

const activeIs = (count: number) =>
  Effect.flatMap(
    RuntimeControl,
    (control) => eventuallyLive(control.activeWorkers, (active) => active === count, `${count} Workers in memory`)
  )

describe("passivation", () => {
  it.live("a Worker with nothing to do leaves memory, and answers as before when used again", () =>
    Effect.gen(function*() {
      const runtime = yield* Runtime
      const workers = yield* Effect.forEach(Array.from({ length: 5 }), () => runtime.create({}))
      // Made, never used: nothing in memory.
      yield* activeIs(0)
      const worker = workers[0]!
      yield* runtime.input(worker.id, { content: "hello" })
      yield* eventuallyLive(runtime.get(worker.id), (w) => w.status === "idle", "the turn ended")
      const before = yield* runtime.transcript(worker.id, {})
      const snapshot = yield* runtime.get(worker.id)
      yield* activeIs(0)
      // Back from the store: the same Worker, the same transcript, and it takes turns.
      expect(yield* runtime.get(worker.id)).toEqual(snapshot)
      expect(yield* runtime.transcript(worker.id, {})).toEqual(before)
      const accepted = yield* runtime.input(worker.id, { content: "again" })
      expect(accepted.entry?.seq).toBe(before.lastSeq + 1)
      yield* eventuallyLive(runtime.get(worker.id), (w) => w.status === "idle" && w.turn === 2, "the second turn")
      const info = yield* runtime.info
      expect(info.workers).toMatchObject({ total: 5, idle: 5, busy: 0 })
    }).pipe(withRuntime(20)))

  it.live("a turn, a queued input or a follower keeps a Worker in memory", () =>
    Effect.gen(function*() {
      const runtime = yield* Runtime
      const worker = yield* runtime.create({ profile: "slow" })
      yield* runtime.input(worker.id, { content: "one" })
      yield* runtime.input(worker.id, { content: "two", ifBusy: "enqueue" })
      const follower = yield* Effect.fork(
        Stream.runCollect(
          Stream.takeUntil(
            runtime.events(worker.id),
            (event) => event.type === "entry" && event.entry.content === "two"
          )
        )
      )
      // Two slow turns, one after the other, and a follower: in memory all along,
      // well past the idle time (a slower machine only makes this more true).
      yield* Effect.sleep(200)
      expect(yield* Effect.flatMap(RuntimeControl, (control) => control.activeWorkers)).toBe(1)
      yield* eventuallyLive(runtime.get(worker.id), (w) => w.status === "idle" && w.turn === 2, "both turns")
      yield* Fiber.join(follower)
      yield* activeIs(0)
      const { entries } = yield* runtime.transcript(worker.id, {})
      expect(entries.map((entry) => [entry.role, entry.turn])).toEqual([
        ["user", 1],
        ["worker", 1],
        ["runtime", 1],
        ["user", 2],
        ["worker", 2],
        ["runtime", 2]
      ])
    }).pipe(withRuntime(20)))

  it.live("concurrent calls for a passivated Worker activate it once: exactly one of 20 racing inputs is accepted", () =>
    Effect.gen(function*() {
      const runtime = yield* Runtime
      const worker = yield* runtime.create({ profile: "slow" })
      yield* activeIs(0)
      const results = yield* Effect.forEach(
        Array.from({ length: 20 }),
        (_, i) => Effect.either(runtime.input(worker.id, { content: `racer ${i}` })),
        { concurrency: "unbounded" }
      )
      expect(results.filter((result) => result._tag === "Right")).toHaveLength(1)
      expect(results.filter((result) => result._tag === "Left" && result.left._tag === "Busy")).toHaveLength(19)
    }).pipe(withRuntime(20)))
})

/**
 * Drain against a store whose writes take time: a turn whose input commit is
 * in progress when drain begins must still be waited for, interrupted and
 * recorded, never left running or shown busy.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer, Scope, TestClock } from "effect"

import {
  makeEchoEngine,
  makeMemoryStore,
  Runtime,
  RuntimeControl,
  RuntimeFromStore,
  RuntimeStore,
  type RuntimeStoreService
} from "../src/index.js"
import { waitForSleeps } from "./support/eventually.js"

const WRITE_MS = 100

/** The memory store with every commit taking WRITE_MS (on the TestClock). */
const slowStore = (): RuntimeStoreService => {
  const store = makeMemoryStore()
  return {
    ...store,
    commit: (change) => Effect.zipRight(Effect.sleep(WRITE_MS), store.commit(change))
  }
}

describe("drain while a turn is starting", () => {
  for (const graceMs of [0, 5000]) {
    it.effect(`waits for the input commit, then interrupts and records the turn (grace ${graceMs} ms)`, () =>
      Effect.gen(function*() {
        const store = slowStore()
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(
          RuntimeFromStore({ profiles: { default: makeEchoEngine({ delayMs: 60_000 }) }, shutdownGraceMs: graceMs })
            .pipe(Layer.provide(Layer.succeed(RuntimeStore, store))),
          scope
        )
        const rt = Context.get(context, Runtime)
        const control = Context.get(context, RuntimeControl)
        const worker = yield* rt.create({})
        const input = yield* Effect.fork(rt.input(worker.id, { content: "racing the drain" }))
        yield* waitForSleeps(1) // the input's commit is in progress
        const drain = yield* Effect.fork(control.drain)
        for (let i = 0; i < 20 && drain.unsafePoll() === null; i++) {
          yield* TestClock.adjust(WRITE_MS)
          yield* Effect.yieldNow()
        }
        yield* TestClock.adjust(graceMs)
        for (let i = 0; i < 20 && drain.unsafePoll() === null; i++) {
          yield* TestClock.adjust(WRITE_MS)
          yield* Effect.yieldNow()
        }
        yield* Fiber.join(drain)
        const accepted = yield* Fiber.join(input)
        expect(accepted.entry?.seq).toBe(1)
        expect(yield* rt.get(worker.id)).toMatchObject({ status: "idle", lastSeq: 2 })
        const entries = yield* store.transcript(worker.id, { after: 0, limit: 10 })
        expect(entries.map((entry) => entry.role)).toEqual(["user", "runtime"])
        expect(entries[1]!.content).toContain("interrupted")
        expect((yield* store.loadWorkers)[0]?.worker).toMatchObject({ status: "idle" })
        yield* Scope.close(scope, Exit.void)
      }))
  }
})

/**
 * Making a Worker cannot be interrupted half way; waiting for a concurrent
 * create with the same idempotency key can.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, TestClock } from "effect"

import {
  makeMemoryStore,
  Runtime,
  RuntimeControl,
  RuntimeFromStore,
  RuntimeStore,
  type RuntimeStoreService
} from "../src/index.js"
import { eventually, settle, waitForSleeps } from "./support/eventually.js"

/** The memory store, whose inserts take a second (on the TestClock). */
const slowInserts = (): RuntimeStoreService => {
  const store = makeMemoryStore()
  return {
    ...store,
    insertWorker: (worker, key) => Effect.zipRight(Effect.sleep(1000), store.insertWorker(worker, key))
  }
}

const withSlowInserts = Effect.provide(
  RuntimeFromStore({}).pipe(Layer.provide(Layer.sync(RuntimeStore, slowInserts)))
)

describe("create with an idempotency key", () => {
  it.effect("of 20 racing creates with one key, exactly one made the Worker; the others are replays", () =>
    Effect.gen(function*() {
      const control = yield* RuntimeControl
      const racing = yield* Effect.fork(
        Effect.forEach(Array.from({ length: 20 }), () => control.create({ idempotencyKey: "race" }), {
          concurrency: "unbounded"
        })
      )
      yield* waitForSleeps(1)
      yield* TestClock.adjust(1000)
      const results = yield* Fiber.join(racing)
      expect(new Set(results.map(({ worker }) => worker.id)).size).toBe(1)
      expect(results.filter(({ created }) => created)).toHaveLength(1)
    }).pipe(withSlowInserts))
})

describe("create and interruption", () => {
  it.effect("a create waiting for a concurrent one with the same key can be interrupted; the first one completes", () =>
    Effect.gen(function*() {
      const rt = yield* Runtime
      const first = yield* Effect.fork(rt.create({ idempotencyKey: "k-1" }))
      yield* waitForSleeps(1)
      const waiting = yield* Effect.fork(rt.create({ idempotencyKey: "k-1" }))
      yield* settle
      // The first is inserting (the clock has not moved): the second waits, and goes when told.
      const interrupting = yield* Effect.fork(Fiber.interrupt(waiting))
      yield* eventually(Effect.sync(() => interrupting.unsafePoll()), (exit) => exit !== null, "the waiter interrupted")
      expect(first.unsafePoll()).toBeNull()
      // Interrupting the first does not stop it half way: the Worker is made and its key known.
      const stopping = yield* Effect.fork(Fiber.interrupt(first))
      yield* TestClock.adjust(1000)
      yield* Fiber.join(stopping)
      const workers = (yield* rt.list({})).workers
      expect(workers).toHaveLength(1)
      const again = yield* rt.create({ idempotencyKey: "k-1" })
      expect(again.id).toBe(workers[0]!.id)
    }).pipe(withSlowInserts))
})

/**
 * The actor's lock (src/Lock.ts): one holder at a time, handed on in arrival
 * order, released however its holder ends, and never lost by a waiter that
 * is interrupted once the lock was handed to it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, FiberId } from "effect"
import { makeLock } from "../src/Lock.js"

/** Forks `effect` and waits until it is suspended: waiting for the lock, when that is what it does first. */
const forkWaiting = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.flatMap(
    Effect.fork(effect),
    (fiber) => Effect.as(Effect.repeat(Fiber.status(fiber), { until: (status) => status._tag === "Suspended" }), fiber)
  )

// Only hangs are caught by time: a lost lock leaves its next waiter waiting for ever.
const NO_HANG = "60 seconds"

describe("Lock", () => {
  it.effect("one holder at a time, across many fibers that yield while holding it", () =>
    Effect.gen(function*() {
      const lock = makeLock()
      let inside = 0
      let most = 0
      let done = 0
      const one = lock.withLock(Effect.gen(function*() {
        inside++
        most = Math.max(most, inside)
        yield* Effect.yieldNow()
        inside--
        done++
      }))
      yield* Effect.all(Array.from({ length: 200 }, () => one), { concurrency: "unbounded" })
      expect(done).toBe(200)
      expect(most).toBe(1)
    }))

  it.effect("handed on in arrival order", () =>
    Effect.gen(function*() {
      const lock = makeLock()
      const go = yield* Deferred.make<void>()
      const order: Array<number> = []
      const holder = yield* forkWaiting(lock.withLock(Deferred.await(go)))
      const waiters: Array<Fiber.RuntimeFiber<number>> = []
      for (let i = 0; i < 5; i++) waiters.push(yield* forkWaiting(lock.withLock(Effect.sync(() => order.push(i)))))
      yield* Deferred.succeed(go, undefined)
      yield* Fiber.join(holder)
      yield* Fiber.joinAll(waiters)
      expect(order).toEqual([0, 1, 2, 3, 4])
    }))

  it.effect("released when its holder fails or dies", () =>
    Effect.gen(function*() {
      const lock = makeLock()
      const failed = yield* Effect.exit(lock.withLock(Effect.fail("no")))
      const died = yield* Effect.exit(lock.withLock(Effect.die("broken")))
      expect(Exit.isFailure(failed) && Exit.isFailure(died)).toBe(true)
      expect(yield* lock.withLock(Effect.succeed("free"))).toBe("free")
    }))

  it.live("a waiter interrupted while waiting is skipped", () =>
    Effect.gen(function*() {
      const lock = makeLock()
      const go = yield* Deferred.make<void>()
      const holder = yield* forkWaiting(lock.withLock(Deferred.await(go)))
      let ranFirst = false
      const first = yield* forkWaiting(lock.withLock(Effect.sync(() => (ranFirst = true))))
      const second = yield* forkWaiting(lock.withLock(Effect.succeed("second")))
      yield* Fiber.interrupt(first)
      yield* Deferred.succeed(go, undefined)
      yield* Fiber.join(holder)
      expect(yield* Fiber.join(second).pipe(Effect.timeout(NO_HANG))).toBe("second")
      expect(ranFirst).toBe(false)
    }), { timeout: 70_000 })

  for (const order of ["handed the lock, then interrupted", "interrupted, then handed the lock"] as const) {
    it.live(`a waiter ${order} before it ran passes the lock on`, () =>
      Effect.gen(function*() {
        const lock = makeLock()
        let ranFirst = false
        let first: Fiber.RuntimeFiber<boolean> | undefined
        let second: Fiber.RuntimeFiber<string> | undefined
        const interruptFirst = Effect.sync(() => first?.unsafeInterruptAsFork(FiberId.none))
        // This fiber holds the lock while the two queue for it (forked from
        // its uninterruptible hold, so made interruptible as callers are).
        yield* lock.withLock(Effect.gen(function*() {
          first = yield* forkWaiting(Effect.interruptible(lock.withLock(Effect.sync(() => (ranFirst = true)))))
          second = yield* forkWaiting(Effect.interruptible(lock.withLock(Effect.succeed("second"))))
          if (order === "interrupted, then handed the lock") yield* interruptFirst
        }))
        // The release just handed the lock to `first`, which has not run since.
        if (order === "handed the lock, then interrupted") yield* interruptFirst
        if (first === undefined || second === undefined) return expect.fail("the waiters were not forked")
        expect(Exit.isInterrupted(yield* Fiber.await(first))).toBe(true)
        expect(ranFirst).toBe(false)
        expect(yield* Fiber.join(second).pipe(Effect.timeout(NO_HANG))).toBe("second")
      }), { timeout: 70_000 })
  }
})

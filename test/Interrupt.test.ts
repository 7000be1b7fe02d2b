/**
 * The interrupt Effect 3 loses (src/Interrupt.ts), reproduced with plain
 * Effect, and `interruptUntilDone` ending the fiber that lost it.
 *
 * The shape is the `forgetful` engine's (test/support/engines.ts): a scope
 * with two `Effect.addFinalizer`s; the first registered (which runs last)
 * waits until an interrupt has been sent (an uninterruptible release only
 * records it in `FiberRef.interruptedCause`); the body after `Effect.scoped`
 * then waits for ever. The later-registered finalizer, run first, leaves
 * `interruptedCause` among the fiber's refs, and the last one's restoring of
 * the refs on exit puts it back to empty: the interrupt is gone.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, FiberRef, Option } from "effect"

import { interruptUntilDone } from "../src/Interrupt.js"
import { within } from "./support/eventually.js"

/** Sleeps until this fiber has been sent an interrupt (which an uninterruptible region only records). */
const untilInterruptSent = Effect.gen(function*() {
  for (;;) {
    if (!Cause.isEmpty(yield* FiberRef.get(FiberRef.interruptedCause))) return
    yield* Effect.sleep(5)
  }
})

/**
 * Forks a fiber whose scope's release waits for an interrupt, with one
 * finalizer besides that release or none, and waits until the release runs.
 * `resumed` is done once the fiber runs on after `Effect.scoped`.
 */
const releasing = (finalizers: 1 | 2) =>
  Effect.gen(function*() {
    const releaseBegun = yield* Deferred.make<void>()
    const resumed = yield* Deferred.make<void>()
    const fiber = yield* Effect.forkDaemon(
      Effect.scoped(Effect.gen(function*() {
        yield* Effect.addFinalizer(() => Effect.zipRight(Deferred.succeed(releaseBegun, undefined), untilInterruptSent))
        if (finalizers === 2) yield* Effect.addFinalizer(() => Effect.void)
        return yield* Effect.fail("gave up")
      })).pipe(Effect.catchAll(() => Effect.zipRight(Deferred.succeed(resumed, undefined), Effect.never)))
    )
    yield* within("the release to begin")(Deferred.await(releaseBegun))
    return { fiber, resumed }
  })

/** The fiber's exit within a second of real time, if it has ended by then. */
const endedWithinASecond = <A, E>(fiber: Fiber.Fiber<A, E>) =>
  Effect.option(Effect.timeout(Fiber.await(fiber), "1 second"))

const interrupted = <A, E>(exit: Exit.Exit<A, E>) => Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)

describe("an interrupt sent while a scope's release runs", () => {
  it.live("is lost when a later-registered finalizer ran before it: the fiber runs on after Effect.scoped", () =>
    Effect.gen(function*() {
      const { fiber, resumed } = yield* releasing(2)
      yield* Fiber.interruptFork(fiber)
      // The release returned (it saw the interrupt) and the body after the scope ran: the interrupt is gone.
      yield* within("the fiber to run on after its release")(Deferred.await(resumed))
      expect(Option.isNone(yield* endedWithinASecond(fiber))).toBe(true)
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)

      // interruptUntilDone sends it again until the fiber has ended.
      yield* within("interruptUntilDone to end the fiber")(interruptUntilDone(fiber))
      expect(interrupted(yield* Fiber.await(fiber))).toBe(true)
    }))

  it.live("is kept with the release alone (no later-registered finalizer)", () =>
    Effect.gen(function*() {
      const { fiber, resumed } = yield* releasing(1)
      yield* Fiber.interruptFork(fiber)
      const exit = yield* within("the fiber to end")(Fiber.await(fiber))
      expect(interrupted(exit)).toBe(true)
      expect(yield* Deferred.isDone(resumed)).toBe(false)
    }))

  it.live("interruptUntilDone, sent while the release runs, ends the fiber all the same", () =>
    Effect.gen(function*() {
      const { fiber, resumed } = yield* releasing(2)
      yield* within("interruptUntilDone to end the fiber")(interruptUntilDone(fiber))
      const exit = yield* Fiber.await(fiber)
      expect(interrupted(exit)).toBe(true)
      // Its first interrupt was lost as the plain one is: the fiber ran on before a resend ended it.
      expect(yield* Deferred.isDone(resumed)).toBe(true)
    }))
})

/**
 * Interrupting a turn's fiber so that the interrupt cannot be lost. Effect 3
 * can lose one: an interrupt that arrives while a scope finalizer runs is
 * erased when a later-registered `Effect.addFinalizer` finalizer restores the
 * fiber's FiberRefs on exit (a child process's turn has two such
 * finalizers). test/Interrupt.test.ts reproduces it.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"

/** How often an interrupt is sent again to a fiber that has not ended yet. */
export const INTERRUPT_RESEND_MS = 250

/**
 * Interrupts `fiber` and waits until it has ended, sending the interrupt
 * again every `INTERRUPT_RESEND_MS` until it has. A daemon does it, so that
 * a caller that goes away cannot leave the fiber running with its interrupt
 * lost.
 */
export const interruptUntilDone = <A, E>(fiber: Fiber.RuntimeFiber<A, E>): Effect.Effect<void> =>
  Effect.forkDaemon(
    Effect.gen(function*() {
      for (;;) {
        yield* Fiber.interruptFork(fiber)
        const ended = yield* Effect.option(Effect.timeout(Fiber.await(fiber), INTERRUPT_RESEND_MS))
        if (ended._tag === "Some") return
      }
      // Real time: the resend is a safety net, not part of a turn's logic.
    }).pipe(Effect.interruptible, Effect.withClock(Clock.make()))
  ).pipe(Effect.flatMap(Fiber.join))

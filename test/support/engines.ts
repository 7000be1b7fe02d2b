/** Engines the behavioural suite configures, one per behaviour it needs to provoke. */
import { Cause, Effect, FiberRef } from "effect"

import { makeEchoEngine, type Profiles, TurnFailed } from "../../src/index.js"

export const SLOW_MS = 1000

/** How many releases the `forgetful` engine has begun (in this process), so that a test can interrupt inside one. */
export const forgetfulReleases = { begun: 0 }

/** Sleeps until this fiber has been sent an interrupt (which an uninterruptible region only records). */
const untilInterruptSent = Effect.gen(function*() {
  for (;;) {
    if (!Cause.isEmpty(yield* FiberRef.get(FiberRef.interruptedCause))) return
    yield* Effect.sleep(5)
  }
})

export const suiteProfiles: Profiles = {
  default: makeEchoEngine(),
  slow: makeEchoEngine({ delayMs: SLOW_MS }),
  chatty: {
    name: "chatty",
    run: (context) =>
      Effect.gen(function*() {
        yield* context.emit(`one:${context.input.content}`)
        yield* context.emit(`two:${context.input.kind}`)
        return [`three:${context.turn}`]
      })
  },
  failing: {
    name: "failing",
    run: (context) => Effect.zipRight(context.emit("partial"), Effect.fail(new TurnFailed({ message: "boom" })))
  },
  fatal: {
    name: "fatal",
    run: () => Effect.fail(new TurnFailed({ message: "cannot continue", fatal: true }))
  },
  defect: {
    name: "defect",
    run: () => Effect.die(new Error("engine bug"))
  },
  userOnly: { ...makeEchoEngine(), name: "user-only", kinds: ["user"] },
  uncancellable: { ...makeEchoEngine({ delayMs: SLOW_MS }), name: "uncancellable", cancellable: false },
  racy: {
    // What the process engine does, at random: output, then releases, one of
    // which takes a while (killing a child's group), then an end of either
    // kind. Two finalizers, as a child process has: an interrupt that arrives
    // while the second one runs is lost by Effect (see RuntimeLive's turns).
    name: "racy",
    run: (context) =>
      Effect.gen(function*() {
        yield* Effect.addFinalizer(() => Effect.sleep(Math.floor(Math.random() * 4)))
        yield* Effect.addFinalizer(() => Effect.void)
        const lines = Math.floor(Math.random() * 30)
        for (let i = 0; i < lines; i++) {
          yield* context.emit(`line ${i}`)
          if (i % 5 === 0) yield* Effect.sleep(1)
        }
        if (Math.random() < 0.3) return yield* new TurnFailed({ message: "output over the limit" })
        return [`done after ${lines}`]
      }).pipe(Effect.scoped)
  },
  lines: {
    // Emits as many lines as the input says, yielding now and then: a turn
    // whose output arrives while followers subscribe.
    name: "lines",
    run: (context) =>
      Effect.gen(function*() {
        const count = Number(context.input.content)
        for (let i = 1; i <= count; i++) {
          yield* context.emit(`line ${i}`)
          if (i % 7 === 0) yield* Effect.yieldNow()
        }
      })
  },
  lagging: { ...makeEchoEngine({ delayMs: 150 }), name: "lagging" },
  big: {
    name: "big",
    run: (context) =>
      Effect.forEach([1, 2, 3, 4, 5], (i) => context.emit(String(i).repeat(1.5 * 1024 * 1024)), { discard: true })
  },
  forgetful: {
    // Releases after failing until it has been sent an interrupt, then waits
    // for ever: the interrupt, arrived during the release, is lost by Effect
    // (a later-registered finalizer restores the fiber's FiberRefs), and only
    // one sent after it ends the turn.
    name: "forgetful",
    run: () =>
      Effect.gen(function*() {
        yield* Effect.addFinalizer(() =>
          Effect.zipRight(Effect.sync(() => forgetfulReleases.begun++), untilInterruptSent)
        )
        yield* Effect.addFinalizer(() => Effect.void)
        return yield* new TurnFailed({ message: "gave up" })
      }).pipe(Effect.scoped, Effect.catchAll(() => Effect.never))
  }
}

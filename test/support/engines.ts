/** Engines the behavioural suite configures, one per behaviour it needs to provoke. */
import { Cause, Effect, FiberRef, Stream } from "effect"

import { makeEchoEngine, type Profiles, TurnFailed, TurnOutput } from "../../src/index.js"

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
      Stream.make(`one:${context.input.content}`, `two:${context.input.kind}`, `three:${context.turn}`).pipe(
        Stream.map(TurnOutput.line)
      )
  },
  failing: {
    name: "failing",
    run: () =>
      Stream.concat(Stream.succeed(TurnOutput.line("partial")), Stream.fail(new TurnFailed({ message: "boom" })))
  },
  fatal: {
    name: "fatal",
    run: () => Stream.fail(new TurnFailed({ message: "cannot continue", fatal: true }))
  },
  defect: {
    name: "defect",
    run: () => Stream.die(new Error("engine bug"))
  },
  userOnly: { ...makeEchoEngine(), name: "user-only", kinds: ["user"] },
  uncancellable: { ...makeEchoEngine({ delayMs: SLOW_MS }), name: "uncancellable", cancellable: false },
  racy: {
    // What the process engine does, at random: output, then releases, one of
    // which takes a while (killing a child's group), then an end of either
    // kind. Two finalizers, as a child process has: an interrupt that arrives
    // while the second one runs is lost by Effect (see RuntimeLive's turns).
    name: "racy",
    run: () =>
      Stream.unwrapScoped(Effect.gen(function*() {
        yield* Effect.addFinalizer(() => Effect.sleep(Math.floor(Math.random() * 4)))
        yield* Effect.addFinalizer(() => Effect.void)
        const lines = Math.floor(Math.random() * 30)
        const output = Stream.range(0, lines - 1).pipe(
          Stream.mapEffect((i) => Effect.as(i % 5 === 0 ? Effect.sleep(1) : Effect.void, TurnOutput.line(`line ${i}`)))
        )
        return Stream.concat(
          output,
          Math.random() < 0.3
            ? Stream.fail(new TurnFailed({ message: "output over the limit" }))
            : Stream.succeed(TurnOutput.line(`done after ${lines}`))
        )
      }))
  },
  lines: {
    // Emits as many lines as the input says, yielding now and then: a turn
    // whose output arrives while followers subscribe.
    name: "lines",
    run: (context) => {
      const count = Number(context.input.content)
      return Stream.iterate(1, (i) => i + 1).pipe(
        Stream.takeWhile((i) => i <= count),
        Stream.mapEffect((i) => Effect.as(i % 7 === 0 ? Effect.yieldNow() : Effect.void, TurnOutput.line(`line ${i}`)))
      )
    }
  },
  lagging: { ...makeEchoEngine({ delayMs: 150 }), name: "lagging" },
  big: {
    name: "big",
    run: () => Stream.make(1, 2, 3, 4, 5).pipe(Stream.map((i) => TurnOutput.line(String(i).repeat(1.5 * 1024 * 1024))))
  },
  forgetful: {
    // Releases after failing until it has been sent an interrupt, then waits
    // for ever: the interrupt, arrived during the release, is lost by Effect
    // (a later-registered finalizer restores the fiber's FiberRefs), and only
    // one sent after it ends the turn.
    name: "forgetful",
    run: () =>
      Stream.unwrapScoped(Effect.gen(function*() {
        yield* Effect.addFinalizer(() =>
          Effect.zipRight(Effect.sync(() => forgetfulReleases.begun++), untilInterruptSent)
        )
        yield* Effect.addFinalizer(() => Effect.void)
        return Stream.fail(new TurnFailed({ message: "gave up" }))
      })).pipe(Stream.catchAll(() => Stream.never))
  }
}

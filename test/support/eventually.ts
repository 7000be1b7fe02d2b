/**
 * Waiting for something to happen, on either clock a test runs on. Every wait
 * is bounded and fails with `never happened: <what>` when it gives up.
 *
 * - `eventually`: on the TestClock (`it.effect`): yields between attempts,
 *   never sleeps, gives up after a number of attempts.
 * - `eventuallyLive`: in real time (`it.live`, child processes, the bin):
 *   sleeps between attempts, gives up at a deadline.
 * - `within`: a deadline for one wait that is not a poll (a process exiting,
 *   a fiber ending).
 */
import { Chunk, Duration, Effect, TestClock } from "effect"
import type { LazyArg } from "effect/Function"

/** What was being waited for; a function when it should describe the moment of failure (e.g. with output). */
export type What = string | LazyArg<string>

const describe = (what: What): string => (typeof what === "string" ? what : what())

/** Lets other fibers (and, over HTTP, real I/O) make progress without moving any clock. */
export const settle = Effect.gen(function*() {
  for (let i = 0; i < 5; i++) yield* Effect.yieldNow()
})

/**
 * Runs `effect` until `check` holds on its value and returns that value,
 * yielding between attempts: no sleep, so the TestClock stays where it is.
 */
export const eventually = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  check: (a: A) => boolean,
  what: What,
  options: { readonly attempts?: number } = {}
): Effect.Effect<A, E, R> =>
  Effect.gen(function*() {
    const attempts = options.attempts ?? 5000
    for (let attempt = 0; attempt < attempts; attempt++) {
      const value = yield* effect
      if (check(value)) return value
      yield* settle
    }
    return yield* Effect.dieMessage(`never happened: ${describe(what)} (${attempts} attempts)`)
  })

/** Waits (on the TestClock) until at least `count` fibers sleep on it. */
export const waitForSleeps = (count: number) =>
  Effect.asVoid(
    eventually(
      TestClock.sleeps(),
      (sleeps) => Chunk.size(sleeps) >= count,
      `${count} fiber(s) sleeping on the TestClock`
    )
  )

/**
 * Fails with `never happened: <what>` when `effect` has not ended within
 * `duration` of real time (it is interrupted then).
 */
export const within = (what: What, duration: Duration.DurationInput) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    Effect.timeoutTo({
      duration,
      onSuccess: Effect.succeed,
      onTimeout: () =>
        Effect.dieMessage(`never happened: ${describe(what)} (within ${Duration.format(Duration.decode(duration))})`)
    }),
    Effect.flatten
  )

/**
 * Runs `effect` until `check` holds on its value and returns that value,
 * sleeping `everyMs` between attempts, for at most `withinMs` of real time.
 */
export const eventuallyLive = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  check: (a: A) => boolean,
  what: What,
  options: { readonly withinMs?: number; readonly everyMs?: number } = {}
): Effect.Effect<A, E, R> =>
  Effect.gen(function*() {
    for (;;) {
      const value = yield* effect
      if (check(value)) return value
      yield* Effect.sleep(options.everyMs ?? 20)
    }
  }).pipe(within(what, options.withinMs ?? 15_000))

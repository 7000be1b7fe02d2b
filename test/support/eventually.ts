/**
 * Waiting for something to happen, on either clock a test runs on. Every wait
 * is for a state or an event, bounded by a deadline of real time that only a
 * hang reaches (`HANG_MS`, a minute): a loaded machine makes a wait longer,
 * never a failure. It fails with `never happened: <what>` when it gives up.
 *
 * - `eventually`: on the TestClock (`it.effect`): yields between attempts
 *   (and lets real I/O in now and then), never moves the TestClock.
 * - `eventuallyLive`: in real time (`it.live`, child processes, the bin):
 *   sleeps between attempts.
 * - `within`: a deadline for one wait that is not a poll (a process exiting,
 *   a fiber ending).
 */
import { Chunk, Duration, Effect, TestClock } from "effect"
import type { LazyArg } from "effect/Function"
import { performance } from "node:perf_hooks"

/** How long a wait for something that must happen may take before it counts as a hang. */
export const HANG_MS = 60_000

/** What was being waited for; a function when it should describe the moment of failure (e.g. with output). */
export type What = string | LazyArg<string>

const describe = (what: What): string => (typeof what === "string" ? what : what())

/** Lets other fibers (and, over HTTP, real I/O) make progress without moving any clock. */
export const settle = Effect.gen(function*() {
  for (let i = 0; i < 5; i++) yield* Effect.yieldNow()
})

/** One turn of Node's event loop (I/O, timers), outside any Effect clock. */
const macrotask = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

/**
 * Runs `effect` until `check` holds on its value and returns that value,
 * yielding between attempts: no sleep, so the TestClock stays where it is.
 * Gives up after `HANG_MS` of real time (performance.now, which no TestClock moves).
 */
export const eventually = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  check: (a: A) => boolean,
  what: What
): Effect.Effect<A, E, R> =>
  Effect.gen(function*() {
    const deadline = performance.now() + HANG_MS
    for (let attempt = 0;; attempt++) {
      const value = yield* effect
      if (check(value)) return value
      if (performance.now() > deadline) {
        return yield* Effect.dieMessage(`never happened: ${describe(what)} (within ${HANG_MS / 1000} s)`)
      }
      yield* settle
      // Fibers alone cannot finish what waits for I/O (a socket, a store's writer).
      if (attempt % 20 === 19) yield* macrotask
    }
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
 * `duration` of real time (it is interrupted then). Default: `HANG_MS`.
 */
export const within = (what: What, duration: Duration.DurationInput = HANG_MS) =>
<A, E, R>(
  effect: Effect.Effect<A, E, R>
) =>
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
 * sleeping `everyMs` between attempts, for at most `withinMs` of real time
 * (default `HANG_MS`).
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
  }).pipe(within(what, options.withinMs ?? HANG_MS))

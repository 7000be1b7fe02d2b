/**
 * Draining: once it begins, new creates and inputs are refused, turns in
 * flight get the grace period, then whatever still runs is interrupted by
 * the Runtime. This module knows when no turn is left; `RuntimeLive` does
 * the interrupting.
 */
import * as Effect from "effect/Effect"
import { Unavailable } from "./Errors.js"
import { RETRY_AFTER_MS } from "./RuntimeOptions.js"

/** The refusal of new work while draining; clients may retry elsewhere or after the restart. */
export const drainingError = (graceMs: number) =>
  new Unavailable({ message: "the runtime is draining", retryAfterMs: Math.max(graceMs, RETRY_AFTER_MS) })

export interface Draining<W> {
  /** The refusal of new work, while draining. */
  readonly refusal: () => Unavailable | undefined
  /**
   * Runs `effect`, which may start a turn on `worker`, counting it as in
   * flight meanwhile: its input commit may still be in progress when
   * draining begins, and the wait must not miss a turn that starts after.
   */
  readonly starting: <A, E>(worker: W, effect: Effect.Effect<A, E>) => Effect.Effect<A, E>
  /** Workers with a turn in flight or starting. */
  readonly inFlight: () => ReadonlyArray<W>
  /** To be called whenever a Worker's status changes. */
  readonly notify: () => void
  /** Marks the Runtime draining and waits, at most the grace period, for the turns in flight to end. */
  readonly begin: Effect.Effect<void>
}

export const makeDraining = <W>(
  graceMs: number,
  /** Workers with a turn in flight. */
  busy: () => ReadonlyArray<W>
): Effect.Effect<Draining<W>> =>
  Effect.gen(function*() {
    let refusal: Unavailable | undefined
    const startingWorkers = new Set<W>()
    const turnsDone = yield* Effect.makeLatch(false)
    const inFlight = () => [...startingWorkers, ...busy().filter((worker) => !startingWorkers.has(worker))]
    const notify = () => {
      if (refusal !== undefined && startingWorkers.size === 0 && busy().length === 0) turnsDone.unsafeOpen()
    }

    return {
      refusal: () => refusal,
      starting: (worker, effect) =>
        Effect.suspend(() => {
          startingWorkers.add(worker)
          return Effect.ensuring(
            effect,
            Effect.sync(() => {
              startingWorkers.delete(worker)
              notify()
            })
          )
        }),
      inFlight,
      notify,
      begin: Effect.suspend(() => {
        refusal = drainingError(graceMs)
        if (graceMs <= 0) return Effect.void
        notify()
        // Drain also runs as a scope finalizer, which is uninterruptible: the
        // wait must be made interruptible or the timeout could never cut it.
        return Effect.asVoid(Effect.timeoutOption(Effect.interruptible(turnsDone.await), graceMs))
      })
    }
  })

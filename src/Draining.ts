/**
 * Draining: once it begins, new creates and inputs are refused, turns in
 * flight get the grace period, then whatever still runs is interrupted by
 * the Runtime. This module knows when no turn is left; `RuntimeLive` does
 * the interrupting.
 */
import * as Effect from "effect/Effect"
import { Unavailable } from "./Errors.js"
import { RETRY_AFTER_MS } from "./RuntimeOptions.js"
import type { Slot, WorkerTable } from "./WorkerTable.js"

/** The refusal of new work while draining; clients may retry elsewhere or after the restart. */
export const drainingError = (graceMs: number) =>
  new Unavailable({ message: "the runtime is draining", retryAfterMs: Math.max(graceMs, RETRY_AFTER_MS) })

export interface Draining {
  readonly active: () => boolean
  readonly error: () => Unavailable
  /**
   * Runs `effect`, which may start a turn on `slot`, counting it as in
   * flight meanwhile: its input commit may still be in progress when
   * draining begins, and the wait must not miss a turn that starts after.
   */
  readonly starting: <A, E>(slot: Slot, effect: Effect.Effect<A, E>) => Effect.Effect<A, E>
  /** Workers with a turn in flight or starting. */
  readonly busySlots: () => ReadonlyArray<Slot>
  /** To be called whenever a Worker's status changes. */
  readonly notify: () => void
  /** Marks the Runtime draining and waits, at most the grace period, for the turns in flight to end. */
  readonly begin: Effect.Effect<void>
}

export const makeDraining = (graceMs: number, table: () => WorkerTable): Effect.Effect<Draining> =>
  Effect.gen(function*() {
    let active = false
    const startingSlots = new Set<Slot>()
    const turnsDone = yield* Effect.makeLatch(false)
    const noTurnsLeft = () => table().count("busy") === 0 && startingSlots.size === 0
    const notify = () => {
      if (active && noTurnsLeft()) turnsDone.unsafeOpen()
    }

    return {
      active: () => active,
      error: () => drainingError(graceMs),
      starting: (slot, effect) =>
        Effect.suspend(() => {
          startingSlots.add(slot)
          return Effect.ensuring(
            effect,
            Effect.sync(() => {
              startingSlots.delete(slot)
              notify()
            })
          )
        }),
      busySlots: () => [
        ...startingSlots,
        ...Array.from(table().slots()).filter((slot) => slot.worker.status === "busy" && !startingSlots.has(slot))
      ],
      notify,
      begin: Effect.suspend(() => {
        active = true
        if (graceMs <= 0) return Effect.void
        notify()
        // Drain also runs as a scope finalizer, which is uninterruptible: the
        // wait must be made interruptible or the timeout could never cut it.
        return Effect.asVoid(Effect.timeoutOption(Effect.interruptible(turnsDone.await), graceMs))
      })
    }
  })

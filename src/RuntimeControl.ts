/** The control a Runtime gives the process that hosts it (not a Backend's concern). */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"

export interface RuntimeControlService {
  /**
   * Stops taking new work (`draining`), gives turns in flight the shutdown
   * grace period, then interrupts and records the rest. Idempotent; closing
   * the layer's scope does the same. Answers how many turns were still
   * running when the grace ended, and were interrupted.
   */
  readonly drain: Effect.Effect<{ readonly turnsInterrupted: number }>
  /** Turns in flight now (for the process's own logs; read from memory). */
  readonly turnsInFlight: Effect.Effect<number>
}

export class RuntimeControl extends Context.Tag("worker-runtime/RuntimeControl")<
  RuntimeControl,
  RuntimeControlService
>() {}

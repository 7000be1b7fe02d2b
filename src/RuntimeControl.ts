/** The control a Runtime gives the process that hosts it (not a Backend's concern). */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"

export interface RuntimeControlService {
  /**
   * Stops taking new work (`draining`), gives turns in flight the shutdown
   * grace period, then interrupts and records the rest. Idempotent; closing
   * the layer's scope does the same.
   */
  readonly drain: Effect.Effect<void>
}

export class RuntimeControl extends Context.Tag("worker-runtime/RuntimeControl")<
  RuntimeControl,
  RuntimeControlService
>() {}

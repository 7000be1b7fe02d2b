/**
 * The requests held open (events streams, long polls), counted across the
 * server, by the handlers and the fast lane alike.
 */
import * as Effect from "effect/Effect"
import { Unavailable } from "../Errors.js"
import { RETRY_AFTER_MS } from "../RuntimeOptions.js"

export interface HeldRequests {
  /** A slot, or `Unavailable` when all are taken; gives back its release (which frees it once, however often it runs). */
  readonly hold: Effect.Effect<Effect.Effect<void>, Unavailable>
}

/**
 * The requests held open (events streams, long polls), counted across the
 * server: past `max`, one more is refused at once with `Unavailable` (503,
 * `Retry-After`), never queued. `hold` takes a slot and gives back its
 * release, which frees it once however often it runs.
 */
export const makeHeldRequests = (max: number): HeldRequests => {
  let held = 0
  const hold: Effect.Effect<Effect.Effect<void>, Unavailable> = Effect.suspend(() => {
    if (held >= max) {
      return Effect.fail(
        new Unavailable({
          message: `already holding the most events streams and long polls at once (${max}); retry later`,
          retryAfterMs: RETRY_AFTER_MS
        })
      )
    }
    held++
    let released = false
    return Effect.succeed(Effect.sync(() => {
      if (released) return
      released = true
      held--
    }))
  })
  return { hold }
}

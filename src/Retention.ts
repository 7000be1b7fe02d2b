/**
 * Retention (`--retain-stopped`): a background sweep that deletes Workers
 * stopped or failed longer ago than the retention, found through the store's
 * index, one at a time. Each delete holds only its own Worker's lock, so
 * requests for other Workers never wait on the sweep; on SQLite the
 * transcript goes in bounded batches.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { WorkerId } from "./Domain.js"
import type { RuntimeStoreService } from "./RuntimeStore.js"

/** Workers one sweep deletes at most: the next sweep takes the rest. */
const SWEEP_BATCH = 256

export const startRetention = <E>(
  store: RuntimeStoreService,
  retainMs: number,
  /** Deletes one Worker. */
  deleteWorker: (workerId: WorkerId) => Effect.Effect<void, E>
): Effect.Effect<void, never, Scope.Scope> => {
  const sweep = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const expired = yield* store.expired(new Date(now - retainMs).toISOString(), SWEEP_BATCH)
    for (const workerId of expired) {
      yield* deleteWorker(workerId).pipe(
        Effect.catchAll((error) => Effect.logWarning("retention could not delete a Worker", error))
      )
    }
  }).pipe(Effect.catchAll((error) => Effect.logWarning("retention could not list expired Workers", error.message)))
  // Often enough to be near the retention, never more than once a second or less than once a minute.
  const every = Math.max(1000, Math.min(60_000, Math.floor(retainMs / 10)))
  return Effect.asVoid(Effect.forkScoped(Effect.repeat(sweep, Schedule.spaced(every))))
}

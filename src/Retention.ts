/**
 * Retention (`--retain-stopped`): a background sweep that deletes Workers
 * stopped or failed longer ago than the retention, one at a time. Each delete
 * holds only its own Worker's lock, so requests for other Workers never wait
 * on the sweep; on SQLite the transcript goes in bounded batches.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { Slot, WorkerTable } from "./WorkerTable.js"

export const startRetention = <E>(
  table: WorkerTable,
  retainMs: number,
  /** Deletes one Worker; called holding its lock. */
  deleteLocked: (slot: Slot) => Effect.Effect<void, E>
): Effect.Effect<void, never, Scope.Scope> => {
  const sweep = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const old = Array.from(table.slots()).filter((slot) =>
      (slot.worker.status === "stopped" || slot.worker.status === "failed") &&
      now - Date.parse(slot.worker.updatedAt) > retainMs
    )
    for (const slot of old) {
      yield* table.locked(slot, deleteLocked(slot)).pipe(
        Effect.catchAll((error) => Effect.logWarning("retention could not delete a Worker", error))
      )
    }
  })
  // Often enough to be near the retention, never more than once a second or less than once a minute.
  const every = Math.max(1000, Math.min(60_000, Math.floor(retainMs / 10)))
  return Effect.asVoid(Effect.forkScoped(Effect.repeat(sweep, Schedule.spaced(every))))
}

/**
 * Inputs a runner has answered, by Worker and input id: a redelivered input
 * (a persisted message is delivered at least once) answers what the first
 * delivery answered instead of being recorded again. It lives in the
 * runner's memory, so it covers redeliveries to the same runner; one after
 * the runner died between the store's commit and the cluster's reply needs
 * the input id kept by the store with the entry (docs/cluster.md).
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"

/** Answers kept per runner; the oldest are forgotten first. */
export const LEDGER_SIZE = 10_000

export interface InputLedger<A, E> {
  /** `record`'s answer for the first delivery of `inputId` to `workerId`; later ones wait for it and answer the same. */
  readonly once: (workerId: string, inputId: string, record: Effect.Effect<A, E>) => Effect.Effect<A, E>
}

export const makeInputLedger = <A, E>(size: number = LEDGER_SIZE): InputLedger<A, E> => {
  // Insertion order is the eviction order.
  const answers = new Map<string, Deferred.Deferred<A, E>>()
  return {
    once: (workerId, inputId, record) =>
      Effect.suspend(() => {
        const key = `${workerId}\u0000${inputId}`
        const known = answers.get(key)
        if (known !== undefined) return Deferred.await(known)
        const done = Deferred.unsafeMake<A, E>(FiberId.none)
        answers.set(key, done)
        for (const oldest of answers.keys()) {
          if (answers.size <= size) break
          answers.delete(oldest)
        }
        return record.pipe(
          Effect.onExit((exit) => {
            // Interrupted (its entity was shutting down): the redelivery decides, as if this one never ran.
            if (Exit.isInterrupted(exit)) {
              answers.delete(key)
              return Deferred.interrupt(done)
            }
            return Deferred.done(done, exit)
          })
        )
      })
  }
}

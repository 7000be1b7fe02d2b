/**
 * The lock of one actor's changes. Effect's semaphore takes even a free
 * permit through an asynchronous step, and a fiber that meets one is sent
 * through the scheduler before it goes on: every input paid that hop
 * (docs/benchmarks.md). This lock takes a free lock in the same step; only a
 * caller that finds it held waits. Release hands the lock to the longest
 * waiter, and a waiter interrupted once it was handed the lock passes it on.
 */
import * as Effect from "effect/Effect"

interface Waiter {
  /** The lock is this waiter's now. */
  granted: boolean
  resume: ((effect: Effect.Effect<void>) => void) | undefined
}

export interface Lock {
  /**
   * Runs `effect` holding the lock. Waiting for it can be interrupted;
   * `effect` itself cannot, so a caller that goes away never leaves a change
   * half applied.
   */
  readonly withLock: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

export const makeLock = (): Lock => {
  let held = false
  // In arrival order (a Set iterates in insertion order).
  const waiters = new Set<Waiter>()

  const release = () => {
    for (const next of waiters) {
      waiters.delete(next)
      next.granted = true
      next.resume?.(Effect.void)
      return
    }
    held = false
  }

  const holding = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    // Uninterruptible here, so the release cannot be skipped between the two.
    Effect.matchCauseEffect(effect, {
      onFailure: (cause) => {
        release()
        return Effect.failCause(cause)
      },
      onSuccess: (value) => {
        release()
        return Effect.succeed(value)
      }
    })

  const wait = (waiter: Waiter) =>
    Effect.async<void>((resume) => {
      waiter.resume = resume
      waiters.add(waiter)
      // Interrupted while waiting: never handed the lock (a waiter handed it is out of the set already).
      return Effect.sync(() => {
        waiters.delete(waiter)
      })
    })

  return {
    withLock: (effect) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.suspend(() => {
          if (!held) {
            held = true
            return holding(effect)
          }
          const waiter: Waiter = { granted: false, resume: undefined }
          return Effect.flatMap(
            Effect.onExit(restore(wait(waiter)), (exit) =>
              // Handed the lock, then interrupted before using it: the next waiter gets it.
              Effect.sync(() => {
                if (exit._tag === "Failure" && waiter.granted) release()
              })),
            () => holding(effect)
          )
        })
      )
  }
}

/**
 * Group commit: writes that arrive while a transaction is committing wait and
 * then share the next transaction, so concurrent Workers pay one fsync per
 * batch instead of one each. Each write still returns only after the
 * transaction holding it has committed, so an answered write is as durable as
 * before; a batch that fails is retried one write per transaction, so one bad
 * write cannot fail the others.
 */
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"

export interface GroupCommit<I, E> {
  readonly write: (item: I) => Effect.Effect<void, E>
}

export const makeGroupCommit = <I, E>(
  writeBatch: (items: ReadonlyArray<I>) => Effect.Effect<void, E>,
  maxBatch: number
): Effect.Effect<GroupCommit<I, E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const queue = yield* Effect.acquireRelease(
      Queue.unbounded<readonly [I, Deferred.Deferred<void, E>]>(),
      Queue.shutdown
    )
    // Waiting for work is interruptible (the scope's end stops the loop); a
    // batch, once taken, is written and answered whole.
    const writeTaken = (pending: ReadonlyArray<readonly [I, Deferred.Deferred<void, E>]>) =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(writeBatch(pending.map(([item]) => item)))
        if (exit._tag === "Success" || pending.length === 1) {
          for (const [, done] of pending) Deferred.unsafeDone(done, exit)
          return
        }
        for (const [item, done] of pending) Deferred.unsafeDone(done, yield* Effect.exit(writeBatch([item])))
      }).pipe(Effect.uninterruptible)
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.flatMap(Queue.takeBetween(queue, 1, maxBatch), (taken) => writeTaken(Chunk.toReadonlyArray(taken)))
      )
    )
    return {
      write: (item) =>
        Effect.flatMap(Deferred.make<void, E>(), (done) =>
          Effect.zipRight(Queue.offer(queue, [item, done]), Deferred.await(done)))
    }
  })

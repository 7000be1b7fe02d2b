/**
 * Workers a lost runner left with a turn running or inputs queued are
 * adopted on their own by the runner that takes their shard, not only at
 * their next call: the runner watches which shards it holds, and when it
 * takes some, it starts the entities of the busy and queued Workers in
 * them (from the store's indexes), which repairs them (docs/cluster.md).
 */
import { Sharding } from "@effect/cluster/Sharding"
import * as Clock from "effect/Clock"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { WorkerId } from "../Domain.js"
import type { RuntimeStoreService } from "../RuntimeStore.js"
import { heldShards, shardOf } from "./Shards.js"

export interface AdoptionOptions {
  readonly store: RuntimeStoreService
  /** Shards per group, as the cluster is configured (`SHARD_COUNT`). */
  readonly shards: number
  /** The shard group of the Worker entity. */
  readonly group: string
  /** Starts the Worker's entity (a call to it). */
  readonly touch: (workerId: WorkerId) => Effect.Effect<void>
  /** How often the held shards are looked at. */
  readonly every: Duration.DurationInput
}

/** Workers whose entities are started at once after shards are taken. */
const CONCURRENCY = 16

export const adoptOnAcquire = (options: AdoptionOptions): Effect.Effect<void, never, Sharding | Scope.Scope> =>
  Effect.gen(function*() {
    const sharding = yield* Sharding
    const { every, group, shards, store, touch } = options
    let held = new Set<string>()

    const look = Effect.gen(function*() {
      const now = heldShards(sharding, group, shards)
      const taken = new Set(Array.from(now).filter((shard) => !held.has(shard)))
      if (taken.size > 0) {
        const workers = new Set([...yield* store.busyWorkers, ...yield* store.queuedWorkers])
        yield* Effect.forEach(
          workers,
          (workerId) => taken.has(shardOf(sharding, workerId, group)) ? touch(workerId) : Effect.void,
          { concurrency: CONCURRENCY, discard: true }
        )
      }
      // Only once they were looked at: a failed look is tried again.
      held = now
    })

    yield* look.pipe(
      Effect.catchAll((error) => Effect.logWarning("could not look for Workers to adopt", error)),
      Effect.repeat(Schedule.spaced(every)),
      // Real time: the cluster's business, no part of the Runtime's time.
      Effect.withClock(Clock.make()),
      Effect.forkScoped
    )
  })

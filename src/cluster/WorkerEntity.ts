/**
 * A Worker as an `@effect/cluster` entity: its id is the Worker's id, its
 * RPCs are the Runtime's per-Worker operations, and it hosts the Worker's
 * actor on the runner that owns its shard (docs/cluster.md). Input and stop
 * are persisted messages, delivered again after a failover; the rest are
 * volatile. The handlers delegate to the runner's own Runtime, whose actors
 * live only for the entities this runner holds.
 */
import * as ClusterSchema from "@effect/cluster/ClusterSchema"
import * as Entity from "@effect/cluster/Entity"
import * as MessageStorage from "@effect/cluster/MessageStorage"
import { Sharding } from "@effect/cluster/Sharding"
import * as Rpc from "@effect/rpc/Rpc"
import * as Clock from "effect/Clock"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import {
  CancelResult,
  InputAccepted,
  MAX_WAIT_MS,
  TranscriptPage,
  TranscriptQuery,
  Turn,
  TurnQuery,
  Worker,
  WorkerEvent,
  WorkerId,
  WorkerInput
} from "../Domain.js"
import { Busy, InvalidInput, Unavailable, UnknownWorker, Unsupported } from "../Errors.js"
import type { RuntimeService } from "../Runtime.js"
import type { ActorHosting } from "../RuntimeLive.js"
import { RETRY_AFTER_MS } from "../RuntimeOptions.js"

const realTime = Clock.make()
/** How often a follow served here checks that this runner still holds its Worker's shard. */
const SHARD_WATCH = "500 millis"

/** What is recorded for a turn that was running on a runner that is gone. */
export const FAILOVER_REASON = "interrupted by failover"
/** What is recorded for a turn that was running when its Worker moved to another runner. */
export const HANDOVER_REASON = "interrupted by handover"

export const Get = Rpc.make("Get", { success: Worker, error: Schema.Union(UnknownWorker, Unavailable) })

/** `inputId` is made by the caller once per input: a redelivery or a resend carries the same. */
export const Input = Rpc.make("Input", {
  payload: { inputId: Schema.String, input: WorkerInput },
  primaryKey: ({ inputId }) => inputId,
  success: InputAccepted,
  error: Schema.Union(UnknownWorker, Busy, InvalidInput, Unsupported, Unavailable)
}).annotate(ClusterSchema.Persisted, true)

export const Cancel = Rpc.make("Cancel", {
  payload: { reason: Schema.optional(Schema.String), clearQueue: Schema.Boolean },
  success: CancelResult,
  error: Schema.Union(UnknownWorker, Unsupported, Unavailable)
})

/** Stopping twice changes nothing: a redelivery is harmless. */
export const Stop = Rpc.make("Stop", {
  payload: { reason: Schema.optional(Schema.String) },
  success: Worker,
  error: Schema.Union(UnknownWorker, Unavailable)
}).annotate(ClusterSchema.Persisted, true)

export const Transcript = Rpc.make("Transcript", {
  payload: { query: TranscriptQuery },
  success: TranscriptPage,
  error: Schema.Union(UnknownWorker, InvalidInput, Unavailable)
})

export const TurnOf = Rpc.make("Turn", {
  payload: { turn: Schema.Number, query: TurnQuery },
  success: Turn,
  error: Schema.Union(UnknownWorker, InvalidInput, Unavailable)
})

export const Delete = Rpc.make("Delete", { error: Schema.Union(UnknownWorker, Unsupported, Unavailable) })

/** The owner's follow of the Worker from `after`; the caller resumes it from the store by seq (ClusterRuntime). */
export const Events = Rpc.make("Events", {
  payload: { after: Schema.Number },
  success: WorkerEvent,
  error: Schema.Union(UnknownWorker, InvalidInput, Unavailable),
  stream: true
})

/** The Worker entity's one shard group: every Worker's shard is one of its `SHARD_COUNT`. */
export const SHARD_GROUP = "default"

export const WorkerEntity = Entity.make("Worker", [Get, Input, Cancel, Stop, Transcript, TurnOf, Delete, Events])
  .annotate(ClusterSchema.ShardGroup, () => SHARD_GROUP)

/**
 * The follows this runner serves (`Events`). A runner's drain ends them and
 * waits for their requests to end while its entities still run: a served
 * stream ends only once its caller has acknowledged its last chunk, and
 * once an entity shuts down, acknowledgements no longer reach it (it would
 * wait the cluster's `entityTerminationTimeout`).
 */
export interface ServedFollows {
  readonly track: <A, E, R>(follow: Stream.Stream<A, E, R>) => Stream.Stream<A, E, R>
  /** Waits until no follow is served here. */
  readonly ended: Effect.Effect<void>
}

export const makeServedFollows = (): ServedFollows => {
  let open = 0
  const none = Effect.unsafeMakeLatch(true)
  const opened = Effect.sync(() => {
    open++
    none.unsafeClose()
  })
  const closed = Effect.sync(() => {
    open--
    if (open === 0) none.unsafeOpen()
  })
  return {
    track: (follow) => Stream.unwrapScoped(Effect.as(Effect.acquireRelease(opened, () => closed), follow)),
    ended: none.await
  }
}

export interface WorkerEntityOptions {
  /** This runner is shutting down: a follow is refused (`Unavailable`) and its caller follows on at the next owner. */
  readonly closing?: (() => boolean) | undefined
  /** The follows served here, for the runner's drain to wait for. */
  readonly served?: ServedFollows | undefined
  /**
   * The Runtime's clock, which the handlers run with (turns, waits and
   * timestamps are the Runtime's time, not the cluster machinery's). Default: the cluster's.
   */
  readonly clock?: Clock.Clock | undefined
  /** An entity with no message and no turn for this long is let go (its actor with it). Default: the cluster's. */
  readonly maxIdleTime?: Duration.DurationInput | undefined
}

/**
 * Registers the Worker entity, its handlers over `local` (this runner's
 * Runtime) and `actors` (its actors' hosting). An entity taking a Worker
 * first adopts it (a turn left running by a lost runner is recorded
 * interrupted, queued inputs resume); letting it go releases the actor.
 */
export const WorkerEntityLive = (local: RuntimeService, actors: ActorHosting, options: WorkerEntityOptions = {}) => {
  const { clock } = options
  const closing = options.closing ?? (() => false)
  const served = options.served ?? makeServedFollows()
  const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    clock === undefined ? effect : Effect.withClock(effect, clock)
  return WorkerEntity.toLayer(
    timed(Effect.gen(function*() {
      const address = yield* Entity.CurrentAddress
      const storage = yield* MessageStorage.MessageStorage
      const workerId = WorkerId.make(address.entityId)
      yield* actors.adopt(workerId, FAILOVER_REASON).pipe(
        Effect.catchTags({
          // Calls for it answer UnknownWorker.
          UnknownWorker: () => Effect.void,
          // Its next command tries again; until then it shows as the store has it.
          Unavailable: (error) => Effect.logWarning("could not adopt a Worker", error)
        })
      )
      yield* Effect.addFinalizer(() => actors.release(workerId, HANDOVER_REASON))
      const sharding = yield* Sharding
      const shardLost = Effect.repeat(Effect.sync(() => sharding.hasShardId(address.shardId)), {
        schedule: Schedule.spaced(SHARD_WATCH),
        while: (held) => held
      }).pipe(Effect.withClock(realTime))

      // While a turn runs the entity must not be let go for being idle (its
      // turn would be interrupted): kept alive until the Worker is idle again.
      const scope = yield* Scope.Scope
      let keeping = false
      const keepWhileBusy = (worker: Worker): Effect.Effect<void, never, Sharding> =>
        Effect.suspend(() => {
          if (keeping || worker.status !== "busy") return Effect.void
          keeping = true
          const untilIdle = Effect.gen(function*() {
            let turn = worker.turn
            for (;;) {
              yield* local.turn(workerId, turn, { waitMs: MAX_WAIT_MS })
              const now = yield* local.get(workerId)
              if (now.status !== "busy") return
              turn = now.turn
            }
          })
          // Real time: keeping an entity is the cluster's business, no part of the Runtime's time.
          return Effect.zipRight(Entity.keepAlive(true), Effect.withClock(untilIdle, realTime)).pipe(
            Effect.ignore,
            Effect.ensuring(Effect.suspend(() => {
              keeping = false
              return Entity.keepAlive(false)
            })),
            // A turn started while this one ended found `keeping` still set.
            Effect.zipRight(Effect.flatMap(Effect.option(local.get(workerId)), (now) =>
              now._tag === "Some" ? keepWhileBusy(now.value) : Effect.void)),
            Effect.provideService(Entity.CurrentAddress, address),
            Effect.forkIn(scope),
            Effect.asVoid
          )
        })
      yield* Effect.flatMap(
        Effect.option(local.get(workerId)),
        (now) => now._tag === "Some" ? keepWhileBusy(now.value) : Effect.void
      )

      return WorkerEntity.of({
        Get: () => timed(local.get(workerId)),
        // Recorded with its id: a redelivery (this runner's or another's) is answered by the store.
        Input: ({ payload }) =>
          timed(actors.input(workerId, payload.input, payload.inputId)).pipe(
            Effect.tap((accepted) => keepWhileBusy(accepted.worker))
          ),
        Cancel: ({ payload }) =>
          timed(local.cancel(workerId, {
            ...(payload.reason === undefined ? {} : { reason: payload.reason }),
            clearQueue: payload.clearQueue
          })),
        Stop: ({ payload }) =>
          timed(local.stop(workerId, payload.reason === undefined ? {} : { reason: payload.reason })),
        Transcript: ({ payload }) => timed(local.transcript(workerId, payload.query)),
        Turn: ({ payload }) => timed(local.turn(workerId, payload.turn, payload.query)),
        // Its messages and replies go with it: the cluster keeps them until then.
        Delete: () =>
          timed(local.delete(workerId)).pipe(
            Effect.tap(() =>
              Effect.catchAll(
                storage.clearAddress(address),
                (error) => Effect.logWarning("could not clear a deleted Worker's messages", error)
              )
            )
          ),
        // A follow reads no clock. It ends when this runner no longer holds
        // the Worker's shard (a handover): its caller follows on at the next owner.
        Events: ({ payload }) =>
          closing()
            ? Stream.fail(new Unavailable({ message: "this runner is shutting down", retryAfterMs: RETRY_AFTER_MS }))
            : served.track(local.events(workerId, { after: payload.after }).pipe(Stream.interruptWhen(shardLost)))
      })
    })),
    { concurrency: "unbounded", maxIdleTime: options.maxIdleTime }
  )
}

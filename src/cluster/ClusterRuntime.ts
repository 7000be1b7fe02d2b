/**
 * The `Runtime` of one runner of a cluster (docs/cluster.md): per-Worker
 * operations go to the Worker's entity, wherever its shard lives; info,
 * list and create read and write the shared store from here. Each runner
 * also runs its own Runtime over the shared store, whose actors exist only
 * for the entities it holds (src/cluster/WorkerEntity.ts).
 */
import { AlreadyProcessingMessage, MailboxFull, PersistenceError } from "@effect/cluster/ClusterError"
import type { MessageStorage } from "@effect/cluster/MessageStorage"
import { Sharding } from "@effect/cluster/Sharding"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Worker, WorkerEvent, WorkerId } from "../Domain.js"
import { type InvalidInput, Unavailable, type UnknownWorker } from "../Errors.js"
import { makeClockId } from "../Ids.js"
import { startRetention } from "../Retention.js"
import { Runtime, type RuntimeService } from "../Runtime.js"
import { RuntimeControl, type RuntimeControlService } from "../RuntimeControl.js"
import { makeRuntime } from "../RuntimeLive.js"
import { RETRY_AFTER_MS, type RuntimeOptions } from "../RuntimeOptions.js"
import { asUnavailable, RuntimeStore, type RuntimeStoreService, type StoreError } from "../RuntimeStore.js"
import { cancelOf, reasonOf, validate } from "../Validation.js"
import { notStopped } from "../WorkerGauges.js"
import { adoptOnAcquire } from "./Adoption.js"
import { SHARD_COUNT } from "./ShardCount.js"
import { heldShards, holdsWorker } from "./Shards.js"
import {
  makeServedFollows,
  SHARD_GROUP,
  WorkerEntity,
  WorkerEntityLive,
  type WorkerEntityOptions
} from "./WorkerEntity.js"

const liveClock = Clock.make()

/** What the cluster's client may fail with besides a Runtime error: the call did not reach its entity. */
type ClusterFailure = MailboxFull | AlreadyProcessingMessage | PersistenceError

/** How long a drain waits for the follows it ended to be acknowledged by their callers (a caller gone never does). */
const FOLLOWS_END = "5 seconds"

/** Subscriptions of one follow that may break in a row, the cluster unreachable, before the follow fails. */
const MAX_RESUMES = 30

const isClusterFailure = <E>(error: E | ClusterFailure): error is ClusterFailure =>
  error instanceof MailboxFull || error instanceof AlreadyProcessingMessage || error instanceof PersistenceError

const unavailableOf = (error: ClusterFailure) =>
  new Unavailable({ message: `the cluster could not deliver the call: ${error._tag}`, retryAfterMs: RETRY_AFTER_MS })

/**
 * The call's own errors, and a cluster failure as `Unavailable` (the call
 * did not reach its Worker). The cluster's retries and polls are real time,
 * whatever clock the caller has (a test's must not hold them).
 */
const routed = <A, E, R>(effect: Effect.Effect<A, E | ClusterFailure, R>) =>
  Effect.catchIf(Effect.withClock(effect, liveClock), isClusterFailure<E>, (error) => Effect.fail(unavailableOf(error)))

const isTerminal = (worker: Worker) => worker.status === "stopped" || worker.status === "failed"

const sameWorker = (a: Worker, b: Worker) =>
  a.status === b.status && a.lastSeq === b.lastSeq && a.queued === b.queued && a.turn === b.turn &&
  a.updatedAt === b.updatedAt

/** Entries read from the store per step when a follow fills a gap. */
const GAP_PAGE = 256
const GAP_BYTES = 1024 * 1024

type FollowError = UnknownWorker | InvalidInput | Unavailable

/**
 * A follow through the cluster: the owner's stream, subscribed again after
 * the last seq delivered when it breaks (a failover, a handover), and
 * filled from the store when it skips: no gap, no duplicate. A `worker`
 * event equal to the last one is not repeated. It ends as a local follow
 * does: the Worker stopped or failed with every entry delivered, deleted,
 * or the runtime closing.
 */
export const followAcross = (
  store: RuntimeStoreService,
  subscribe: (after: number) => Stream.Stream<WorkerEvent, FollowError | ClusterFailure>,
  closing: () => boolean,
  workerId: WorkerId,
  after: number
): Stream.Stream<WorkerEvent, FollowError> => {
  let delivered = after
  let last: Worker | undefined = undefined
  let subscribed = false
  let failures = 0

  const gap = (upTo: number) =>
    Effect.gen(function*() {
      const out: Array<WorkerEvent> = []
      while (delivered < upTo) {
        const entries = yield* asUnavailable(store.transcript(workerId, {
          after: delivered,
          limit: Math.min(GAP_PAGE, upTo - delivered),
          maxBytes: GAP_BYTES
        }))
        if (entries.length === 0) break
        for (const entry of entries) out.push({ type: "entry", entry })
        delivered = entries[entries.length - 1]!.seq
      }
      return out
    })

  const accept = (event: WorkerEvent): Effect.Effect<ReadonlyArray<WorkerEvent>, Unavailable> => {
    if (event.type === "worker") {
      if (last !== undefined && sameWorker(last, event.worker)) return Effect.succeed([])
      last = event.worker
      return Effect.succeed([event])
    }
    if (event.type === "delta") return Effect.succeed([event])
    const { seq } = event.entry
    if (seq <= delivered) return Effect.succeed([])
    if (seq === delivered + 1) {
      delivered = seq
      return Effect.succeed([event])
    }
    return Effect.map(gap(seq - 1), (filled) => {
      delivered = Math.max(delivered, seq)
      return [...filled, event]
    })
  }

  /** After a subscription ended or broke: whether the follow is over, else subscribe again. */
  const next = (broke: boolean): Stream.Stream<WorkerEvent, FollowError> =>
    Stream.unwrap(Effect.gen(function*() {
      if (closing()) return Stream.empty
      if (last !== undefined && isTerminal(last) && delivered >= last.lastSeq) return Stream.empty
      const stored = yield* asUnavailable(store.getWorker(workerId))
      // Deleted meanwhile: a local follow ends too.
      if (stored === undefined) return Stream.empty
      if (broke) {
        failures++
        if (failures > MAX_RESUMES) {
          return Stream.fail(
            new Unavailable({ message: "the cluster could not deliver the events", retryAfterMs: RETRY_AFTER_MS })
          )
        }
        // The cluster's time: a test's clock must not hold a resume.
        yield* Effect.withClock(Effect.sleep(Math.min(RETRY_AFTER_MS, 50 * failures)), liveClock)
      }
      return follow()
    }))

  const follow = (): Stream.Stream<WorkerEvent, FollowError> =>
    Stream.suspend(() => {
      const first = !subscribed
      subscribed = true
      const from = delivered
      const since = liveClock.unsafeCurrentTimeMillis()
      // Broke: the cluster failed it, or it ended with nothing new (its owner
      // closing, a handover): the next subscription waits a little.
      let broke = false
      const once = subscribe(from).pipe(
        Stream.mapChunksEffect((chunk) =>
          Effect.map(Effect.forEach(chunk, accept), (accepted) => Chunk.fromIterable(accepted.flat()))
        ),
        Stream.catchAllCause((cause) => {
          // Interrupted from the other side (its runner went away); an
          // interrupt of this follow itself runs no handler.
          if (Cause.isInterruptedOnly(cause)) {
            broke = true
            return Stream.empty
          }
          const failure = Cause.failureOption(cause)
          if (failure._tag === "None") return Stream.die(Cause.squash(cause))
          const error = failure.value
          // The owner is shutting down (`Unavailable`) or the call did not reach it: the next owner serves.
          if (isClusterFailure(error) || (!first && error._tag === "Unavailable")) {
            broke = true
            return Stream.empty
          }
          // Deleted since the last subscription: `next` finds it gone and ends.
          if (!first && error._tag === "UnknownWorker") return Stream.empty
          return Stream.fail(error)
        })
      )
      return Stream.concat(
        once,
        Stream.suspend(() => {
          // A subscription that delivered entries, or lasted, was no failure.
          if (delivered > from || liveClock.unsafeCurrentTimeMillis() - since >= RETRY_AFTER_MS) failures = 0
          return next(broke || delivered === from)
        })
      )
    })

  return follow()
}

export interface ClusterRuntimeOptions extends WorkerEntityOptions {
  /** Shards per group, as the cluster is configured. Default `SHARD_COUNT`. */
  readonly shards?: number | undefined
  /** How often a runner looks for shards it took, to adopt their Workers (default 1 second). */
  readonly adoptEvery?: Duration.DurationInput | undefined
  /** How often the Worker gauges (`/metrics`) are set from the shared store's counts (default 5 seconds). */
  readonly recountEvery?: Duration.DurationInput | undefined
  /** This runner's address as the others reach it (`RuntimeInfo.cluster.runner`). Default `"local"`. */
  readonly runner?: string | undefined
  /** Healthy runners in the cluster (`RuntimeInfo.cluster.runners`). Default: 1. */
  readonly runners?: Effect.Effect<number> | undefined
}

/**
 * The Runtime of this runner of the cluster in context (`Sharding` and its `MessageStorage`), over the
 * shared store, with the Worker entity registered.
 */
export const makeClusterRuntime = (
  options: RuntimeOptions = {},
  cluster: ClusterRuntimeOptions = {}
): Effect.Effect<
  { readonly runtime: RuntimeService; readonly control: RuntimeControlService },
  StoreError,
  RuntimeStore | Sharding | MessageStorage | Scope.Scope
> =>
  Effect.gen(function*() {
    const store = yield* RuntimeStore
    const sharding = yield* Sharding
    const { retainStoppedMs, ...localOptions } = options
    // Its shard handed to another runner mid-turn, the cluster waits for the
    // turn (it keeps the entity alive, src/cluster/WorkerEntity.ts) and
    // nothing more starts here: the queue waits for the next owner.
    const moving = new Unavailable({ message: "this Worker is moving to another runner", retryAfterMs: RETRY_AFTER_MS })
    const { actors, control, runtime: local } = yield* makeRuntime(localOptions, {
      repairAtStart: false,
      recountEvery: cluster.recountEvery ?? "5 seconds",
      moving: (workerId) => holdsWorker(sharding, workerId, SHARD_GROUP) ? undefined : moving,
      // The cluster's capacity, counted by the shared store: this runner's own count would miss the others' Workers.
      atCapacity: (maxWorkers, reserving) =>
        Effect.map(
          asUnavailable(store.counts),
          (counts) => notStopped(counts) + reserving >= maxWorkers
        )
    })
    const shards = cluster.shards ?? SHARD_COUNT
    let closing = false
    const served = makeServedFollows()
    const clock = yield* Effect.clock
    // Registered on real time: the entity manager's own loops are the cluster's; its handlers run on `clock`.
    yield* Effect.withClock(
      Layer.buildWithScope(
        WorkerEntityLive(local, actors, { clock, closing: () => closing, served, ...cluster }),
        yield* Effect.scope
      ),
      liveClock
    )
    const clientOf = yield* WorkerEntity.client
    // Runs before the entities are shut down (finalizers run in reverse): the
    // turns here get the grace and are recorded, the follows here end rather
    // than resume, and follows from elsewhere move on to the shards' next
    // owners. Their requests end while the entities still run, else an
    // entity's shutdown would wait the cluster's termination timeout for them.
    const drain = Effect.sync(() => closing = true).pipe(
      Effect.zipRight(control.drain),
      Effect.tap(() =>
        Effect.timeoutOption(served.ended, FOLLOWS_END).pipe(
          Effect.withClock(liveClock),
          Effect.flatMap((ended) =>
            ended._tag === "Some" ? Effect.void : Effect.logWarning("follows served to other runners did not end")
          )
        )
      )
    )
    yield* Effect.addFinalizer(() => drain)
    yield* adoptOnAcquire({
      store,
      shards,
      group: SHARD_GROUP,
      // An answer does not matter: the call starts the entity, which adopts the Worker.
      touch: (workerId) => Effect.ignore(routed(clientOf(workerId).Get())),
      every: cluster.adoptEvery ?? "1 second"
    })

    const runnerAddress = cluster.runner ?? "local"
    const healthyRunners = cluster.runners ?? Effect.succeed(1)

    const runtime: RuntimeService = {
      info: Effect.zipWith(local.info, healthyRunners, (info, runners) => ({
        ...info,
        cluster: {
          runner: runnerAddress,
          runners,
          shards: heldShards(sharding, SHARD_GROUP, shards).size,
          totalShards: shards
        }
      })),
      list: local.list,
      create: local.create,
      get: (workerId) => routed(clientOf(workerId).Get()),
      input: (workerId, input) =>
        Effect.gen(function*() {
          const valid = yield* validate.input(input)
          // One id per call: a redelivery of this message carries it, and is recorded at most once.
          const inputId = yield* makeClockId
          return yield* routed(clientOf(workerId).Input({ inputId, input: valid }))
        }),
      cancel: (workerId, request) =>
        Effect.flatMap(
          cancelOf(request),
          ({ clearQueue, reason }) =>
            routed(clientOf(workerId).Cancel({ clearQueue, ...(reason === undefined ? {} : { reason }) }))
        ),
      stop: (workerId, request) =>
        Effect.flatMap(
          reasonOf(request),
          (reason) => routed(clientOf(workerId).Stop(reason === undefined ? {} : { reason }))
        ),
      transcript: (workerId, query) =>
        Effect.flatMap(validate.transcript(query), (valid) => routed(clientOf(workerId).Transcript({ query: valid }))),
      turn: (workerId, turn, query) =>
        Effect.flatMap(
          validate.turn(query ?? {}),
          (valid) => routed(clientOf(workerId).Turn({ turn, query: valid }))
        ),
      events: (workerId, query) =>
        Stream.unwrap(Effect.map(validate.events(query ?? {}), ({ after = 0 }) =>
          followAcross(
            store,
            (from) => clientOf(workerId).Events({ after: from }),
            () => closing,
            workerId,
            after
          ))),
      delete: (workerId) => routed(clientOf(workerId).Delete())
    }

    // Each runner deletes the expired Workers whose shards it holds, through
    // their entities (the actor's lock, as any delete); the others' are theirs.
    if (retainStoppedMs !== undefined) {
      yield* startRetention(store, retainStoppedMs, (workerId) =>
        holdsWorker(sharding, workerId, SHARD_GROUP)
          ? Effect.catchTag(runtime.delete(workerId), "UnknownWorker", () => Effect.void)
          : Effect.void)
    }

    return {
      runtime,
      control: {
        drain,
        turnsInFlight: control.turnsInFlight,
        activeWorkers: control.activeWorkers,
        create: control.create
        // No `peek` nor `follow`: they read this runner's actors, and a
        // Worker's may live on another; HTTP then goes through `runtime`.
      }
    }
  })

/** `Runtime` and `RuntimeControl` of this runner of the cluster in context, over the shared `RuntimeStore`. */
export const ClusterRuntimeFromStore = (
  options: RuntimeOptions = {},
  cluster: ClusterRuntimeOptions = {}
): Layer.Layer<Runtime | RuntimeControl, StoreError, RuntimeStore | Sharding | MessageStorage> =>
  Layer.scopedContext(
    Effect.map(
      makeClusterRuntime(options, cluster),
      ({ control, runtime }) => Context.make(Runtime, runtime).pipe(Context.add(RuntimeControl, control))
    )
  )

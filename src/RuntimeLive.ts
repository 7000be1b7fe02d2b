/**
 * `RuntimeLive`: the Runtime over a store. Worker semantics live in
 * `Worker.ts` (`decide`) and `WorkerActor.ts` (which applies its plans);
 * `WorkerHost.ts` finds or activates a Worker's actor. The methods here
 * validate, then delegate: HTTP handlers, the client and the CLI translate
 * and delegate to what is built here. The contract is docs/rest.md;
 * docs/architecture.md shows how the pieces fit.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import {
  type CreateWorker,
  type EventsQuery,
  type InputAccepted,
  type Metadata,
  RuntimeId,
  type RuntimeInfo,
  type StopRequest,
  type Worker,
  WorkerId,
  type WorkerInput
} from "./Domain.js"
import { type Draining, makeDraining } from "./Draining.js"
import { makeEchoEngine } from "./EchoEngine.js"
import { type Busy, InvalidInput, Unavailable, type UnknownWorker, type Unsupported } from "./Errors.js"
import { followWorker, openFollow } from "./Events.js"
import { makeClockId, makeClockIdGenerator } from "./Ids.js"
import { interruptUntilDone } from "./Interrupt.js"
import { MemoryStoreLive } from "./MemoryStore.js"
import { startRetention } from "./Retention.js"
import { Runtime, type RuntimeService } from "./Runtime.js"
import { type CreateResult, RuntimeControl, type RuntimeControlService } from "./RuntimeControl.js"
import {
  DEFAULT_MAX_INPUT_BYTES,
  DEFAULT_MAX_QUEUED_BYTES,
  DEFAULT_MAX_QUEUED_INPUTS,
  DEFAULT_MAX_WORKERS,
  DEFAULT_PAGE,
  DEFAULT_PASSIVATE_AFTER_MS,
  MAX_PAGE,
  RETRY_AFTER_MS,
  type RuntimeOptions
} from "./RuntimeOptions.js"
import { asUnavailable, RuntimeStore, StoreError } from "./RuntimeStore.js"
import { traced } from "./Tracing.js"
import { cancelOf, exceedsBytes, followableAfter, reasonOf, utf8Length, validate } from "./Validation.js"
import { VERSION } from "./version.js"
import { decideCancel, decideDelete, decideInput, decideInterrupt, decideResume, decideStop } from "./Worker.js"
import { nowIso, type WorkerActor } from "./WorkerActor.js"
import type { Profiles, WorkerEngine } from "./WorkerEngine.js"
import { makeWorkerGauges } from "./WorkerGauges.js"
import { makeWorkerHost, unknownWorker, type WorkerHost } from "./WorkerHost.js"

const defaultProfiles: Profiles = { default: makeEchoEngine() }
const EMPTY_METADATA: Worker["metadata"] = {}
/** A transcript page stops before its entries' content would pass this (docs/rest.md). */
export const MAX_PAGE_BYTES = 4 * 1024 * 1024

const sameMetadata = (a: Metadata, b: Metadata) => {
  const keys = Object.keys(a)
  return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && a[key] === b[key])
}

/**
 * How a runner of a cluster hosts actors (src/cluster): a Worker's actor
 * lives on the runner that owns its entity, taken and let go with it.
 */
export interface ActorHosting {
  /**
   * Takes the Worker's actor on this runner: a turn the store shows running
   * (its runner is gone) is recorded `interrupted` with `reason`, and its
   * queued inputs resume. Nothing to do when the actor is here already.
   */
  readonly adopt: (workerId: WorkerId, reason: string) => Effect.Effect<void, UnknownWorker | Unavailable>
  /** Lets the actor go: a running turn is recorded `interrupted` with `reason`, its followers' streams end. */
  readonly release: (workerId: WorkerId, reason: string) => Effect.Effect<void>
  /**
   * `Runtime.input` with the input's id (its persisted message's), recorded
   * with it by the store: an input whose id is recorded already is answered
   * as it was then, and recorded nothing again.
   */
  readonly input: (
    workerId: WorkerId,
    input: WorkerInput,
    inputId: string
  ) => Effect.Effect<InputAccepted, UnknownWorker | Busy | InvalidInput | Unsupported | Unavailable>
}

const notMoving = () => undefined

/** Where the Workers' actors live: in this process only (default), or on the runners of a cluster. */
export interface Hosting {
  /** Repair every Worker the store shows busy or queued at start (false in a cluster: `ActorHosting.adopt` does it per Worker). */
  readonly repairAtStart?: boolean | undefined
  /**
   * Whether `reserving` more new Workers would pass `maxWorkers` (a cluster
   * counts them in the shared store). Default: this process's own count.
   */
  readonly atCapacity?: ((maxWorkers: number, reserving: number) => Effect.Effect<boolean, Unavailable>) | undefined
  /**
   * A refusal while the Worker is moving to another runner of a cluster, its
   * running turn let finish first: no queued input starts here, and new
   * inputs answer it (the next owner takes them, and the queue). Default: never.
   */
  readonly moving?: ((workerId: string) => Unavailable | undefined) | undefined
  /**
   * How often the Worker gauges are set from the store's counts (a cluster:
   * the other runners change them too). Default: never, as only this
   * Runtime changes them.
   */
  readonly recountEvery?: Duration.DurationInput | undefined
}

/** Builds the Runtime over whatever `RuntimeStore` is provided. */
export const makeRuntime = (
  options: RuntimeOptions = {},
  hosting: Hosting = {}
): Effect.Effect<
  { readonly runtime: RuntimeService; readonly control: RuntimeControlService; readonly actors: ActorHosting },
  StoreError,
  RuntimeStore | Scope.Scope
> =>
  Effect.gen(function*() {
    const store = yield* RuntimeStore
    const profiles = options.profiles ?? defaultProfiles
    const profileNames = Object.keys(profiles)
    // Own keys only: a profile named "constructor" must not find Object's.
    const engineOf = (name: string): WorkerEngine | undefined =>
      Object.hasOwn(profiles, name) ? profiles[name] : undefined
    const maxWorkers = options.maxWorkers ?? DEFAULT_MAX_WORKERS
    const maxInputBytes = options.maxInputBytes ?? DEFAULT_MAX_INPUT_BYTES
    const maxPage = Math.min(options.maxPage ?? MAX_PAGE, MAX_PAGE)
    const defaultPage = Math.min(DEFAULT_PAGE, maxPage)
    const displayName = options.displayName ?? null

    const freshId = yield* makeClockId
    const runtimeId = RuntimeId.make(yield* store.runtimeId(options.runtimeId, () => freshId))
    const startedAt = yield* nowIso
    const tracing = options.tracing === true
    const ids = yield* makeClockIdGenerator(yield* store.lastWorkerId)
    // Counted by the store's index, then moved by every change made here.
    const gauges = makeWorkerGauges(runtimeId, yield* store.counts)
    if (hosting.recountEvery !== undefined) {
      // Others change the shared store too: the gauges follow its counts.
      yield* asUnavailable(store.counts).pipe(
        Effect.tap((counts) => gauges.recount(counts)),
        Effect.ignore,
        Effect.repeat(Schedule.spaced(hosting.recountEvery)),
        Effect.withClock(Clock.make()),
        Effect.forkScoped
      )
    }
    let streamsClosed = false
    const busyActors = (): ReadonlyArray<WorkerActor> =>
      Array.from(host.active()).filter((actor) => actor.worker.status === "busy")
    const draining: Draining<WorkerActor> = yield* makeDraining<WorkerActor>(options.shutdownGraceMs ?? 0, busyActors)
    const fibers = new Set<Fiber.RuntimeFiber<void>>()
    const host: WorkerHost = yield* makeWorkerHost(
      {
        store,
        runtimeId,
        maxQueued: options.maxQueuedInputs ?? DEFAULT_MAX_QUEUED_INPUTS,
        maxQueuedBytes: options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES,
        tracing,
        draining: draining.refusal,
        moving: hosting.moving ?? notMoving,
        statusChanged: (from, to) => {
          gauges.move(from, to)
          draining.notify()
        },
        fibers,
        countStreams: gauges.countStreams,
        streamsClosed: () => streamsClosed
      },
      engineOf,
      options.passivateAfterMs ?? DEFAULT_PASSIVATE_AFTER_MS
    )

    // Repair: a turn in flight when the process died is recorded as
    // interrupted and its Worker freed, found by the store's index of busy
    // Workers (nothing else is loaded). A store that cannot record this fails
    // the start: better no Runtime than one that shows Workers busy forever.
    const busy = hosting.repairAtStart === false ? [] : yield* store.busyWorkers
    for (const workerId of busy) {
      yield* host.use(
        workerId,
        (actor) => actor.run(decideInterrupt, { _tag: "Interrupt", reason: "interrupted by restart" })
      ).pipe(Effect.catchTag("UnknownWorker", () => Effect.void))
    }
    if (busy.length > 0) {
      yield* Effect.logInfo("Workers repaired at start: their turn was in flight when the runtime stopped").pipe(
        Effect.annotateLogs({ workers: busy.length })
      )
    }
    // Inputs queued before the restart run now, in order.
    for (const workerId of hosting.repairAtStart === false ? [] : yield* store.queuedWorkers) {
      yield* host.use(workerId, (actor) => actor.run(decideResume, { _tag: "Resume" })).pipe(
        Effect.catchTag("UnknownWorker", () => Effect.void)
      )
    }

    // Idempotency keys with a create in progress (in this process; the
    // store's unique key decides between processes).
    const keysInFlight = new Map<string, Deferred.Deferred<CreateResult, InvalidInput | Unavailable>>()
    // Creates whose insert is in progress: they count against the capacity.
    let reserved = 0

    /** The store lost for good (its file deleted or replaced): the Runtime cannot serve, and is not ready. */
    const storeLost = Effect.suspend(() => {
      const failure = store.failure()
      return failure === undefined
        ? Effect.void
        : Effect.fail(new Unavailable({ message: `store failure: ${failure}`, retryAfterMs: RETRY_AFTER_MS }))
    })

    /** The Worker of an active actor, as it is now; undefined when the store must be read. */
    const peek = (workerId: WorkerId): Worker | undefined => {
      if (host.deleting(workerId)) return undefined
      const actor = host.peek(workerId)
      return actor !== undefined && !actor.deleted ? actor.worker : undefined
    }

    /** The Worker as it is: its actor's, if active, else the store's. */
    const lookup = (workerId: WorkerId) =>
      Effect.suspend(() => {
        const active = peek(workerId)
        if (active !== undefined) return Effect.succeed(active)
        if (host.deleting(workerId)) return Effect.fail(unknownWorker(workerId))
        return Effect.flatMap(
          asUnavailable(store.getWorker(workerId)),
          (stored) => stored === undefined ? Effect.fail(unknownWorker(workerId)) : Effect.succeed(stored.worker)
        )
      })

    /** Registers a follower of the Worker (released with the scope) and reads it in the same step; `after` checked. */
    const follower = (workerId: WorkerId, query: EventsQuery | undefined) =>
      Effect.gen(function*() {
        const { after = 0 } = yield* validate.events(query ?? {})
        const followed = yield* withActor(workerId, (actor) =>
          Effect.acquireRelease(
            // Registered and read in one synchronous step: no commit falls between.
            Effect.sync(() => ({ actor, listener: actor.listen(), snapshot: actor.worker })),
            ({ listener }) => Effect.sync(() => actor.unlisten(listener))
          ))
        return { ...followed, after: yield* followableAfter(after, followed.snapshot) }
      })

    /** Runs `f` with the Worker's actor; a store failure answers `Unavailable`. */
    const withActor = <A, E, R>(
      workerId: WorkerId,
      f: (actor: WorkerActor) => Effect.Effect<A, E | StoreError, R>
    ): Effect.Effect<A, Exclude<E, StoreError> | UnknownWorker | Unavailable, R> =>
      host.use(workerId, f).pipe(
        Effect.catchIf(
          (error): error is StoreError => error instanceof StoreError,
          (error) => asUnavailable(Effect.fail(error))
        )
      )

    // Effect.fnUntraced defines each generator once: an `Effect.gen(function*…)`
    // per call makes a new generator function per call, and V8 keeps a list
    // of their prototypes that grows with how many were made between two full
    // collections and never shrinks (docs/benchmarks.md, reclaim).
    const createNew = Effect.fnUntraced(
      function*(request: CreateWorker, key: string | undefined) {
        const refusal = draining.refusal()
        if (refusal !== undefined) return yield* refusal
        const full = hosting.atCapacity === undefined
          ? gauges.notStopped() + reserved >= maxWorkers
          : yield* hosting.atCapacity(maxWorkers, reserved)
        if (full) {
          return yield* new Unavailable({
            message: `at capacity: ${maxWorkers} Workers not stopped`,
            retryAfterMs: RETRY_AFTER_MS
          })
        }
        // Reserve the place before the (possibly asynchronous) insert so that
        // concurrent creates cannot overshoot the capacity.
        reserved++
        const at = yield* nowIso
        const { metadata } = request
        const worker: Worker = {
          id: WorkerId.make(yield* ids.next),
          runtimeId,
          profile: request.profile ?? "default",
          status: "idle",
          createdAt: at,
          updatedAt: at,
          turn: 0,
          lastSeq: 0,
          metadata: metadata !== undefined && Object.keys(metadata).length > 0 ? metadata : EMPTY_METADATA,
          queued: 0
        }
        return yield* store.insertWorker(worker, key).pipe(
          asUnavailable,
          Effect.flatMap((result): Effect.Effect<CreateResult, InvalidInput> => {
            if (result.created || key === undefined) {
              gauges.move(undefined, "idle")
              return Effect.succeed({ worker, created: true })
            }
            // The store's unique key decided: another create (another process,
            // sharing the database) took it first.
            return replay(request, result.existing, key)
          }),
          Effect.ensuring(Effect.sync(() => reserved--))
        )
      }
    )

    /** The Worker a known key made, if the request is the same; `InvalidInput` if not. */
    const replay = (request: CreateWorker, worker: Worker, key: string) =>
      (request.profile ?? "default") === worker.profile && sameMetadata(request.metadata ?? {}, worker.metadata)
        ? Effect.succeed<CreateResult>({ worker, created: false })
        : Effect.fail(
          new InvalidInput({
            message: `The idempotency key ${
              JSON.stringify(key)
            } was used for a create with another profile or metadata.`
          })
        )

    const create = Effect.fnUntraced(function*(request: CreateWorker) {
      const valid = yield* validate.create(request)
      const profile = valid.profile ?? "default"
      if (engineOf(profile) === undefined) {
        return yield* new InvalidInput({
          message: `unknown profile ${JSON.stringify(profile)}; configured: ${profileNames.join(", ")}`
        })
      }
      const key = valid.idempotencyKey
      // Making a Worker cannot be interrupted (a caller that goes away
      // never leaves it half made); waiting for another create can.
      if (key === undefined) return yield* Effect.uninterruptible(createNew(valid, undefined))
      const inFlight = keysInFlight.get(key)
      if (inFlight !== undefined) return yield* replay(valid, (yield* Deferred.await(inFlight)).worker, key)
      const known = yield* asUnavailable(store.workerByKey(key))
      if (known !== undefined) return yield* replay(valid, known, key)
      const raced = keysInFlight.get(key)
      if (raced !== undefined) return yield* replay(valid, (yield* Deferred.await(raced)).worker, key)
      // The first create with this key makes the Worker; concurrent ones wait for it.
      return yield* Effect.uninterruptible(Effect.suspend(() => {
        const done = Deferred.unsafeMake<CreateResult, InvalidInput | Unavailable>(FiberId.none)
        keysInFlight.set(key, done)
        return createNew(valid, key).pipe(
          Effect.exit,
          Effect.tap((exit) => Deferred.done(done, exit)),
          Effect.ensuring(Effect.sync(() => keysInFlight.delete(key))),
          Effect.flatten
        )
      }))
    })

    const stop = (workerId: WorkerId, request?: StopRequest) =>
      Effect.flatMap(
        reasonOf(request),
        (reason) => withActor(workerId, (actor) => actor.run(decideStop, { _tag: "Stop", reason }))
      )

    /** An input, with its id when its caller gave one (cluster mode). */
    const input = (workerId: WorkerId, request: WorkerInput, inputId: string | undefined) =>
      Effect.flatMap(validate.input(request), ({ content, ifBusy = "reject", kind = "user" }) => {
        const bytes = utf8Length(content)
        const command = inputId === undefined
          ? { _tag: "Input", content, kind, ifBusy, bytes } as const
          : { _tag: "Input", content, kind, ifBusy, bytes, inputId } as const
        const tooLarge = exceedsBytes(content, maxInputBytes)
          ? new InvalidInput({ message: `content exceeds ${maxInputBytes} UTF-8 bytes` })
          : undefined
        // The Worker is looked up first: an unknown one answers 404 whatever its input.
        return withActor(workerId, (actor) => {
          const run = draining.starting(actor, actor.run(decideInput, command))
          return tooLarge === undefined ? run : Effect.zipRight(Effect.fail(tooLarge), run)
        })
      })

    const deleteWorker = (workerId: WorkerId) =>
      withActor(workerId, (actor) => actor.run(decideDelete, { _tag: "Delete" }))

    const runtime: RuntimeService = {
      info: Effect.zipRight(
        storeLost,
        Effect.map(asUnavailable(store.counts), (counts): RuntimeInfo => ({
          runtimeId,
          displayName,
          version: VERSION,
          status: draining.refusal() === undefined ? "running" : "draining",
          store: store.kind,
          startedAt,
          profiles: profileNames,
          workers: {
            total: counts.idle + counts.busy + counts.stopped + counts.failed,
            idle: counts.idle,
            busy: counts.busy,
            stopped: counts.stopped,
            failed: counts.failed
          },
          limits: { maxWorkers, maxInputBytes, maxTranscriptPage: maxPage },
          cluster: null
        }))
      ),

      list: (query) =>
        Effect.gen(function*() {
          const { after, limit = defaultPage, metadata, status } = yield* validate.list(query)
          if (limit > maxPage) return yield* new InvalidInput({ message: `limit must be at most ${maxPage}` })
          const workers = yield* asUnavailable(store.listWorkers({ after, limit: limit + 1, status, metadata }))
          const page = workers.length > limit ? workers.slice(0, limit) : workers
          const nextAfter = workers.length > limit ? page[page.length - 1]!.id : null
          // A Worker being deleted is gone already.
          return { workers: page.filter((worker) => !host.deleting(worker.id)), nextAfter }
        }),

      get: lookup,

      create: (request) => Effect.map(create(request), (result) => result.worker),

      input: (workerId, request) => input(workerId, request, undefined),

      cancel: (workerId, request) =>
        Effect.flatMap(
          cancelOf(request),
          ({ clearQueue, reason }) =>
            withActor(workerId, (actor) => actor.run(decideCancel, { _tag: "Cancel", reason, clearQueue }))
        ),

      stop,

      transcript: (workerId, query) =>
        Effect.gen(function*() {
          const { after = 0, limit = defaultPage } = yield* validate.transcript(query)
          if (limit > maxPage) return yield* new InvalidInput({ message: `limit must be at most ${maxPage}` })
          const worker = yield* lookup(workerId)
          const entries = yield* asUnavailable(
            store.transcript(workerId, { after, limit, maxBytes: MAX_PAGE_BYTES })
          )
          const last = entries[entries.length - 1]
          // The store may be a commit ahead of what was read, never behind.
          const lastSeq = Math.max(worker.lastSeq, last?.seq ?? 0)
          return { workerId, entries, nextAfter: last !== undefined && last.seq < lastSeq ? last.seq : null, lastSeq }
        }),

      turn: (workerId, turn, query) =>
        Effect.gen(function*() {
          const { waitMs = 0 } = yield* validate.turn(query ?? {})
          const worker = yield* lookup(workerId)
          if (!Number.isInteger(turn) || turn < 1 || turn > worker.turn) {
            return yield* new InvalidInput({
              message: `Worker ${workerId} has no turn ${turn}; its turns are 1 to ${worker.turn}.`
            })
          }
          const actor = host.peek(workerId)
          const latest = actor === undefined ? undefined : yield* actor.latestTurn(turn, waitMs)
          if (latest !== undefined) return latest
          const stored = yield* asUnavailable(store.turn(workerId, turn))
          if (stored === undefined) {
            return yield* new Unavailable({
              message: `store failure: no record of turn ${turn} of Worker ${workerId}`,
              retryAfterMs: RETRY_AFTER_MS
            })
          }
          return stored
        }),

      events: (workerId, query) => followWorker(store, follower(workerId, query)),

      delete: deleteWorker
    }

    if (options.retainStoppedMs !== undefined) yield* startRetention(store, options.retainStoppedMs, deleteWorker)

    // --- shutdown ----------------------------------------------------------------

    const interruptInFlight = Effect.suspend(() =>
      Effect.forEach(
        draining.inFlight(),
        // The actor's lock waits out a turn that is still starting.
        (actor) =>
          actor.run(decideInterrupt, { _tag: "Interrupt", reason: "the runtime shut down" }).pipe(
            Effect.catchAll((error) => Effect.logError("could not record an interrupted turn", error))
          ),
        { concurrency: "unbounded", discard: true }
      )
    )

    const drain = yield* Effect.cached(
      Effect.gen(function*() {
        yield* draining.begin
        const interrupted = draining.inFlight().length
        yield* interruptInFlight
        // Turns already ended by cancel or stop may still be releasing (a child being killed).
        yield* Effect.forEach(Array.from(fibers), interruptUntilDone, { concurrency: "unbounded", discard: true })
        if (!store.durable) {
          const dropped = Array.from(host.active()).reduce((sum, actor) => sum + actor.state.queue.length, 0)
          if (dropped > 0) {
            yield* Effect.logWarning(`${dropped} queued inputs dropped: the ${store.kind} store keeps nothing`)
          }
        }
        streamsClosed = true
        for (const actor of host.active()) actor.endStreams()
        return { turnsInterrupted: interrupted }
      })
    )
    yield* Effect.addFinalizer(() => drain)

    const actors: ActorHosting = {
      input: tracing
        ? (workerId, request, inputId) =>
          Effect.withSpan(input(workerId, request, inputId), "Runtime.input", { attributes: { workerId } })
        : input,
      adopt: (workerId, reason) =>
        Effect.suspend(() =>
          host.peek(workerId) !== undefined
            ? Effect.void
            : withActor(workerId, (actor) =>
              Effect.zipRight(
                actor.run(decideInterrupt, { _tag: "Interrupt", reason }),
                Effect.suspend(() => actor.run(decideResume, { _tag: "Resume" }))
              ))
        ),
      release: (workerId, reason) =>
        Effect.suspend(() => {
          const actor = host.peek(workerId)
          if (actor === undefined) return Effect.void
          return actor.run(decideInterrupt, { _tag: "Interrupt", reason }).pipe(
            Effect.catchAll((error) => Effect.logError("could not record an interrupted turn", error)),
            Effect.zipRight(Effect.sync(() => {
              host.release(workerId)
              actor.endStreams()
            }))
          )
        })
    }

    return {
      actors,
      runtime: tracing ? traced(runtime) : runtime,
      control: {
        drain,
        turnsInFlight: Effect.sync(() => draining.inFlight().length),
        activeWorkers: Effect.sync(() => host.size()),
        // The same span as `Runtime.create`: the HTTP layer creates through here.
        create: tracing ? (request) => Effect.withSpan(create(request), "Runtime.create") : create,
        peek: tracing ? undefined : peek,
        follow: (workerId, query) => openFollow(store, follower(workerId, query))
      }
    }
  })

/** `Runtime` and `RuntimeControl` over the `RuntimeStore` in context (e.g. the SQLite store). */
export const RuntimeFromStore = (
  options: RuntimeOptions = {}
): Layer.Layer<Runtime | RuntimeControl, StoreError, RuntimeStore> =>
  Layer.scopedContext(
    Effect.map(
      makeRuntime(options),
      ({ control, runtime }) => Context.make(Runtime, runtime).pipe(Context.add(RuntimeControl, control))
    )
  )

/** A ready Runtime on a fresh memory store: what an embedding Backend provides. */
export const RuntimeLive = (options: RuntimeOptions = {}): Layer.Layer<Runtime | RuntimeControl> =>
  RuntimeFromStore(options).pipe(
    Layer.provide(MemoryStoreLive()),
    // The memory store cannot fail; this only narrows the type.
    Layer.orDie
  )

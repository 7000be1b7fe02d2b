/**
 * Finds or activates the actor of a Worker. Activation loads one Worker from
 * the store; concurrent calls for one Worker share one activation, so a
 * Worker has one actor at a time. An actor with no call, no turn, no queue
 * and no follower for `passivateAfterMs` is passivated: forgotten, its
 * memory returned (the store holds all of it). The local host is what
 * `RuntimeLive` uses; cluster mode hosts the same actor as an entity.
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { WorkerId } from "./Domain.js"
import { UnknownWorker } from "./Errors.js"
import type { StoreError } from "./RuntimeStore.js"
import { type ActorEnv, WorkerActor } from "./WorkerActor.js"
import type { WorkerEngine } from "./WorkerEngine.js"

export interface WorkerHost {
  /** Runs `f` with the Worker's actor, activating it if needed; `UnknownWorker` when it is not stored. */
  readonly use: <A, E, R>(
    workerId: WorkerId,
    f: (actor: WorkerActor) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | UnknownWorker | StoreError, R>
  /** The actor, if active. */
  readonly peek: (workerId: WorkerId) => WorkerActor | undefined
  /** A delete of this Worker is in progress: it is gone for callers already. */
  readonly deleting: (workerId: WorkerId) => boolean
  readonly active: () => IterableIterator<WorkerActor>
  /** Active actors. */
  readonly size: () => number
  /**
   * Forgets the Worker's actor now, as passivation does, and answers it (to
   * end its turn and streams): its entity moved to another runner.
   */
  readonly release: (workerId: WorkerId) => WorkerActor | undefined
}

export const unknownWorker = (workerId: WorkerId) =>
  new UnknownWorker({ workerId, message: `There is no Worker ${JSON.stringify(workerId)}.` })

export const makeWorkerHost = (
  env: Omit<ActorEnv, "forget" | "deleted">,
  engineOf: (profile: string) => WorkerEngine | undefined,
  passivateAfterMs: number
): Effect.Effect<WorkerHost, never, Scope.Scope> =>
  Effect.gen(function*() {
    const actors = new Map<string, WorkerActor>()
    const activating = new Map<string, Deferred.Deferred<WorkerActor, UnknownWorker | StoreError>>()
    const deletes = new Set<string>()
    const actorEnv: ActorEnv = {
      ...env,
      forget: (actor) => {
        const id = actor.worker.id
        if (actors.get(id) === actor) actors.delete(id)
        deletes.add(id)
      },
      deleted: (workerId) => deletes.delete(workerId)
    }

    const load = (workerId: WorkerId) =>
      Effect.gen(function*() {
        if (deletes.has(workerId)) return yield* unknownWorker(workerId)
        const stored = yield* env.store.getWorker(workerId)
        if (stored === undefined) return yield* unknownWorker(workerId)
        const { queue, worker } = stored
        // Only a turn that was running needs its record: repair closes it.
        const latest = worker.status === "busy" && worker.turn > 0
          ? yield* env.store.turn(workerId, worker.turn)
          : undefined
        const actor = new WorkerActor(actorEnv, { worker, queue, latest }, engineOf(worker.profile))
        actors.set(workerId, actor)
        return actor
      })

    const activate = (workerId: WorkerId): Effect.Effect<WorkerActor, UnknownWorker | StoreError> =>
      Effect.suspend(() => {
        const pending = activating.get(workerId)
        if (pending !== undefined) return Deferred.await(pending)
        const done = Deferred.unsafeMake<WorkerActor, UnknownWorker | StoreError>(FiberId.none)
        activating.set(workerId, done)
        // Uninterruptible: whoever waits for this activation gets an answer.
        return Effect.uninterruptible(
          load(workerId).pipe(
            Effect.exit,
            Effect.tap((exit) => {
              activating.delete(workerId)
              return Deferred.done(done, exit)
            }),
            Effect.flatten
          )
        )
      })

    const use = <A, E, R>(
      workerId: WorkerId,
      f: (actor: WorkerActor) => Effect.Effect<A, E, R>
    ): Effect.Effect<A, E | UnknownWorker | StoreError, R> =>
      Effect.suspend(() => {
        const actor = actors.get(workerId)
        return actor === undefined ? Effect.flatMap(activate(workerId), (actor) => enter(actor, f)) : enter(actor, f)
      })

    const enter = <A, E, R>(
      actor: WorkerActor,
      f: (actor: WorkerActor) => Effect.Effect<A, E, R>
    ): Effect.Effect<A, E | UnknownWorker | StoreError, R> =>
      Effect.suspend(() => {
        // Passivated between its activation and this call: activate it again.
        if (actor.passivated) return use(actor.worker.id, f)
        actor.users++
        actor.idleSince = undefined
        return Effect.ensuring(f(actor), Effect.sync(() => actor.users--))
      })

    // One sweep for all actors, none per actor: an actor first seen with
    // nothing to do is passivated once it has stayed so for passivateAfterMs.
    const sweep = Effect.map(Clock.currentTimeMillis, (now) => {
      for (const [id, actor] of actors) {
        if (!actor.quiescent()) {
          actor.idleSince = undefined
        } else if (actor.idleSince === undefined) {
          actor.idleSince = now
        } else if (now - actor.idleSince >= passivateAfterMs) {
          actor.passivated = true
          actors.delete(id)
        }
      }
    })
    const every = Math.max(10, Math.min(15_000, Math.floor(passivateAfterMs / 4)))
    // Real time: passivation returns memory, it is no part of a Worker's
    // semantics (and a test's clock must not see its sleeps).
    yield* Effect.forkScoped(Effect.repeat(sweep, Schedule.spaced(every)).pipe(Effect.withClock(Clock.make())))

    return {
      use,
      peek: (workerId) => actors.get(workerId),
      deleting: (workerId) => deletes.has(workerId),
      active: () => actors.values(),
      size: () => actors.size,
      release: (workerId) => {
        const actor = actors.get(workerId)
        if (actor === undefined) return undefined
        actor.passivated = true
        actors.delete(workerId)
        return actor
      }
    }
  })

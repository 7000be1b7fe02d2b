/** The control a Runtime gives the process that hosts it (not a Backend's concern). */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { CreateWorker, EventsQuery, Worker, WorkerId } from "./Domain.js"
import type { InvalidInput, Unavailable, UnknownWorker } from "./Errors.js"
import type { Follow } from "./Events.js"

/** What a create did: made `worker`, or (`created: false`) found it made by an earlier create with its key. */
export interface CreateResult {
  readonly worker: Worker
  readonly created: boolean
}

export interface RuntimeControlService {
  /**
   * Stops taking new work (`draining`), gives turns in flight the shutdown
   * grace period, then interrupts and records the rest. Idempotent; closing
   * the layer's scope does the same. Answers how many turns were still
   * running when the grace ended, and were interrupted.
   */
  readonly drain: Effect.Effect<{ readonly turnsInterrupted: number }>
  /** Turns in flight now (for the process's own logs; read from memory). */
  readonly turnsInFlight: Effect.Effect<number>
  /** Workers held in memory now (active: a turn, a queue, a follower, or recently used); the rest are only stored. */
  readonly activeWorkers: Effect.Effect<number>
  /** `Runtime.create`, saying whether it made the Worker (HTTP answers 201) or replayed a key (200). */
  readonly create: (request: CreateWorker) => Effect.Effect<CreateResult, InvalidInput | Unavailable>
  /**
   * What `Runtime.get` answers now, when it can answer without waiting: the
   * Worker of an active actor (held in memory). Undefined when it would read
   * the store, or does more than read (tracing on: its span). Lets the HTTP
   * server answer the hottest read without a fiber (src/http/FastLane.ts).
   */
  readonly peek?: ((workerId: WorkerId) => Worker | undefined) | undefined
  /**
   * `Runtime.events` as a pull rather than a Stream (src/Events.ts), the
   * follower registered in the scope: the events endpoint writes each chunk
   * as it comes, with no stream stages kept per idle follower.
   */
  readonly follow?:
    | ((
      workerId: WorkerId,
      query?: EventsQuery
    ) => Effect.Effect<Follow, UnknownWorker | InvalidInput | Unavailable, Scope.Scope>)
    | undefined
}

export class RuntimeControl extends Context.Tag("worker-runtime/RuntimeControl")<
  RuntimeControl,
  RuntimeControlService
>() {}

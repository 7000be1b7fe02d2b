/**
 * The `Runtime` service: what a Backend calls, embedded (`RuntimeLive`) or
 * remote (`RuntimeHttpClient` from `worker-runtime/http`). Each method's error
 * channel lists exactly the errors docs/rest.md allows for it.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"

import type {
  CancelRequest,
  CancelResult,
  CreateWorker,
  EventsQuery,
  InputAccepted,
  ListQuery,
  RuntimeInfo,
  StopRequest,
  TranscriptPage,
  TranscriptQuery,
  Turn,
  TurnQuery,
  Worker,
  WorkerEvent,
  WorkerId,
  WorkerInput,
  WorkerList
} from "./Domain.js"
import type { Busy, InvalidInput, Unavailable, UnknownWorker, Unsupported } from "./Errors.js"

/**
 * The Worker Runtime's operations (docs/rest.md). When several errors apply,
 * the first in docs/rest.md's order wins. Over `RuntimeHttpClient` every
 * method may also fail with `Unavailable` when the Runtime cannot be reached
 * or answers with something undeclared.
 */
export interface RuntimeService {
  /**
   * What this Runtime is and how it is doing: id, display name, version,
   * status (`running` or `draining`), store kind, configured profiles, Worker
   * counts by status (counted by the store) and limits.
   *
   * - `Unavailable`: the store could not be read; over HTTP, the Runtime cannot be reached.
   */
  readonly info: Effect.Effect<RuntimeInfo, Unavailable>
  /**
   * A page of Workers in id (= creation) order whose id sorts after
   * `query.after` (any string), optionally only those with `query.status`,
   * at most `query.limit` (default 100). `nextAfter` is the id of the page's
   * last Worker, `null` on the last page. Read from the store; works while
   * draining.
   *
   * - `InvalidInput`: a malformed query (unknown status, `limit` not an integer
   *   from 1 to the page ceiling `maxPage`, `after` not a string).
   * - `Unavailable`: the store could not be read.
   */
  readonly list: (query: ListQuery) => Effect.Effect<WorkerList, InvalidInput | Unavailable>
  /**
   * The Worker as it is now: its actor's state when it is active, else the
   * store's (a read that activates nothing). Works while draining.
   *
   * - `UnknownWorker`: no Worker with this id in this Runtime.
   * - `Unavailable`: the store could not be read; over HTTP, the Runtime cannot be reached.
   */
  readonly get: (workerId: WorkerId) => Effect.Effect<Worker, UnknownWorker | Unavailable>
  /**
   * Creates an `idle` Worker of `request.profile` (default `"default"`) with
   * `request.metadata`, committed to the store before it answers. The profile
   * (configured by the operator) chooses the engine; a caller cannot pass a
   * command or environment.
   *
   * - `InvalidInput`: a malformed request (an unknown field, metadata over its
   *   limits) or a profile that is not configured.
   * - `Unavailable`: the Runtime is draining, `maxWorkers` Workers that are not
   *   stopped already exist, or the store failed; nothing was created.
   */
  readonly create: (request: CreateWorker) => Effect.Effect<Worker, InvalidInput | Unavailable>
  /**
   * Records the input as a `user` or `system` entry (default `user`), marks
   * the Worker `busy`, starts a turn and answers at once with the busy Worker
   * and the recorded entry. The turn runs on its own: it appends `worker`
   * entries, then the Worker is `idle` again (`failed` if the engine says it
   * cannot continue). Of concurrent inputs to an idle Worker exactly one is
   * accepted.
   *
   * `ifBusy` says what happens on a busy Worker: `reject` (default): `Busy`;
   * `enqueue`: the input is stored and waits (`queued: true`, `position`),
   * and becomes a turn, recorded then, right after the turns before it end;
   * `interrupt`: the turn in flight is cancelled ("interrupted by new input")
   * and this one starts, with nothing able to slip in between.
   *
   * - `UnknownWorker`: no Worker with this id.
   * - `Busy`: a turn is in flight (`reject`), or the queue is full
   *   (`enqueue`); nothing was recorded.
   * - `Unsupported`: the Worker is stopped or failed, its profile is no longer
   *   configured, or its engine does not take this input kind.
   * - `Unavailable`: the Runtime is draining or the store failed; nothing was
   *   recorded.
   * - `InvalidInput`: a malformed input (empty `content`, an unknown field or
   *   `kind`) or `content` over `maxInputBytes` UTF-8 bytes.
   */
  readonly input: (
    workerId: WorkerId,
    input: WorkerInput
  ) => Effect.Effect<InputAccepted, UnknownWorker | Busy | InvalidInput | Unsupported | Unavailable>
  /**
   * Interrupts the turn in flight and records a `runtime` entry (`cancelled`,
   * or `cancelled: <reason>`); the Worker is `idle` again. Answers
   * `{ worker, cancelled: true }` once the turn has ended, or
   * `{ worker, cancelled: false }` with nothing recorded when no turn was in
   * flight. Works while draining. A malformed `request` only loses its reason.
   *
   * - `UnknownWorker`: no Worker with this id.
   * - `Unsupported`: the Worker is stopped or failed, or its engine cannot
   *   cancel a turn (stop still can).
   * - `Unavailable`: the store failed; nothing was recorded and any turn goes on.
   */
  readonly cancel: (
    workerId: WorkerId,
    request?: CancelRequest
  ) => Effect.Effect<CancelResult, UnknownWorker | Unsupported | Unavailable>
  /**
   * Stops the Worker for good: interrupts any turn, records one `runtime`
   * entry (`stopped`, or `stopped: <reason>`) and answers the Worker with
   * status `stopped` and `stopReason` (the reason, else `"stopped"`) once the
   * turn has ended. A failed Worker can be stopped; a stopped one is returned
   * unchanged, with nothing recorded. Works while draining. A malformed
   * `request` only loses its reason.
   *
   * - `UnknownWorker`: no Worker with this id.
   * - `Unavailable`: the store failed; nothing was recorded and any turn goes on.
   */
  readonly stop: (workerId: WorkerId, request?: StopRequest) => Effect.Effect<Worker, UnknownWorker | Unavailable>
  /**
   * The Worker's entries with `seq > query.after` (default 0), in order, at
   * most `query.limit` (default 100). `nextAfter` is the page's last seq when
   * more follow, else `null`; `lastSeq` is the Worker's last seq. Seqs start
   * at 1 and are contiguous per Worker. Read from the store; works while
   * draining.
   *
   * - `UnknownWorker`: no Worker with this id.
   * - `InvalidInput`: a malformed query (`after` not an integer >= 0, `limit`
   *   not an integer from 1 to the page ceiling `maxPage`).
   * - `Unavailable`: the store could not be read.
   */
  readonly transcript: (
    workerId: WorkerId,
    query: TranscriptQuery
  ) => Effect.Effect<TranscriptPage, UnknownWorker | InvalidInput | Unavailable>

  /**
   * The record of one turn: its status (`running` or its outcome), the seq of
   * its input and of its last entry so far, when it started and ended, and
   * why it ended as it did. With `waitMs` (0 to 60,000) it waits until the
   * turn has ended or the time is up, then answers with the turn as it is.
   * O(log n) in the transcript's size.
   *
   * - `UnknownWorker`: no such Worker.
   * - `InvalidInput`: `turn` is not a turn of this Worker (0, or greater than
   *   its `turn`), or `waitMs` is out of range.
   */
  readonly turn: (
    workerId: WorkerId,
    turn: number,
    query?: TurnQuery
  ) => Effect.Effect<Turn, UnknownWorker | InvalidInput | Unavailable>

  /**
   * Follows a Worker: first the Worker as it is now (`worker`), then every
   * entry with `seq > after` (default 0) in order, then live: each new entry
   * once and the Worker after each change of its status or queue. No gap, no
   * duplicate. Ends once the Worker is stopped or failed and every entry has
   * been emitted, or when it is deleted. A consumer that falls behind catches
   * up from the store; it never slows the turn or other consumers.
   *
   * - `UnknownWorker`: no such Worker (when the stream starts).
   * - `InvalidInput`: `after` is not a non-negative integer.
   * - `Unavailable`: the store failed while catching up; over HTTP, the
   *   reconnect budget is spent.
   */
  readonly events: (
    workerId: WorkerId,
    query?: EventsQuery
  ) => Stream.Stream<WorkerEvent, UnknownWorker | InvalidInput | Unavailable>

  /**
   * Removes a stopped or failed Worker for good, with its transcript, turns
   * and idempotency key; afterwards it is `UnknownWorker`. Open event streams
   * of it end.
   *
   * - `UnknownWorker`: no such Worker.
   * - `Unsupported`: it is `idle` or `busy` (stop it first).
   * - `Unavailable`: the store failed.
   */
  readonly delete: (workerId: WorkerId) => Effect.Effect<void, UnknownWorker | Unsupported | Unavailable>
}

/** The tag Backend code depends on; provide `RuntimeLive`, `RuntimeFromStore` or `RuntimeHttpClientLive`. */
export class Runtime extends Context.Tag("worker-runtime/Runtime")<Runtime, RuntimeService>() {}

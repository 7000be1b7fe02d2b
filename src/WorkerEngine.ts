/**
 * What a turn does. An engine is chosen per profile by the operator, never by
 * an API caller. `RuntimeLive` owns the Worker's state; an engine only runs the
 * turn it is handed and reports output through `emit` or its result.
 */
import type * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

import type { InputKind, TranscriptEntry } from "./Domain.js"

/**
 * A turn that could not complete. `message` says why, for the transcript and
 * the log; `detail` (e.g. what a child printed on stderr) may echo input
 * content, so it goes to the transcript only, never to the log. `fatal` marks
 * the Worker `failed` instead of `idle`.
 */
export class TurnFailed extends Schema.TaggedError<TurnFailed>()("TurnFailed", {
  message: Schema.String,
  detail: Schema.optional(Schema.String),
  fatal: Schema.optional(Schema.Boolean)
}) {}

/** What the transcript records of a failed turn: why, then the detail. */
export const failureReason = (failure: TurnFailed): string =>
  failure.detail === undefined ? failure.message : `${failure.message}; ${failure.detail}`

export interface TurnContext {
  readonly runtimeId: string
  readonly workerId: string
  readonly profile: string
  readonly turn: number
  readonly input: { readonly content: string; readonly kind: InputKind }
  /**
   * Queues one `worker` entry. Entries are committed in order, in batches
   * (the lines queued when a commit starts go in one commit); the turn's end
   * commits whatever is still queued. It waits only when many are queued, and
   * interrupts the turn once the turn is no longer current (cancelled, stopped).
   */
  readonly emit: (content: string) => Effect.Effect<void, TurnFailed>
  /** Every entry of the Worker's transcript so far, the new input included. */
  readonly transcript: Effect.Effect<ReadonlyArray<TranscriptEntry>, TurnFailed>
}

export interface WorkerEngine {
  /** A short name for `RuntimeInfo` and logs, e.g. `echo`. */
  readonly name: string
  /** Input kinds this engine accepts; both when absent. */
  readonly kinds?: ReadonlyArray<InputKind>
  /** False when a turn cannot be cancelled (it can still be stopped). */
  readonly cancellable?: boolean
  /**
   * Runs one turn. It must be interruptible: cancel, stop and shutdown
   * interrupt it and expect every resource (child processes included) to be
   * released when the interruption completes. Lines it returns are recorded as
   * `worker` entries together with the end of the turn, in one commit.
   */
  readonly run: (context: TurnContext) => Effect.Effect<ReadonlyArray<string> | void, TurnFailed>
}

/** Engines keyed by profile name. */
export type Profiles = Readonly<Record<string, WorkerEngine>>

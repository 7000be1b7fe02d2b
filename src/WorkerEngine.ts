/**
 * What a turn does. An engine is chosen per profile by the operator, never by
 * an API caller. `RuntimeLive` owns the Worker's state; an engine only runs the
 * turn it is handed, as a stream of its output.
 */
import * as Chunk from "effect/Chunk"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"

import type { InputKind, TokenUsage, TranscriptEntry } from "./Domain.js"

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
  /** Every entry of the Worker's transcript so far, the new input included. */
  readonly transcript: Effect.Effect<ReadonlyArray<TranscriptEntry>, TurnFailed>
}

/**
 * What a turn's stream yields: a `Line` is one `worker` entry of the
 * transcript; a `Delta` is a piece of model text as it arrives: followers get
 * it at once as a `delta` event, and the turn's deltas since its last line
 * become one `worker` entry when a line comes or the turn ends, however it
 * ends (text so far is kept on cancel, stop or failure); `Usage` is the
 * tokens the turn used so far, recorded on its `Turn` (the last one counts).
 */
export type TurnOutput = Data.TaggedEnum<{
  readonly Line: { readonly content: string }
  readonly Delta: { readonly text: string }
  readonly Usage: { readonly usage: TokenUsage }
}>

const { $is, $match } = Data.taggedEnum<TurnOutput>()

/** `TurnOutput.line("…")`, `TurnOutput.delta("…")`, and `$is` / `$match` to tell them apart. */
export const TurnOutput = {
  /** One `worker` entry. */
  line: (content: string): TurnOutput => ({ _tag: "Line", content }),
  /** A piece of model text: live to followers, recorded with the rest of the text. */
  delta: (text: string): TurnOutput => ({ _tag: "Delta", text }),
  /** The turn's token usage. */
  usage: (usage: TokenUsage): TurnOutput => ({ _tag: "Usage", usage }),
  $is,
  $match
}

export interface WorkerEngine {
  /** A short name for `RuntimeInfo` and logs, e.g. `echo`. */
  readonly name: string
  /** Input kinds this engine accepts; both when absent. */
  readonly kinds?: ReadonlyArray<InputKind>
  /** False when a turn cannot be cancelled (it can still be stopped). */
  readonly cancellable?: boolean
  /**
   * Runs one turn: a stream of its output, which the runtime runs once. The
   * turn ends when the stream does: completed when it ends, failed when it
   * fails with a `TurnFailed` (or dies).
   *
   * Each `Line` becomes a `worker` entry. Lines are committed in order, in
   * batches (the lines taken when a commit starts go in one commit), so they
   * are visible while the turn runs; the turn's end commits whatever is left
   * in the same commit as its `runtime` entry. Backpressure: the stream is
   * pulled only as fast as its lines are taken, which pauses while many wait
   * for a commit. A turn that is no longer current (cancelled, stopped) is
   * interrupted at its next line.
   *
   * The stream must be interruptible: cancel, stop and shutdown interrupt it
   * and expect every resource (child processes included) to be released when
   * the interruption completes. Acquire them in the stream's scope (e.g.
   * `Stream.unwrapScoped`, `Stream.acquireRelease`) so that they are released
   * however it ends.
   */
  readonly run: (context: TurnContext) => Stream.Stream<TurnOutput, TurnFailed>
}

/** Engines keyed by profile name. */
export type Profiles = Readonly<Record<string, WorkerEngine>>

/**
 * Runs a turn's stream in the calling fiber (the turn's), handing each chunk
 * to `f` before the next is pulled. Not `Stream.runForEachChunk`: `Stream.run*`
 * runs the stream in a child fiber that its caller interrupts only once. An
 * interrupt that arrives while a finalizer runs can be lost (Effect 3: a
 * later-registered `Effect.addFinalizer` restores the fiber's FiberRefs), and
 * a stream that then goes on (e.g. waits) could never be interrupted again;
 * here every interrupt sent to the turn's fiber reaches the stream.
 */
export const forEachChunkInFiber = <A, E, R, E2, R2>(
  stream: Stream.Stream<A, E, R>,
  f: (chunk: Chunk.Chunk<A>) => Effect.Effect<void, E2, R2>
): Effect.Effect<void, E | E2, R | R2> =>
  Effect.scoped(Effect.flatMap(Stream.toPull(stream), (pull) => {
    const loop: Effect.Effect<void, E | E2, R | R2> = Effect.matchEffect(pull, {
      // None: the stream has ended.
      onFailure: Option.match({ onNone: () => Effect.void, onSome: Effect.fail }),
      onSuccess: (chunk) => Effect.zipRight(f(chunk), Effect.suspend(() => loop))
    })
    return loop
  }))

/** The output effect of each stream `outputAtOnce` made. */
const outputsAtOnce = new WeakMap<
  Stream.Stream<TurnOutput, TurnFailed>,
  Effect.Effect<ReadonlyArray<TurnOutput>, TurnFailed>
>()

/**
 * A turn whose whole output one effect gives (e.g. the echo engine's): the
 * stream of that output, which the runtime runs as the effect alone, its
 * output one chunk. Pulling a stream costs more than a short turn itself
 * (docs/benchmarks.md); the effect is interrupted as the stream would be.
 */
export const outputAtOnce = (
  output: Effect.Effect<ReadonlyArray<TurnOutput>, TurnFailed>
): Stream.Stream<TurnOutput, TurnFailed> => {
  const stream = Stream.flatMap(Stream.fromEffect(output), Stream.fromIterable)
  outputsAtOnce.set(stream, output)
  return stream
}

/** The output of each stream `outputNow` made. */
const outputsNow = new WeakMap<Stream.Stream<TurnOutput, TurnFailed>, ReadonlyArray<TurnOutput>>()

/**
 * A turn whose whole output is known when it starts (e.g. the echo engine's
 * without a delay): the stream of that output, which the runtime records as
 * the turn's end right after its start, in the same hold of the Worker's
 * lock, with no fiber for it (docs/benchmarks.md).
 */
export const outputNow = (outputs: ReadonlyArray<TurnOutput>): Stream.Stream<TurnOutput, TurnFailed> => {
  const stream = Stream.fromIterable(outputs)
  outputsNow.set(stream, outputs)
  return stream
}

/** The output of a stream `outputNow` made; undefined for any other. */
export const readyOutput = (stream: Stream.Stream<TurnOutput, TurnFailed>): ReadonlyArray<TurnOutput> | undefined =>
  outputsNow.get(stream)

/** `forEachChunkInFiber` for a turn's stream; one made by `outputAtOnce` is run as its effect. */
export const forEachTurnChunk = <E2, R2>(
  stream: Stream.Stream<TurnOutput, TurnFailed>,
  f: (chunk: Chunk.Chunk<TurnOutput>) => Effect.Effect<void, E2, R2>
): Effect.Effect<void, TurnFailed | E2, R2> => {
  const output = outputsAtOnce.get(stream)
  if (output === undefined) return forEachChunkInFiber(stream, f)
  return Effect.flatMap(output, (outputs) => outputs.length === 0 ? Effect.void : f(Chunk.fromIterable(outputs)))
}

/**
 * A child's stdout as the lines a turn records: UTF-8 decoded across chunk
 * boundaries (`Stream.decodeText`), split at `\n` and `\r\n`
 * (`Stream.splitLines`, linear in the output size), empty lines dropped, a
 * last line without newline kept, within the profile's output limits.
 */
import * as Chunk from "effect/Chunk"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"

import { TurnFailed } from "../WorkerEngine.js"

/**
 * The longest ingest of a turn's output runs before it lets the event loop
 * serve I/O. Effect's scheduler runs ready fibers for thousands of rounds
 * between two timer turns, so a child printing a million lines a second
 * would otherwise hold requests of every other Worker for hundreds of
 * milliseconds at a time.
 */
const INGEST_SLICE_MS = 0.5
/** Lines handed on between two looks at the clock. */
const LINES_PER_CHECK = 64
/**
 * Ends the partial line at a cut, so that it is told from a complete one: a
 * lone surrogate, which text decoded from bytes never holds.
 */
const CUT = "\uDFFF"

/** The end of the bytes at `maxBytes`, before it becomes a failure (once the lines within it are out). */
class OutputCut extends Data.TaggedError("OutputCut") {}

export interface OutputLimits {
  readonly maxBytes: number
  readonly maxEntries: number
}

/** Resumes after the event loop has polled for I/O once (`setImmediate` runs after the poll phase). */
const yieldToIo: Effect.Effect<void> = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

/**
 * The lines of `stdout` as they arrive, the unterminated rest at the end. Past
 * `maxBytes` it yields the lines complete within the limit and fails, the
 * partial line at the cut not yielded; past `maxEntries` it yields that many
 * and fails. It stops pulling `stdout` when it fails.
 */
export const stdoutLines = (
  stdout: Stream.Stream<Uint8Array, TurnFailed>,
  limits: OutputLimits
): Stream.Stream<string, TurnFailed> =>
  Stream.suspend(() => {
    const tooMany = new TurnFailed({
      message: `output exceeded maxOutputEntries (${limits.maxEntries} entries); the process was stopped`
    })
    const tooLarge = new TurnFailed({
      message: `output exceeded maxOutputBytes (${limits.maxBytes} bytes); the process was stopped`
    })
    let seen = 0
    let taken = 0
    let sliceStart = performance.now()
    /** Yields to I/O once this slice of ingest has run long enough. */
    const pace = Effect.suspend(() => {
      if (performance.now() - sliceStart < INGEST_SLICE_MS) return Effect.void
      return Effect.zipRight(yieldToIo, Effect.sync(() => (sliceStart = performance.now())))
    })
    return stdout.pipe(
      Stream.flatMap((bytes) => {
        const room = limits.maxBytes - seen
        seen += bytes.length
        return bytes.length <= room
          ? Stream.fromEffect(Effect.as(pace, bytes))
          : Stream.concat(Stream.succeed(bytes.subarray(0, room)), Stream.fail(new OutputCut()))
      }),
      Stream.decodeText(),
      // `splitLines` yields what it holds when its input ends: mark it as the partial line.
      Stream.catchTag("OutputCut", () => Stream.concat(Stream.succeed(CUT), Stream.fail(tooLarge))),
      Stream.splitLines,
      Stream.filter((line) => line !== "" && !line.endsWith(CUT)),
      Stream.chunks,
      Stream.flatMap((lines) => {
        const room = limits.maxEntries - taken
        const within = lines.length <= room ? lines : Chunk.take(lines, room)
        taken += within.length
        const paced = Stream.mapChunksEffect(
          Stream.fromChunks(...Chunk.chunksOf(within, LINES_PER_CHECK)),
          (group) => Effect.as(pace, group)
        )
        return lines.length <= room ? paced : Stream.concat(paced, Stream.fail(tooMany))
      })
    )
  })

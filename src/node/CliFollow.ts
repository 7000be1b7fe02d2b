/**
 * Following over the events stream for the `send --follow` and `follow`
 * subcommands: entries printed as they come, a model's text as its deltas
 * come, and the exit code of how the followed turn or Worker ended
 * (docs/cli.md). Ending a follow (Ctrl-C) only closes the stream: the turn
 * goes on.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"

import type { InputAccepted, TranscriptEntry, TurnOutcome, WorkerId } from "../Domain.js"
import { Runtime } from "../Runtime.js"
import { entryLine, isStyled, jsonLine, makeSpinner, printLine } from "./CliOutput.js"

/** 0 for a turn that completed, 1 for one that failed, 130 for one ended by someone (cancel, stop, restart). */
export const exitCodeOf = (outcome: TurnOutcome | undefined): number =>
  outcome === "completed" ? 0 : outcome === "failed" ? 1 : 130

/**
 * Prints entries and deltas. In text, a turn's deltas make one line as they
 * come (`worker: ` first); the `worker` entry that records their text ends
 * that line instead of printing it again, unless the deltas shown were not
 * all of it (a follow that began mid-reply): then the entry is printed whole.
 * With `--json`, one line per event: entries as themselves, deltas as
 * `{"type":"delta","turn":n,"text":"…"}`.
 */
const makePrinter = (json: boolean) => {
  const styled = isStyled(process.stdout)
  // The text of the delta line being printed, if one is open.
  let open: string | undefined
  const closeLine = Effect.suspend(() => {
    if (open === undefined) return Effect.void
    open = undefined
    return write("\n")
  })
  return {
    /** Whether a delta line is open (a spinner must not draw over it). */
    get inLine() {
      return open !== undefined
    },
    delta: (delta: { readonly turn: number; readonly text: string }) =>
      Effect.suspend(() => {
        if (json) return printLine(jsonLine({ type: "delta", turn: delta.turn, text: delta.text }))
        const start = open === undefined ? entryLine({ role: "worker", content: "" }, styled) : ""
        open = (open ?? "") + delta.text
        return write(start + delta.text)
      }),
    entry: (entry: TranscriptEntry) =>
      Effect.suspend(() => {
        if (json) return printLine(jsonLine(entry))
        const shown = open
        if (shown !== undefined && entry.role === "worker" && entry.content === shown) return closeLine
        return Effect.zipRight(closeLine, printLine(entryLine(entry, styled)))
      }),
    closeLine
  }
}

/** Text as it is, no newline: a delta. */
const write = (text: string) => Effect.sync(() => void process.stdout.write(text))

/** Every entry after `after` (and every delta), live, until the Worker stops (or is deleted): exit code 0. */
export const followWorker = (workerId: WorkerId, after: number, json: boolean) =>
  Effect.gen(function*() {
    const runtime = yield* Runtime
    const printer = makePrinter(json)
    yield* runtime.events(workerId, { after }).pipe(
      Stream.runForEach((event) =>
        event.type === "entry"
          ? printer.entry(event.entry)
          : event.type === "delta"
          ? printer.delta(event)
          : Effect.void
      ),
      Effect.ensuring(printer.closeLine)
    )
    return 0
  })

/**
 * The output of the turn `accepted` started (or will start, once its queued
 * input's turn comes), without the input itself, until the turn's `runtime`
 * entry: its exit code. A queued input that a cancel drops, or a Worker that
 * stops first, ends it as the turn would have been: 130.
 */
export const followTurn = (workerId: WorkerId, accepted: InputAccepted, json: boolean) =>
  Effect.gen(function*() {
    const runtime = yield* Runtime
    const { worker } = accepted
    // Queued: its turn comes `position` turns after the one in flight, and records the input first.
    const turn = accepted.queued ? worker.turn + (accepted.position ?? 1) : worker.turn
    const after = accepted.entry?.seq ?? worker.lastSeq
    let inputSkipped = !accepted.queued
    let outcome: TurnOutcome | undefined
    const spinner = makeSpinner()
    const printer = makePrinter(json)
    // No spinner over a line of deltas: it would draw on that line.
    const spin = Effect.repeat(
      Effect.suspend(() => (printer.inLine ? Effect.void : spinner.tick)),
      Schedule.spaced("100 millis")
    )
    const events = runtime.events(workerId, { after }).pipe(
      // Each event says whether to go on.
      Stream.runForEachWhile((event) =>
        Effect.gen(function*() {
          if (event.type === "worker") {
            // The queue was cleared, or the Worker ended, before the turn started.
            const w = event.worker
            if (w.turn < turn && w.queued === 0 && w.status !== "busy") {
              yield* spinner.clear
              yield* Console.error(`worker-runtime: the input was dropped (Worker ${w.status}) before its turn started`)
              return false
            }
            return true
          }
          if (event.type === "delta") {
            if (event.turn === turn) {
              yield* spinner.clear
              yield* printer.delta(event)
            }
            return true
          }
          const entry = event.entry
          if (entry.turn !== turn) return true
          if (!inputSkipped && (entry.role === "user" || entry.role === "system")) {
            inputSkipped = true
            return true
          }
          const last = entry.role === "runtime" && entry.outcome !== undefined
          if (last) outcome = entry.outcome
          // In text, a turn that completed just ends; how any other ended is worth a line.
          if (!(last && entry.outcome === "completed" && !json)) {
            yield* spinner.clear
            yield* printer.entry(entry)
          }
          return !last
        })
      )
    )
    yield* Effect.raceFirst(events, Effect.zipRight(spin, Effect.never)).pipe(
      Effect.ensuring(Effect.zipRight(spinner.clear, printer.closeLine))
    )
    return exitCodeOf(outcome)
  })

/**
 * Following over the events stream for the `send --follow` and `follow`
 * subcommands: entries printed as they come, and the exit code of how the
 * followed turn or Worker ended (docs/cli.md). Ending a follow (Ctrl-C) only
 * closes the stream: the turn goes on.
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

const print = (entry: TranscriptEntry, json: boolean) =>
  printLine(json ? jsonLine(entry) : entryLine(entry, isStyled(process.stdout)))

/** Every entry after `after`, live, until the Worker stops (or is deleted): exit code 0. */
export const followWorker = (workerId: WorkerId, after: number, json: boolean) =>
  Effect.gen(function*() {
    const runtime = yield* Runtime
    yield* runtime.events(workerId, { after }).pipe(
      Stream.runForEach((event) => (event.type === "entry" ? print(event.entry, json) : Effect.void))
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
    const spin = Effect.repeat(spinner.tick, Schedule.spaced("100 millis"))
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
          // Printed whole, as its entry, when the turn ends.
          if (event.type === "delta") return true
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
            yield* print(entry, json)
          }
          return !last
        })
      )
    )
    yield* Effect.raceFirst(events, Effect.zipRight(spin, Effect.never)).pipe(Effect.ensuring(spinner.clear))
    return exitCodeOf(outcome)
  })

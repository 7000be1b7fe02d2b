/**
 * What the `worker-runtime` subcommands print: entries as `role: content`,
 * tables, JSON lines; colours only on a terminal (and without NO_COLOR),
 * never ANSI or `\r` in piped output (docs/cli.md).
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"

import type { RuntimeInfo, TranscriptEntry, Worker } from "../Domain.js"

/** Whether `stream` gets colours and cursor moves: a terminal, and NO_COLOR unset. */
export const isStyled = (stream: NodeJS.WriteStream): boolean => stream.isTTY === true && !process.env["NO_COLOR"]

const ROLE_COLOURS: Readonly<Record<TranscriptEntry["role"], number>> = {
  user: 36, // cyan
  system: 35, // magenta
  worker: 32, // green
  runtime: 33 // yellow
}

/** `role: content`, the role coloured by itself when `styled`. */
export const entryLine = (entry: Pick<TranscriptEntry, "role" | "content">, styled: boolean): string =>
  styled
    ? `\u001b[${ROLE_COLOURS[entry.role]}m${entry.role}\u001b[39m: ${entry.content}`
    : `${entry.role}: ${entry.content}`

/** One line of JSON: what `--json` prints per object. */
export const jsonLine = (value: unknown): string => JSON.stringify(value)

/** `k=v,k=v` in key order: the store keeps no order of its own. */
const metadataText = (metadata: Worker["metadata"]): string =>
  Object.keys(metadata).sort().map((key) => `${key}=${metadata[key]}`).join(",")

/** The Workers as a table with a header, columns padded to their widest cell. */
export const workersTable = (workers: ReadonlyArray<Worker>): string => {
  const rows = [
    ["ID", "PROFILE", "STATUS", "TURN", "QUEUED", "UPDATED", "METADATA"],
    ...workers.map((worker) => [
      worker.id,
      worker.profile,
      worker.status,
      String(worker.turn),
      String(worker.queued),
      worker.updatedAt,
      metadataText(worker.metadata)
    ])
  ]
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join("  ").trimEnd()).join("\n")
}

/** What `info` prints: one `name: value` a line. */
export const infoText = (info: RuntimeInfo): string =>
  [
    `id: ${info.runtimeId}`,
    ...(info.displayName === null ? [] : [`name: ${info.displayName}`]),
    `version: ${info.version}`,
    `status: ${info.status}`,
    `store: ${info.store}`,
    `started: ${info.startedAt}`,
    `profiles: ${info.profiles.join(", ")}`,
    `workers: ${info.workers.total} (idle ${info.workers.idle}, busy ${info.workers.busy}, ` +
    `stopped ${info.workers.stopped}, failed ${info.workers.failed})`,
    ...(info.cluster === null ? [] : [
      `cluster: runner ${info.cluster.runner} of ${info.cluster.runners}, ` +
      `${info.cluster.shards} of ${info.cluster.totalShards} shards`
    ])
  ].join("\n")

const FRAMES = ["|", "/", "-", "\\"]

/**
 * A spinner on stderr while a followed turn runs, only when stderr is a
 * terminal: `clear` wipes it before a line goes to stdout (the same terminal).
 */
export interface Spinner {
  readonly tick: Effect.Effect<void>
  readonly clear: Effect.Effect<void>
}

export const makeSpinner = (): Spinner => {
  const on = isStyled(process.stderr)
  let frame = 0
  let shown = false
  return {
    tick: Effect.sync(() => {
      if (!on) return
      process.stderr.write(`\r${FRAMES[frame++ % FRAMES.length]} `)
      shown = true
    }),
    clear: Effect.sync(() => {
      if (!on || !shown) return
      process.stderr.write("\r\u001b[K")
      shown = false
    })
  }
}

/** A line to stdout. */
export const printLine = (line: string) => Console.log(line)

// SSE followers of delta streams in a child process of their own
// (bench/model-clients.ts), for the model benchmarks' fan-out: they count
// the delta text each stream gets until it sees its reply end. Also the IPC
// both sides use.
import { Schema } from "effect"
import { join } from "node:path"
import { Opened } from "./clients.js"
import { ask } from "./clients.js"
import { benchBuild, spawnNode, stopChild } from "./lib.js"

export const ModelClientCommand = Schema.Union(
  Schema.Struct({ type: Schema.Literal("open"), url: Schema.String, count: Schema.Int, concurrency: Schema.Int }),
  Schema.Struct({ type: Schema.Literal("await"), timeoutMs: Schema.Number }),
  Schema.Struct({ type: Schema.Literal("close") })
)
export type ModelClientCommand = typeof ModelClientCommand.Type

export const Relayed = Schema.Struct({
  type: Schema.Literal("relayed"),
  streams: Schema.Int,
  /** Streams that saw the reply end (the turn's `runtime` entry, or the proxy's `end`). */
  ended: Schema.Int,
  /** Delta text (UTF-16 code units) all streams got, and the least one stream got. */
  chars: Schema.Number,
  minChars: Schema.Number,
  /** The latest arrival of a delta on any stream: monotonic ns, as a decimal string. */
  lastAt: Schema.String
})
export type Relayed = typeof Relayed.Type

export const ModelClosed = Schema.Struct({ type: Schema.Literal("closed") })

export interface ModelClients {
  readonly pid: number
  readonly open: (url: string, count: number, concurrency?: number) => Promise<Opened>
  /** Waits until every stream has seen its reply end (or `timeoutMs`); what they got since the last call. */
  readonly relayed: (timeoutMs: number) => Promise<Relayed>
  readonly close: () => Promise<void>
  readonly stop: () => Promise<void>
}

export const startModelClients = (openFiles?: number): Promise<ModelClients> =>
  new Promise((resolve, reject) => {
    const child = spawnNode(
      join(benchBuild, "model-clients.js"),
      [],
      {},
      openFiles === undefined ? { ipc: true } : { ipc: true, openFiles }
    )
    let output = ""
    child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()))
    const onExit = (code: number | null) => reject(new Error(`model-clients exited with ${code}:\n${output}`))
    child.once("exit", onExit)
    child.once("message", () => {
      child.off("exit", onExit)
      resolve({
        pid: child.pid ?? 0,
        open: (url, count, concurrency = 100) =>
          ask(child, { type: "open", url, count, concurrency } satisfies ModelClientCommand, Opened),
        relayed: (timeoutMs) => ask(child, { type: "await", timeoutMs } satisfies ModelClientCommand, Relayed),
        close: () => ask(child, { type: "close" } satisfies ModelClientCommand, ModelClosed).then(() => undefined),
        stop: () => stopChild(child)
      })
    })
  })

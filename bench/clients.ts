// SSE consumers in a child process of their own (bench/sse-clients.ts), so
// that the server under test, the consumers and the bench itself are three
// processes, and the consumers' open-file limit can be raised on their own.
// Also the IPC both use: a request, and the child's one answer to it.
import { Schema } from "effect"
import type { ChildProcess } from "node:child_process"
import { join } from "node:path"
import { benchBuild, spawnNode, stopChild } from "./lib.js"

export const ClientCommand = Schema.Union(
  Schema.Struct({ type: Schema.Literal("open"), url: Schema.String, count: Schema.Int, concurrency: Schema.Int }),
  Schema.Struct({ type: Schema.Literal("await"), entries: Schema.Int, timeoutMs: Schema.Number }),
  Schema.Struct({ type: Schema.Literal("close") })
)
export type ClientCommand = typeof ClientCommand.Type

export const Opened = Schema.Struct({
  type: Schema.Literal("opened"),
  opened: Schema.Int,
  failed: Schema.Int,
  error: Schema.optional(Schema.String)
})
export type Opened = typeof Opened.Type

export const Received = Schema.Struct({
  type: Schema.Literal("received"),
  /** Open streams. */
  streams: Schema.Int,
  /** Streams that got every entry asked for. */
  complete: Schema.Int,
  /** Every stream's receipt of every entry: arrival minus the engine's timestamp (ms). */
  latencies: Schema.Array(Schema.Number),
  /** Per entry that every stream got: when the last stream had it (ms after its timestamp). */
  untilAll: Schema.Array(Schema.Number)
})
export type Received = typeof Received.Type

export const Closed = Schema.Struct({ type: Schema.Literal("closed") })
export type Closed = typeof Closed.Type

/** A server child's memory, after `gc()` (it runs with `--expose-gc`). */
export const Memory = Schema.Struct({ type: Schema.Literal("memory"), heapUsed: Schema.Number, rss: Schema.Number })
export type Memory = typeof Memory.Type

/** Sends `message` and resolves with the child's next message, decoded as `schema`. */
export const ask = <A, I>(child: ChildProcess, message: unknown, schema: Schema.Schema<A, I>): Promise<A> =>
  new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`child exited (${code}) before answering`))
    child.once("exit", onExit)
    child.once("message", (answer: unknown) => {
      child.off("exit", onExit)
      try {
        resolve(Schema.decodeUnknownSync(schema)(answer))
      } catch (error) {
        reject(error)
      }
    })
    child.send(message as object)
  })

export interface Clients {
  /** Opens `count` streams on `url`, `concurrency` at a time (each waits for its first frame). */
  readonly open: (url: string, count: number, concurrency?: number) => Promise<Opened>
  /** Waits until every stream got `entries` `worker` entries since the last call, or `timeoutMs`. */
  readonly received: (entries: number, timeoutMs: number) => Promise<Received>
  readonly close: () => Promise<void>
  readonly stop: () => Promise<void>
}

export const startClients = (openFiles?: number): Promise<Clients> =>
  new Promise((resolve, reject) => {
    const child = spawnNode(
      join(benchBuild, "sse-clients.js"),
      [],
      {},
      openFiles === undefined ? { ipc: true } : { ipc: true, openFiles }
    )
    let output = ""
    child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()))
    const onExit = (code: number | null) => reject(new Error(`sse-clients exited with ${code}:\n${output}`))
    child.once("exit", onExit)
    child.once("message", () => {
      child.off("exit", onExit)
      resolve({
        open: (url, count, concurrency = 100) =>
          ask(child, { type: "open", url, count, concurrency } satisfies ClientCommand, Opened),
        received: (entries, timeoutMs) =>
          ask(child, { type: "await", entries, timeoutMs } satisfies ClientCommand, Received),
        close: () => ask(child, { type: "close" } satisfies ClientCommand, Closed).then(() => undefined),
        stop: () => stopChild(child)
      })
    })
  })

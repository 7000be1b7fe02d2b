/**
 * Runner processes of the built bin in cluster mode (docs/cluster.md), for
 * the end-to-end suite: a database of their own on the e2e project's
 * PostgreSQL, N runners on loopback ports waited for until each is ready
 * and sees the others, `kill -9` and SIGTERM of one, their output kept for
 * the failure messages, and the bin run to its exit for start failures.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { performance } from "node:perf_hooks"

import { Effect } from "effect"

import { BIN, cleanEnv } from "./bin.js"
import { eventuallyLive, HANG_MS, within } from "./eventually.js"
import { freePort, withClient } from "./postgres.js"
import { raw, type RawRequest, type RawResponse } from "./raw.js"

/** Shards in a cluster (`SHARD_COUNT` in src/cluster/ShardCount.ts), as `GET /v1/runtime` reports them. */
export const TOTAL_SHARDS = 300

/** How soon a runner of the suite that stops answering loses its Workers (the default is 10 s: docs/cluster.md). */
export const FAILURE_DETECTION = "6s"

/**
 * The environment of a runner: none of the tester's `WORKER_RUNTIME_*`, and
 * a failover tuned for tests (`WORKER_RUNTIME_FAILURE_DETECTION`).
 */
export const runnerEnv = (extra: Record<string, string> = {}): Record<string, string> =>
  cleanEnv({ WORKER_RUNTIME_FAILURE_DETECTION: FAILURE_DETECTION, ...extra })

/**
 * A database of the scope's own on the server of `serverUrl` (the cluster's
 * shard locks are advisory locks, which are per database: other suites'
 * schemas must not share it), dropped when the scope closes.
 */
export const freshDatabase = (serverUrl: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const name = `cluster_${process.pid}_${Math.random().toString(36).slice(2, 8)}`
      await withClient(serverUrl, (client) => client.query(`CREATE DATABASE ${name}`))
      const url = new URL(serverUrl)
      url.pathname = `/${name}`
      return { name, url: url.toString() }
    }),
    ({ name }) =>
      Effect.promise(() =>
        withClient(serverUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).catch(
          () => undefined
        )
      )
  )

/** A bin process, its stdout and stderr kept apart. */
export interface Spawned {
  readonly child: ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  /** Resolves with the exit code (or signal name) once the process is gone. */
  readonly exited: Promise<number | string>
}

export interface Runner extends Spawned {
  /** r1, r2, …: for messages. */
  readonly name: string
  /** Its HTTP API, `http://127.0.0.1:<port>`. */
  readonly url: string
  /** Its runner address, `127.0.0.1:<port>`, as `cluster.runner` reports it. */
  readonly address: string
}

export const isGone = (spawned: Spawned): boolean =>
  spawned.child.exitCode !== null || spawned.child.signalCode !== null

const spawnOnce = (args: ReadonlyArray<string>, env: Record<string, string>): Spawned => {
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ["ignore", "pipe", "pipe"] })
  let stdout = ""
  let stderr = ""
  child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown"))
  )
  return { child, stdout: () => stdout, stderr: () => stderr, exited }
}

/** Spawns the bin; the scope's end kills it (SIGKILL) unless it is gone already. */
export const spawnBin = (args: ReadonlyArray<string>, env: Record<string, string> = runnerEnv()) =>
  Effect.acquireRelease(
    Effect.sync(() => spawnOnce(args, env)),
    (spawned) =>
      Effect.promise(async () => {
        if (!isGone(spawned)) {
          spawned.child.kill("SIGKILL")
          await spawned.exited
        }
      })
  )

/** The start and the end of a long text, for messages. */
const tail = (text: string, chars = 3000) =>
  text.length > chars ? `${text.slice(0, chars / 2)}\n…\n${text.slice(-chars / 2)}` : text

/** What a process said, for a failure message. */
export const outputOf = (name: string, spawned: Spawned): string =>
  `--- ${name}${isGone(spawned) ? ` (exited ${spawned.child.exitCode ?? spawned.child.signalCode})` : ""} stdout:\n${
    tail(spawned.stdout())
  }\n--- ${name} stderr:\n${tail(spawned.stderr())}`

/** What every runner said, for a failure message. */
export const outputsOf = (runners: ReadonlyArray<Runner>): string =>
  runners.map((runner) => outputOf(runner.name, runner)).join("\n")

/** Runs the bin until it exits (start failures); only a hang makes it give up. */
export const runToExit = (args: ReadonlyArray<string>, env: Record<string, string> = runnerEnv()) =>
  Effect.scoped(
    Effect.gen(function*() {
      const spawned = yield* spawnBin(args, env)
      const code = yield* Effect.promise(() => spawned.exited).pipe(
        within(() => `the bin exiting; its output:\n${outputOf("bin", spawned)}`)
      )
      return { code, stdout: spawned.stdout(), stderr: spawned.stderr() }
    })
  )

/** A request that may not get an answer (the runner is gone): the answer, or why there was none. */
export type Attempt = RawResponse | { readonly error: string }

export const isAnswer = (attempt: Attempt): attempt is RawResponse => "status" in attempt

/** `raw`, with a connection that fails turned into `{ error }`; a request that hangs fails the test. */
export const attempt = (baseUrl: string, path: string, options: RawRequest = {}): Effect.Effect<Attempt> =>
  raw(baseUrl, path, options).pipe(
    Effect.map((response): Attempt => response),
    Effect.catchAllDefect((defect) => Effect.succeed({ error: String(defect) })),
    within(`an answer to ${options.method ?? "GET"} ${baseUrl}${path}`)
  )

export interface ClusterInfo {
  readonly runner: string
  readonly runners: number
  readonly shards: number
  readonly totalShards: number
}

export interface RuntimeInfo {
  readonly runtimeId: string
  readonly status: string
  readonly store: string
  readonly workers: {
    readonly total: number
    readonly idle: number
    readonly busy: number
    readonly stopped: number
    readonly failed: number
  }
  readonly cluster: ClusterInfo | null
}

/** `GET /v1/runtime` of a runner, or undefined when it does not answer 200. */
export const infoOf = (runner: Runner): Effect.Effect<RuntimeInfo | undefined> =>
  Effect.map(
    attempt(runner.url, "/v1/runtime"),
    (answer) => isAnswer(answer) && answer.status === 200 ? answer.json as RuntimeInfo : undefined
  )

export interface RunnerOptions {
  /** The `--store` value: the cluster's database. */
  readonly store: string
  /** More flags (`--profiles`, `--shutdown-grace-ms`, …). */
  readonly args?: ReadonlyArray<string>
  readonly env?: Record<string, string>
}

/**
 * Starts the bin on a free loopback port with `args` and waits until its
 * `/readyz` answers 200 (it dies, with its output, when the bin exits first).
 */
export const startServing = (name: string, args: ReadonlyArray<string>, env: Record<string, string> = runnerEnv()) =>
  Effect.gen(function*() {
    const port = yield* freePort
    const spawned = yield* spawnBin([...args, "--host", "127.0.0.1", "--port", String(port)], env)
    const served = { ...spawned, name, url: `http://127.0.0.1:${port}` }
    yield* eventuallyLive(
      attempt(served.url, "/readyz"),
      (answer) => (isAnswer(answer) && answer.status === 200) || isGone(served),
      () => `${name} ready; ${outputOf(name, served)}`,
      { everyMs: 100 }
    )
    if (isGone(served)) return yield* Effect.dieMessage(`${name} did not start:\n${outputOf(name, served)}`)
    return served
  })

/** Starts one runner on free loopback ports and waits until its `/readyz` answers 200. */
export const startRunner = (name: string, options: RunnerOptions) =>
  Effect.gen(function*() {
    const address = `127.0.0.1:${yield* freePort}`
    const served = yield* startServing(
      name,
      ["--cluster", "--store", options.store, "--runner-address", address, ...(options.args ?? [])],
      options.env ?? runnerEnv()
    )
    return { ...served, address } satisfies Runner
  })

/**
 * Waits until every runner in `runners` reports `count` runners and the
 * shards shared out whole among them, each holding some: a runner that was
 * alone holds them all until it sees the others and lets theirs go, and
 * they take them only at their next poll.
 */
export const waitForRunners = (runners: ReadonlyArray<Runner>, count = runners.length) =>
  eventuallyLive(
    Effect.forEach(runners, infoOf),
    (infos) =>
      infos.every((info) => info?.cluster?.runners === count && (info.cluster.shards ?? 0) > 0) &&
      infos.reduce((sum, info) => sum + (info?.cluster?.shards ?? 0), 0) === TOTAL_SHARDS,
    () => `${count} runners seeing each other, the ${TOTAL_SHARDS} shards shared among them\n${outputsOf(runners)}`,
    { everyMs: 200 }
  )

/**
 * Starts `count` runners (r1, r2, …) on one database, and waits until they
 * form one cluster. r1 starts alone, then the others at once: the first
 * start on an empty database makes its tables, and runners that make them
 * at the same time can fail (the suite tests that start on its own).
 */
export const startCluster = (count: number, options: RunnerOptions) =>
  Effect.gen(function*() {
    const first = yield* startRunner("r1", options)
    const others = yield* Effect.forEach(
      Array.from({ length: count - 1 }, (_, i) => `r${i + 2}`),
      (name) => startRunner(name, options),
      { concurrency: "unbounded" }
    )
    const runners = [first, ...others]
    yield* waitForRunners(runners)
    return runners
  })

/** Sends `signal` to a runner and waits until it is gone: its exit code (or signal name), and how long it took. */
export const stopRunner = (runner: Runner, signal: "SIGKILL" | "SIGTERM") =>
  Effect.gen(function*() {
    const started = performance.now()
    runner.child.kill(signal)
    const code = yield* Effect.promise(() => runner.exited).pipe(
      within(() => `${runner.name} exiting after ${signal}; ${outputOf(runner.name, runner)}`, HANG_MS)
    )
    return { code, ms: Math.round(performance.now() - started) }
  })

/**
 * An events stream (`GET /v1/workers/{id}/events`) on one connection: the
 * seqs of the entries it delivered so far, and its end (the text read,
 * whether it ended or broke).
 */
export const followEvents = (baseUrl: string, workerId: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const controller = new AbortController()
      const seqs: Array<number> = []
      let text = ""
      let frames = 0
      const consume = (final: boolean) => {
        const parts = text.split("\n\n")
        const complete = final ? parts : parts.slice(0, -1)
        for (const frame of complete.slice(frames)) {
          const lines = frame.split("\n")
          if (!lines.includes("event: entry")) continue
          const data = lines.find((line) => line.startsWith("data: "))
          if (data !== undefined) seqs.push((JSON.parse(data.slice("data: ".length)) as { seq: number }).seq)
        }
        frames = complete.length
      }
      const ended = (async (): Promise<{ readonly status: number; readonly broke?: string }> => {
        try {
          const response = await fetch(`${baseUrl}/v1/workers/${workerId}/events`, { signal: controller.signal })
          if (response.body === null) return { status: response.status, broke: "no body" }
          const reader = response.body.getReader()
          const decoder = new TextDecoder()
          for (;;) {
            const { done, value } = await reader.read()
            if (done) break
            text += decoder.decode(value, { stream: true })
            consume(false)
          }
          consume(true)
          return { status: response.status }
        } catch (error) {
          return { status: 0, broke: String(error) }
        }
      })()
      return { seqs, ended, text: () => text, close: () => controller.abort() }
    }),
    (follower) => Effect.sync(() => follower.close())
  )

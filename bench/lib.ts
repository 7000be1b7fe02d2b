// Shared helpers of the benchmarks: child servers, autocannon runs, timing.
import autocannon, { type Options, type Result } from "autocannon"
import { Effect, Logger, LogLevel } from "effect"
import { type ChildProcess, execFileSync, spawn, type SpawnOptions, type StdioOptions } from "node:child_process"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

/** The repository root; this module runs compiled, from build/bench/. */
export const root = fileURLToPath(new URL("../..", import.meta.url))
/** Where the compiled bench scripts are, for the child processes. */
export const benchBuild = join(root, "build", "bench")

export interface Server {
  readonly url: string
  readonly stop: () => Promise<void>
  /** The child process (for IPC, with `ipc: true`). */
  readonly child: ChildProcess
}

export interface ServerOptions {
  /** Flags for node itself, before the script (e.g. `--expose-gc`). */
  readonly nodeArgs?: ReadonlyArray<string>
  /** An IPC channel to the child (`child.send`, `child.on("message")`). */
  readonly ipc?: boolean
  /**
   * The child's soft open-file limit, raised with the shell's `ulimit -n`
   * (never above the hard limit, which only root could raise).
   */
  readonly openFiles?: number
}

/** Spawns `node [...nodeArgs] <script> ...args` from the repository root, stdout and stderr piped. */
export const spawnNode = (
  script: string,
  args: ReadonlyArray<string> = [],
  env: Readonly<Record<string, string>> = {},
  options: ServerOptions = {}
): ChildProcess => {
  const argv = [...(options.nodeArgs ?? []), script, ...args]
  const stdio: StdioOptions = options.ipc === true ? ["ignore", "pipe", "pipe", "ipc"] : ["ignore", "pipe", "pipe"]
  const spawnOptions: SpawnOptions = { cwd: root, env: { ...process.env, ...env }, stdio }
  return options.openFiles === undefined
    ? spawn(process.execPath, argv, spawnOptions)
    : spawn(
      "/bin/sh",
      ["-c", `ulimit -Sn ${options.openFiles} && exec "$0" "$@"`, process.execPath, ...argv],
      spawnOptions
    )
}

/** Stops a child: SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
export const stopChild = (child: ChildProcess, graceMs = 10_000): Promise<void> =>
  new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done()
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs)
    child.once("exit", () => {
      clearTimeout(timer)
      done()
    })
    child.kill("SIGTERM")
  })

/** Starts `node <script> ...args` and resolves once it prints `listening <url>`. */
export const startServer = (
  script: string,
  args: ReadonlyArray<string> = [],
  env: Readonly<Record<string, string>> = {},
  options: ServerOptions = {}
): Promise<Server> =>
  new Promise((resolve, reject) => {
    const child = spawnNode(script, args, env, options)
    if (child.stdout === null || child.stderr === null) throw new Error("spawned without pipes")
    const { stderr, stdout } = child
    let output = ""
    const onData = (chunk: Buffer): void => {
      output += chunk.toString()
      const url = /listening (?:on )?(http:\/\/[^\s"]+)/i.exec(output)?.[1]
      if (url !== undefined) {
        stdout.off("data", onData)
        stderr.off("data", onData)
        // Keep reading, so that a chatty child never blocks on a full pipe.
        stdout.resume()
        stderr.resume()
        resolve({
          url,
          child,
          stop: () => stopChild(child)
        })
      }
    }
    stdout.on("data", onData)
    stderr.on("data", onData)
    child.once("exit", (code) => reject(new Error(`${script} exited with ${code}:\n${output}`)))
  })

export const fetchJson = async (url: string, init?: RequestInit): Promise<{ status: number; json: unknown }> => {
  const response = await fetch(url, init)
  return { status: response.status, json: await response.json() }
}

/** One autocannon run; resolves with its result. */
export const cannon = (options: Options): Promise<Result> =>
  new Promise((resolve, reject) => {
    autocannon(
      { connections: 32, pipelining: 1, ...options },
      (error, result) => error ? reject(error) : resolve(result)
    )
  })

/** Runs a warm-up, then the measured run. */
export const load = async (options: Options, seconds: number): Promise<Result> => {
  await cannon({ ...options, duration: 1 })
  return cannon({ ...options, duration: seconds })
}

/** Seconds per call of `fn` (sync or async) over `iterations`, after a warm-up. */
export const timePerCall = async (
  fn: (i: number) => unknown,
  iterations: number,
  warmup = Math.min(iterations, 200)
): Promise<number> => {
  for (let i = 0; i < warmup; i++) await fn(i)
  const start = process.hrtime.bigint()
  for (let i = 0; i < iterations; i++) await fn(i)
  return Number(process.hrtime.bigint() - start) / 1e9 / iterations
}

export const fmt = (value: number, digits = 0): string =>
  value >= 1000 ? Math.round(value).toLocaleString("en-US") : value.toFixed(digits)

/** The `q` quantile (0..1) of `values` (sorted here), nearest rank. */
export const quantile = (values: ReadonlyArray<number>, q: number): number => {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
}

/** Milliseconds, with three significant digits or so (0.045, 1.83, 12.4, 1057). */
export const ms = (value: number): string =>
  value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value >= 1 ? value.toFixed(2) : value.toFixed(3)

/** Runs `effect` with the Runtime's info logs (drain at the end of every run) silenced. */
export const quiet = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.provide(effect, Logger.minimumLogLevel(LogLevel.Warning))

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Monotonic nanoseconds, the same clock in every process of the machine (CLOCK_MONOTONIC). */
export const now = (): bigint => process.hrtime.bigint()

/** The soft and hard open-file limits of this shell's processes (`ulimit -n`, `ulimit -Hn`). */
export const openFileLimits = (): { soft: number; hard: number } => {
  const read = (flag: string) => {
    const text = execFileSync("/bin/sh", ["-c", `ulimit ${flag}`], { encoding: "utf8" }).trim()
    return text === "unlimited" ? Number.POSITIVE_INFINITY : Number(text)
  }
  return { soft: read("-n"), hard: read("-Hn") }
}

/** Heap used after full collections; the process must run with --expose-gc. */
export const settledHeap = (): number => {
  const gc = globalThis.gc
  if (gc === undefined) throw new Error("run with --expose-gc")
  for (let i = 0; i < 4; i++) gc()
  return process.memoryUsage().heapUsed
}

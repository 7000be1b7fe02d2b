// Shared helpers of the benchmarks: child servers, autocannon runs, timing.
import autocannon, { type Options, type Result } from "autocannon"
import { spawn } from "node:child_process"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

/** The repository root; this module runs compiled, from build/bench/. */
export const root = fileURLToPath(new URL("../..", import.meta.url))
/** Where the compiled bench scripts are, for the child processes. */
export const benchBuild = join(root, "build", "bench")

export interface Server {
  readonly url: string
  readonly stop: () => Promise<void>
}

/** Starts `node <script> ...args` and resolves once it prints `listening <url>`. */
export const startServer = (
  script: string,
  args: ReadonlyArray<string> = [],
  env: Readonly<Record<string, string>> = {}
): Promise<Server> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    const onData = (chunk: Buffer): void => {
      output += chunk.toString()
      const url = /listening (?:on )?(http:\/\/[^\s"]+)/i.exec(output)?.[1]
      if (url !== undefined) {
        child.stdout.off("data", onData)
        child.stderr.off("data", onData)
        resolve({
          url,
          stop: () =>
            new Promise((done) => {
              if (child.exitCode !== null) return done()
              child.once("exit", () => done())
              child.kill("SIGTERM")
            })
        })
      }
    }
    child.stdout.on("data", onData)
    child.stderr.on("data", onData)
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

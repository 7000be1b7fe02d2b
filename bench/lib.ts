// Shared helpers of the benchmarks: child servers, autocannon runs, timing.
import autocannon from "autocannon"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

export const root = fileURLToPath(new URL("..", import.meta.url))

/** Starts `node <script> ...args` and resolves once it prints `listening <url>`. */
export const startServer = (script, args = [], env = {}) =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    const onData = (chunk) => {
      output += chunk.toString()
      const match = /listening (?:on )?(http:\/\/[^\s"]+)/i.exec(output)
      if (match) {
        child.stdout.off("data", onData)
        child.stderr.off("data", onData)
        resolve({
          url: match[1],
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

export const fetchJson = async (url, init) => {
  const response = await fetch(url, init)
  return { status: response.status, json: await response.json() }
}

/** One autocannon run; resolves with its result. */
export const cannon = (options) =>
  new Promise((resolve, reject) => {
    autocannon({ connections: 32, pipelining: 1, ...options }, (error, result) =>
      error ? reject(error) : resolve(result))
  })

/** Runs a warm-up, then the measured run. */
export const load = async (options, seconds) => {
  await cannon({ ...options, duration: 1 })
  return cannon({ ...options, duration: seconds })
}

/** Seconds per call of `fn` (sync or async) over `iterations`, after a warm-up. */
export const timePerCall = async (fn, iterations, warmup = Math.min(iterations, 200)) => {
  for (let i = 0; i < warmup; i++) await fn(i)
  const start = process.hrtime.bigint()
  for (let i = 0; i < iterations; i++) await fn(i)
  return Number(process.hrtime.bigint() - start) / 1e9 / iterations
}

export const fmt = (value, digits = 0) =>
  value >= 1000 ? Math.round(value).toLocaleString("en-US") : value.toFixed(digits)

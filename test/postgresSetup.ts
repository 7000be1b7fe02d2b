/**
 * The `e2e` project's PostgreSQL (vitest.config.ts): a real server started
 * by scripts/postgres.sh on a free port in a directory of its own, its URL
 * handed to the test files as `inject("postgresUrl")`, and stopped after
 * the run whatever happened (also when the run is killed by a signal).
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

import type { TestProject } from "vitest/node"

declare module "vitest" {
  export interface ProvidedContext {
    /** A superuser URL of the test server; each test place creates its own database. */
    postgresUrl: string
    /** The server's data directory and port, for tests that stop and start it. */
    postgresDir: string
    postgresPort: number
  }
}

const script = resolve(dirname(fileURLToPath(import.meta.url)), "..", "scripts", "postgres.sh")

/** A port nothing listens on now. */
const freePort = (): Promise<number> =>
  new Promise((done, fail) => {
    const server = createServer()
    server.once("error", fail)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => done(port))
    })
  })

export default async function setup(project: TestProject): Promise<() => void> {
  const dir = mkdtempSync(join(tmpdir(), "worker-runtime-pg-"))
  const port = await freePort()
  const env = { ...process.env, PG_TEST_PORT: String(port) }
  let stopped = false
  const stop = () => {
    if (stopped) return
    stopped = true
    execFileSync("bash", [script, "stop", dir], { env, stdio: "inherit" })
  }
  const onSignal = (signal: NodeJS.Signals) => {
    stop()
    process.kill(process.pid, signal)
  }
  process.once("exit", stop)
  process.once("SIGINT", onSignal)
  process.once("SIGTERM", onSignal)
  const started = Date.now()
  const url = execFileSync("bash", [script, "start", dir], { env, stdio: ["ignore", "pipe", "inherit"] })
    .toString().trim()
  console.log(`PostgreSQL for the tests at ${url} (started in ${Date.now() - started} ms)`)
  project.provide("postgresUrl", url)
  project.provide("postgresDir", dir)
  project.provide("postgresPort", port)
  return stop
}

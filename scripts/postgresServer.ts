/**
 * A PostgreSQL server of one's own for the tests and the bench:
 * scripts/postgres.sh on a free loopback port in a new temporary directory,
 * stopped (and its directory removed) by `stop`, which also runs if the
 * process exits or gets SIGINT or SIGTERM first.
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

/** scripts/postgres.sh, from here or from its compiled copy in build/scripts. */
const script = (() => {
  const here = dirname(fileURLToPath(import.meta.url))
  const root = here.endsWith(join("build", "scripts")) ? resolve(here, "..", "..") : resolve(here, "..")
  return join(root, "scripts", "postgres.sh")
})()

/** A loopback port nothing listens on now. */
export const freePort = (): Promise<number> =>
  new Promise((done, fail) => {
    const server = createServer()
    server.once("error", fail)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() =>
        typeof address === "object" && address !== null ? done(address.port) : fail(new Error("no port"))
      )
    })
  })

export interface StartedPostgres {
  /** A superuser URL of the server's `postgres` database. */
  readonly url: string
  readonly dir: string
  readonly port: number
  /** Milliseconds the start took (the package install included, on a machine without it). */
  readonly startMs: number
  /** Stops the server once; later calls do nothing. */
  readonly stop: () => void
}

/** Starts a server in a new directory named after `prefix`; see the module's comment. */
export const startPostgres = async (prefix: string): Promise<StartedPostgres> => {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  const port = await freePort()
  const env = { ...process.env, PG_TEST_PORT: String(port) }
  let stopped = false
  const onSignal = (signal: NodeJS.Signals) => {
    stop()
    process.kill(process.pid, signal)
  }
  const stop = () => {
    if (stopped) return
    stopped = true
    process.removeListener("exit", stop)
    process.removeListener("SIGINT", onSignal)
    process.removeListener("SIGTERM", onSignal)
    execFileSync("bash", [script, "stop", dir], { env, stdio: "inherit" })
  }
  process.once("exit", stop)
  process.once("SIGINT", onSignal)
  process.once("SIGTERM", onSignal)
  const started = Date.now()
  try {
    const url = execFileSync("bash", [script, "start", dir], { env, stdio: ["ignore", "pipe", "inherit"] })
      .toString().trim()
    return { url, dir, port, startMs: Date.now() - started, stop }
  } catch (error) {
    // What the start left behind, if anything; its own error is the one to report.
    try {
      stop()
    } catch {
      // nothing was started
    }
    throw error
  }
}

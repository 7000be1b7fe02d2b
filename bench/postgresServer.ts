// The PostgreSQL section's own server: scripts/postgres.sh on a free port in a
// temporary directory (as the tests' global setup does, test/postgresSetup.ts),
// stopped when the section ends, whatever happens, also on a signal.
import { execFileSync } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Pg from "pg"
import { root } from "./lib.js"

const script = join(root, "scripts", "postgres.sh")

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() =>
        typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))
      )
    })
  })

export interface PostgresServer {
  /** A superuser URL of the server's `postgres` database. */
  readonly url: string
  /** Milliseconds the start took. */
  readonly startMs: number
  /** A new empty database on the server; its URL. */
  readonly database: (name: string) => Promise<string>
}

/** Runs `f` with a fresh server, stopped (and its directory removed) afterwards. */
export const withPostgres = async <A>(f: (server: PostgresServer) => Promise<A>): Promise<A> => {
  const dir = mkdtempSync(join(tmpdir(), "worker-runtime-bench-pg-"))
  const env = { ...process.env, PG_TEST_PORT: String(await freePort()) }
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
  try {
    const started = Date.now()
    const url = execFileSync("bash", [script, "start", dir], { env, stdio: ["ignore", "pipe", "inherit"] })
      .toString().trim()
    const startMs = Date.now() - started
    const database = async (name: string) => {
      const client = new Pg.Client({ connectionString: url })
      await client.connect()
      try {
        await client.query(`CREATE DATABASE ${name}`)
      } finally {
        await client.end()
      }
      const parsed = new URL(url)
      parsed.pathname = `/${name}`
      return parsed.toString()
    }
    return await f({ url, startMs, database })
  } finally {
    stop()
    process.removeListener("exit", stop)
    process.removeListener("SIGINT", onSignal)
    process.removeListener("SIGTERM", onSignal)
  }
}

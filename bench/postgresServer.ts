// The PostgreSQL section's own server (scripts/postgresServer.ts, as the
// tests' global setup starts theirs), stopped when the section ends, whatever
// happens, also on a signal.
import * as Pg from "pg"
import { startPostgres } from "../scripts/postgresServer.js"

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
  const { startMs, stop, url } = await startPostgres("worker-runtime-bench-pg-")
  try {
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
  }
}

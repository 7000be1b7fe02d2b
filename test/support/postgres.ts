/**
 * The e2e project's PostgreSQL (test/postgresSetup.ts), as test files use
 * it: a schema of its own per test place, an admin connection, the server
 * stopped and started again, and a dedicated server for tests that hang or
 * restart one.
 */
import { execFile, execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"

import { Effect } from "effect"
import * as Pg from "pg"

import { freePort as portNobodyUses, startPostgres } from "../../scripts/postgresServer.js"
import { projectRoot } from "./packed.js"

export const script = join(projectRoot, "scripts", "postgres.sh")

let places = 0
/** Unique to this module's load: test files sharing a process (and its pid) get other schemas. */
const loaded = Math.random().toString(36).slice(2, 8)
/** A URL on `serverUrl` whose connections work in a schema of their own (`createSchema` makes it). */
export const freshUrl = (serverUrl: string): string => {
  const url = new URL(serverUrl)
  url.searchParams.set("options", `-c search_path=place_${process.pid}_${loaded}_${++places}`)
  return url.toString()
}

/** The schema a `freshUrl` works in. */
export const schemaOf = (url: string): string => new URL(url).searchParams.get("options")?.split("=")[1] ?? "public"

/** `f` on a connection of its own to `url`, closed afterwards. */
export const withClient = <A>(url: string, f: (client: Pg.Client) => Promise<A>): Promise<A> => {
  const client = new Pg.Client({ connectionString: url })
  return client.connect().then(() => f(client)).finally(() => client.end().catch(() => undefined))
}

/** Creates the schema of `url` (a `freshUrl`). */
export const createSchema = (url: string) =>
  Effect.promise(() => withClient(url, (client) => client.query(`CREATE SCHEMA IF NOT EXISTS ${schemaOf(url)}`)))

/** `scripts/postgres.sh <command> <dir>`, waiting for it. */
export const pgScript = (command: "start" | "stop" | "halt" | "resume", dir: string, port?: number) =>
  Effect.try(() =>
    execFileSync("bash", [script, command, dir], {
      env: port === undefined ? process.env : { ...process.env, PG_TEST_PORT: String(port) },
      stdio: ["ignore", "pipe", "inherit"]
    }).toString().trim()
  )

/** `scripts/postgres.sh <command> <dir>` without blocking the test's event loop (for tests under load). */
export const pgScriptAsync = (command: "halt" | "resume", dir: string) =>
  Effect.async<void, Error>((resume) => {
    execFile("bash", [script, command, dir], (error) => resume(error === null ? Effect.void : Effect.fail(error)))
  })

/** A loopback port nothing listens on now. */
export const freePort = Effect.promise(portNobodyUses)

/**
 * A PostgreSQL server of the scope's own, stopped (and its directory
 * removed) when the scope closes: for tests that hang or restart a server,
 * which others must not share.
 */
export const dedicatedServer = Effect.acquireRelease(
  Effect.promise(() => startPostgres("worker-runtime-pg-own-")),
  (server) => Effect.ignore(Effect.try(server.stop))
)

/** The server's processes: the postmaster (from its pid file) and its children, the backends among them. */
export const serverPids = (dir: string) =>
  Effect.try(() => {
    const postmaster = Number(readFileSync(join(dir, "data", "postmaster.pid"), "utf8").split("\n")[0])
    const children = execFileSync("ps", ["-o", "pid=", "--ppid", String(postmaster)]).toString()
      .split("\n").map((line) => Number(line.trim())).filter((pid) => pid > 0)
    return [postmaster, ...children]
  })

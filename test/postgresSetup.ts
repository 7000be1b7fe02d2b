/**
 * The `e2e` project's PostgreSQL (vitest.config.ts): a real server started
 * by scripts/postgres.sh on a free port in a directory of its own, its URL
 * handed to the test files as `inject("postgresUrl")`, and stopped after
 * the run whatever happened (also when the run is killed by a signal).
 */
import type { TestProject } from "vitest/node"

import { startPostgres } from "../scripts/postgresServer.js"

declare module "vitest" {
  export interface ProvidedContext {
    /** A superuser URL of the test server; each test place creates its own database. */
    postgresUrl: string
    /** The server's data directory and port, for tests that stop and start it. */
    postgresDir: string
    postgresPort: number
  }
}

export default async function setup(project: TestProject): Promise<() => void> {
  const server = await startPostgres("worker-runtime-pg-")
  console.log(`PostgreSQL for the tests at ${server.url} (started in ${server.startMs} ms)`)
  project.provide("postgresUrl", server.url)
  project.provide("postgresDir", server.dir)
  project.provide("postgresPort", server.port)
  return server.stop
}

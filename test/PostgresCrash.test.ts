/**
 * `kill -9` of the runtime process under concurrent load, then a restart on
 * the same PostgreSQL schema (test/support/crashSuite.ts): the durability
 * tests SQLite passes, on the e2e project's server (test/postgresSetup.ts).
 */
import { inject } from "@effect/vitest"
import { Effect } from "effect"

import { crashSuite } from "./support/crashSuite.js"
import { createSchema, freshUrl } from "./support/postgres.js"

const serverUrl = inject("postgresUrl")

crashSuite({
  kind: "postgres",
  make: () => {
    const url = freshUrl(serverUrl)
    return Effect.as(createSchema(url), url)
  }
}, { cycles: 3 })

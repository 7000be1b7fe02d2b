/**
 * `kill -9` of the runtime process under concurrent load, then a restart on
 * the same SQLite file (test/support/crashSuite.ts; on PostgreSQL:
 * test/PostgresCrash.test.ts).
 */
import { join } from "node:path"

import { Effect } from "effect"

import { crashSuite } from "./support/crashSuite.js"

crashSuite({ kind: "sqlite", make: (dir) => Effect.succeed(`sqlite:${join(dir, "data", "runtime.db")}`) }, {
  cycles: 3
})

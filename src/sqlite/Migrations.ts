/**
 * The SQLite store's schema, as `@effect/sql` migrations. Applied migrations
 * are recorded in `effect_sql_migrations`, so that table's highest id is the
 * schema version; add a migration, never edit one that has shipped.
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"

/** The table `@effect/sql`'s Migrator keeps; its presence marks a file as ours. */
export const MIGRATIONS_TABLE = "effect_sql_migrations"

const createTables = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  // Key/value facts about the file itself, e.g. the runtime id it belongs to.
  yield* sql`CREATE TABLE meta (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
  ) WITHOUT ROWID`
  // A rowid table: rows carry metadata of up to ~35 KB, which WITHOUT ROWID
  // tables handle poorly.
  yield* sql`CREATE TABLE workers (
    id TEXT PRIMARY KEY NOT NULL,
    runtime_id TEXT NOT NULL,
    profile TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('idle', 'busy', 'stopped', 'failed')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    turn INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    stop_reason TEXT
  )`
  // A status-filtered list page walks this index from the cursor: O(limit).
  yield* sql`CREATE INDEX workers_status_id ON workers (status, id)`
  // Clustered on (worker_id, seq): a transcript page is one range read.
  yield* sql`CREATE TABLE entries (
    worker_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('user', 'system', 'worker', 'runtime')),
    content TEXT NOT NULL,
    turn INTEGER NOT NULL,
    PRIMARY KEY (worker_id, seq)
  ) WITHOUT ROWID`
})

const migrations: Record<string, Effect.Effect<void, SqlError, SqlClient.SqlClient>> = {
  "1_create_tables": createTables
}

/**
 * Brings the schema up to date, in one transaction. `Migrator.make` rather than
 * `SqliteMigrator.run`: the latter also requires platform services (to dump
 * the schema with the `sqlite3` binary), which this entry must not need.
 */
export const runMigrations: Effect.Effect<
  ReadonlyArray<readonly [id: number, name: string]>,
  Migrator.MigrationError | SqlError,
  SqlClient.SqlClient
> = Migrator.make({})({ loader: Migrator.fromRecord(migrations), table: MIGRATIONS_TABLE })

/**
 * The PostgreSQL store's schema, as `@effect/sql` migrations: the tables of
 * the SQLite store (src/sqlite/Migrations.ts) as they are at its version 3,
 * in one migration. Applied migrations are recorded in
 * `effect_sql_migrations`, so that table's highest id is the schema
 * version; add a migration, never edit one that has shipped.
 *
 * Keys and the columns compared or ordered with them are `COLLATE "C"`:
 * byte order, as SQLite and the memory store sort, whatever the database's
 * locale (docs/durability.md). Text anyone may write (contents, reasons) is
 * `bytea` holding UTF-8: PostgreSQL's text cannot hold U+0000.
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"

/** The table `@effect/sql`'s Migrator keeps; its presence marks a schema as ours. */
export const MIGRATIONS_TABLE = "effect_sql_migrations"

const createTables = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE meta (
    key TEXT COLLATE "C" PRIMARY KEY,
    value TEXT NOT NULL
  )`
  yield* sql`CREATE TABLE workers (
    id TEXT COLLATE "C" PRIMARY KEY,
    runtime_id TEXT NOT NULL,
    profile TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('idle', 'busy', 'stopped', 'failed')),
    created_at TEXT NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL,
    turn INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    queued INTEGER NOT NULL DEFAULT 0,
    stop_reason BYTEA,
    idempotency_key TEXT COLLATE "C"
  )`
  // A status-filtered list page walks this index from the cursor: O(limit).
  yield* sql`CREATE INDEX workers_status_id ON workers (status, id)`
  // Partial: most Workers have no key, and NULLs need no uniqueness.
  yield* sql`CREATE UNIQUE INDEX workers_idempotency_key ON workers (idempotency_key)
    WHERE idempotency_key IS NOT NULL`
  // Ended Workers by last update, then id: `expired` is one range read from the oldest.
  yield* sql`CREATE INDEX workers_ended ON workers (updated_at, id) WHERE status IN ('stopped', 'failed')`
  yield* sql`CREATE TABLE entries (
    worker_id TEXT COLLATE "C" NOT NULL,
    seq INTEGER NOT NULL,
    at TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('user', 'system', 'worker', 'runtime')),
    content BYTEA NOT NULL,
    turn INTEGER NOT NULL,
    outcome TEXT CHECK (outcome IS NULL OR outcome IN ('completed', 'failed', 'cancelled', 'interrupted', 'stopped')),
    PRIMARY KEY (worker_id, seq)
  )`
  yield* sql`CREATE TABLE turns (
    worker_id TEXT COLLATE "C" NOT NULL,
    turn INTEGER NOT NULL,
    status TEXT NOT NULL
      CHECK (status IN ('running', 'completed', 'failed', 'cancelled', 'interrupted', 'stopped')),
    input_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    reason BYTEA,
    PRIMARY KEY (worker_id, turn)
  )`
  yield* sql`CREATE TABLE queued_inputs (
    worker_id TEXT COLLATE "C" NOT NULL,
    id INTEGER NOT NULL,
    content BYTEA NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('user', 'system')),
    at TEXT NOT NULL,
    PRIMARY KEY (worker_id, id)
  )`
  // Every (key, value) pair of every Worker, by pair then id: a
  // metadata-filtered list page is one range read from the cursor.
  yield* sql`CREATE TABLE worker_metadata (
    key TEXT COLLATE "C" NOT NULL,
    value TEXT COLLATE "C" NOT NULL,
    worker_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (key, value, worker_id)
  )`
  // A Worker's pairs, to delete them with it.
  yield* sql`CREATE INDEX worker_metadata_worker ON worker_metadata (worker_id)`
  // Worker counts by status, one row per status, kept by the trigger below
  // in the transaction of each insert, status change and delete: `counts` is O(1).
  yield* sql`CREATE TABLE worker_counts (
    status TEXT PRIMARY KEY CHECK (status IN ('idle', 'busy', 'stopped', 'failed')),
    count INTEGER NOT NULL
  )`
  yield* sql`INSERT INTO worker_counts (status, count) VALUES ('idle', 0), ('busy', 0), ('stopped', 0), ('failed', 0)`
  yield* sql.unsafe(`CREATE FUNCTION worker_counts_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE worker_counts SET count = count - 1 WHERE status = OLD.status;
      END IF;
      IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE worker_counts SET count = count + 1 WHERE status = NEW.status;
      END IF;
      RETURN NULL;
    END
  $$`)
  yield* sql`CREATE TRIGGER worker_counts_insert_delete AFTER INSERT OR DELETE ON workers
    FOR EACH ROW EXECUTE FUNCTION worker_counts_change()`
  // Every commit sets status, most to the same value: only a change counts.
  yield* sql`CREATE TRIGGER worker_counts_update AFTER UPDATE OF status ON workers
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION worker_counts_change()`
})

/** The tokens a model turn used (both null when the engine reports none). */
const turnUsage = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE turns ADD COLUMN input_tokens INTEGER, ADD COLUMN output_tokens INTEGER`
})

/**
 * The counts trigger locks every `worker_counts` row, in status order, before
 * it changes one. It used to update the old status's row, then the new one's,
 * so that concurrent transactions (idle→busy in one, busy→idle in another)
 * took the two rows in opposite orders and deadlocked; ordering only the two
 * rows of one change is not enough either, as a transaction that changes
 * several Workers gathers its locks over several firings. Taking all four
 * at the first firing, always in the same order, leaves no cycle; the rows
 * are held to the commit either way, so it serializes nothing more than
 * before. Several runtimes on one database (cluster mode) write at once.
 */
const countsLockOrder = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`CREATE OR REPLACE FUNCTION worker_counts_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM 1 FROM worker_counts ORDER BY status FOR NO KEY UPDATE;
      IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE worker_counts SET count = count - 1 WHERE status = OLD.status;
      END IF;
      IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE worker_counts SET count = count + 1 WHERE status = NEW.status;
      END IF;
      RETURN NULL;
    END
  $$`)
})

/**
 * Input receipts (cluster mode): each input given an id is recorded with
 * the id and what its call answered, in the input's own commit, so that a
 * redelivery answers the same instead of recording the input again
 * (docs/cluster.md). `ord` orders a Worker's receipts: only its latest are
 * kept. Without an id (one process) no row.
 */
const inputReceipts = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE input_receipts (
    ord BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    worker_id TEXT COLLATE "C" NOT NULL,
    input_id TEXT COLLATE "C" NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('idle', 'busy', 'stopped', 'failed')),
    turn INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    queued INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    entry_seq INTEGER,
    queue_position INTEGER
  )`
  // An input is recorded once, whichever runner records it: a second receipt with its id fails its commit.
  // It also finds a Worker's receipts, to forget the oldest (at most RECEIPTS_PER_WORKER + 1: their sort is small).
  yield* sql`CREATE UNIQUE INDEX input_receipts_input ON input_receipts (worker_id, input_id)`
})

/** By id; the Migrator runs those above the schema's version, in order. */
export const migrations: Readonly<Record<string, Effect.Effect<void, SqlError, SqlClient.SqlClient>>> = {
  "1_create_tables": createTables,
  "2_turn_usage": turnUsage,
  "3_counts_lock_order": countsLockOrder,
  "4_input_receipts": inputReceipts
}

/** The highest migration id this version knows: a schema above it was written by a newer version. */
export const SCHEMA_VERSION = 4

/** Brings the schema up to date, in one transaction (the Migrator locks its table meanwhile). */
export const runMigrations: Effect.Effect<
  ReadonlyArray<readonly [id: number, name: string]>,
  Migrator.MigrationError | SqlError,
  SqlClient.SqlClient
> = Migrator.make({})({ loader: Migrator.fromRecord(migrations), table: MIGRATIONS_TABLE })

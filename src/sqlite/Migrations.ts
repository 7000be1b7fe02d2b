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

/** A v1 runtime entry's outcome: the word its content starts with. */
const OUTCOME_OF_CONTENT = `CASE
    WHEN content GLOB 'cancelled*' THEN 'cancelled'
    WHEN content GLOB 'stopped*' THEN 'stopped'
    WHEN content GLOB 'failed*' THEN 'failed'
    WHEN content GLOB 'interrupted*' THEN 'interrupted'
    ELSE 'completed'
  END`

/**
 * Store v2: turn outcomes on entries, turn records, queued inputs,
 * idempotency keys, and an index of metadata pairs. Rows written by v1 are
 * brought along: outcomes are read from the runtime entries' text (v1 wrote
 * "cancelled: <reason>", "stopped", "failed: <message>", "interrupted by
 * restart", "interrupted: the runtime shut down"), turn records are rebuilt
 * from the transcripts, the metadata index from the metadata JSON. The
 * backfills read every entry once; they run once per file.
 */
const v2 = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  // --- entries: how each turn ended, on its runtime entry.
  yield* sql`ALTER TABLE entries ADD COLUMN outcome TEXT
    CHECK (outcome IS NULL OR outcome IN ('completed', 'failed', 'cancelled', 'interrupted', 'stopped'))`
  // GLOB, not LIKE: case-sensitive, as the words were written.
  yield* sql`UPDATE entries SET outcome = ${sql.literal(OUTCOME_OF_CONTENT)} WHERE role = 'runtime'`

  // --- workers: the queue's length (part of the Worker) and the create's key.
  yield* sql`ALTER TABLE workers ADD COLUMN queued INTEGER NOT NULL DEFAULT 0`
  yield* sql`ALTER TABLE workers ADD COLUMN idempotency_key TEXT`
  // Partial: most Workers have no key, and NULLs need no uniqueness.
  yield* sql`CREATE UNIQUE INDEX workers_idempotency_key ON workers (idempotency_key)
    WHERE idempotency_key IS NOT NULL`

  // --- turns: one row per turn, so that a turn's state is one key lookup
  // instead of a search through its transcript.
  yield* sql`CREATE TABLE turns (
    worker_id TEXT NOT NULL,
    turn INTEGER NOT NULL,
    status TEXT NOT NULL
      CHECK (status IN ('running', 'completed', 'failed', 'cancelled', 'interrupted', 'stopped')),
    input_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    reason TEXT,
    PRIMARY KEY (worker_id, turn)
  ) WITHOUT ROWID`
  // Per turn of v1: its input is its first user/system entry, its end its
  // first runtime entry (a later one of the same number is a stop of the
  // then idle Worker). No runtime entry: v1 wrote none for a turn that
  // completed, so it completed, unless the Worker is still busy on it
  // (recovery at start then ends it). The reason is what follows "<word>: ".
  // Aggregates first, then key lookups of the three entries they name, so
  // that no turn searches its Worker's transcript.
  yield* sql`INSERT INTO turns (worker_id, turn, status, input_seq, last_seq, started_at, ended_at, reason)
    SELECT
      g.worker_id,
      g.turn,
      CASE
        WHEN r.seq IS NOT NULL THEN r.outcome
        WHEN w.status = 'busy' AND w.turn = g.turn THEN 'running'
        ELSE 'completed'
      END,
      g.input_seq,
      g.last_seq,
      i.at,
      CASE
        WHEN r.seq IS NOT NULL THEN r.at
        WHEN w.status = 'busy' AND w.turn = g.turn THEN NULL
        ELSE l.at
      END,
      CASE WHEN r.content GLOB r.outcome || ': *' THEN substr(r.content, length(r.outcome) + 3) END
    FROM (
      SELECT
        worker_id,
        turn,
        min(CASE WHEN role IN ('user', 'system') THEN seq END) AS input_seq,
        max(seq) AS last_seq,
        min(CASE WHEN role = 'runtime' THEN seq END) AS end_seq
      FROM entries
      WHERE turn > 0
      GROUP BY worker_id, turn
    ) AS g
    JOIN entries AS i ON i.worker_id = g.worker_id AND i.seq = g.input_seq
    JOIN entries AS l ON l.worker_id = g.worker_id AND l.seq = g.last_seq
    LEFT JOIN entries AS r ON r.worker_id = g.worker_id AND r.seq = g.end_seq
    LEFT JOIN workers AS w ON w.id = g.worker_id`

  // --- queued_inputs: inputs accepted under ifBusy: enqueue, in id order.
  yield* sql`CREATE TABLE queued_inputs (
    worker_id TEXT NOT NULL,
    id INTEGER NOT NULL,
    content TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('user', 'system')),
    at TEXT NOT NULL,
    PRIMARY KEY (worker_id, id)
  ) WITHOUT ROWID`

  // --- worker_metadata: every (key, value) pair of every Worker, clustered
  // by pair then id, so that a metadata-filtered list page is one range read
  // from the cursor. Written when the Worker is inserted (metadata is fixed
  // at create) and deleted with it.
  yield* sql`CREATE TABLE worker_metadata (
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    PRIMARY KEY (key, value, worker_id)
  ) WITHOUT ROWID`
  yield* sql`INSERT INTO worker_metadata (key, value, worker_id)
    SELECT m.key, m.value, w.id FROM workers AS w, json_each(w.metadata) AS m`
})

/**
 * Store v3: Worker counts by status, and an index of the Workers retention
 * may delete, so that neither needs a scan of `workers`. The counts are
 * backfilled from the rows (once per file: one count per status through
 * `workers_status_id`), then kept by triggers in the transaction of each
 * insert, status change and delete, whoever writes the row.
 */
const v3 = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  // One row per status, always: the triggers only update.
  yield* sql`CREATE TABLE worker_counts (
    status TEXT PRIMARY KEY NOT NULL CHECK (status IN ('idle', 'busy', 'stopped', 'failed')),
    count INTEGER NOT NULL
  ) WITHOUT ROWID`
  yield* sql`INSERT INTO worker_counts (status, count)
    SELECT s.column1, (SELECT count(*) FROM workers WHERE status = s.column1)
    FROM (VALUES ('idle'), ('busy'), ('stopped'), ('failed')) AS s`
  yield* sql`CREATE TRIGGER worker_counts_insert AFTER INSERT ON workers BEGIN
    UPDATE worker_counts SET count = count + 1 WHERE status = NEW.status;
  END`
  // Every commit sets status, most to the same value: only a change counts.
  yield* sql`CREATE TRIGGER worker_counts_update AFTER UPDATE OF status ON workers
    WHEN OLD.status IS NOT NEW.status BEGIN
    UPDATE worker_counts SET count = count - 1 WHERE status = OLD.status;
    UPDATE worker_counts SET count = count + 1 WHERE status = NEW.status;
  END`
  yield* sql`CREATE TRIGGER worker_counts_delete AFTER DELETE ON workers BEGIN
    UPDATE worker_counts SET count = count - 1 WHERE status = OLD.status;
  END`
  // Ended Workers by last update, then id: `expired` is one range read from
  // the oldest, in its order. Partial: idle and busy Workers are not in it,
  // so it costs their commits nothing. Queries must repeat this WHERE term
  // as written for SQLite to use it. `status` too, although the WHERE
  // implies it: without it SQLite reads each row to check the term again.
  yield* sql`CREATE INDEX workers_ended ON workers (updated_at, id, status) WHERE status IN ('stopped', 'failed')`
})

/** Store v4: the tokens a model turn used (both null when the engine reports none). */
const v4 = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE turns ADD COLUMN input_tokens INTEGER`
  yield* sql`ALTER TABLE turns ADD COLUMN output_tokens INTEGER`
})

/**
 * Store v5: input receipts (cluster mode). Each input given an id is
 * recorded with the id and what its call answered, in the input's own
 * commit, so that a redelivery answers the same instead of recording the
 * input again (docs/cluster.md). `ord` (the rowid) orders a Worker's
 * receipts: only its latest are kept. Without an id (one process) no row.
 */
const v5 = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE input_receipts (
    ord INTEGER PRIMARY KEY,
    worker_id TEXT NOT NULL,
    input_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('idle', 'busy', 'stopped', 'failed')),
    turn INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    queued INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    entry_seq INTEGER,
    queue_position INTEGER
  )`
  // An input is recorded once: a second receipt with its id fails its commit.
  // It also finds a Worker's receipts, to forget the oldest (at most RECEIPTS_PER_WORKER + 1: their sort is small).
  yield* sql`CREATE UNIQUE INDEX input_receipts_input ON input_receipts (worker_id, input_id)`
})

/** By id; the Migrator runs those above the file's version, in order. Exported for tests that build old files. */
export const migrations: Readonly<Record<string, Effect.Effect<void, SqlError, SqlClient.SqlClient>>> = {
  "1_create_tables": createTables,
  "2_v2": v2,
  "3_counts_and_ended": v3,
  "4_turn_usage": v4,
  "5_input_receipts": v5
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

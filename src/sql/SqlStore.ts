/**
 * The durable `RuntimeStore` over `@effect/sql`, for every SQL database it
 * runs on (SQLite, PostgreSQL): rows, statements, the writer and the reads.
 * What differs between databases (opening one, its schema, its errors) is
 * the dialect's (src/sqlite, src/postgres); the few statements that differ
 * in text are chosen by `sql.onDialectOrElse`.
 *
 * Each `commit` is one transaction, committed before it returns; all writes
 * go through one writer fiber (group commit), and deleting a Worker is a
 * series of bounded transactions, so that a large delete never holds up
 * other Workers' commits for long. docs/durability.md explains the choices.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { Row } from "@effect/sql/SqlConnection"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import type { ParseError } from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"

import {
  InputKind,
  Metadata,
  RuntimeId,
  TranscriptEntry,
  Turn,
  TurnOutcome,
  type Worker,
  WorkerId,
  WorkerStatus
} from "../Domain.js"
import {
  type Change,
  type InputReceipt,
  type InsertResult,
  type ListWorkersQuery,
  type QueuedRef,
  RECEIPTS_PER_WORKER,
  type RuntimeStoreService,
  type StoredWorker,
  StoreError,
  type WorkerCounts
} from "../RuntimeStore.js"
import { makeGroupCommit } from "./GroupCommit.js"

/** Commits that may share one transaction. */
const GROUP_COMMIT_MAX = 256

/** A statement parameter. */
type Param = string | number | null | Uint8Array

/**
 * Text anyone may write (contents, reasons) as a parameter: as it is on
 * SQLite; UTF-8 bytes (`bytea`) on PostgreSQL, whose text cannot hold U+0000.
 * PostgreSQL's pool reads `bytea` back as text (src/postgres/PostgresStore.ts).
 */
type FreeText = (text: string) => string | Uint8Array
const freeText = (dialect: Dialect): FreeText =>
  dialect === "pg" ? (text) => new TextEncoder().encode(text) : (text) => text

/** The databases the store runs on; `sql.onDialectOrElse` tells them apart. */
export type Dialect = "sqlite" | "pg"

export const dialectOf = (sql: SqlClient.SqlClient): Dialect =>
  sql.onDialectOrElse({ pg: (): Dialect => "pg", orElse: (): Dialect => "sqlite" })

/** `?` placeholders as PostgreSQL's `$1, $2, …`; the statements have no `?` elsewhere. */
const numbered = (text: string): string => {
  let n = 0
  return text.replace(/\?/g, () => `$${++n}`)
}

// --- rows ---------------------------------------------------------------------

const WorkerRow = Schema.Struct({
  id: WorkerId,
  runtime_id: RuntimeId,
  profile: Schema.String,
  status: WorkerStatus,
  created_at: Schema.String,
  updated_at: Schema.String,
  turn: Schema.Int,
  last_seq: Schema.Int,
  metadata: Schema.parseJson(Metadata),
  queued: Schema.Int,
  stop_reason: Schema.NullOr(Schema.String)
})

/** A `workers` row as the Domain's `Worker`: no `stopReason` key at all when there is none. */
const workerOfRow = (row: typeof WorkerRow.Type): Worker => ({
  id: row.id,
  runtimeId: row.runtime_id,
  profile: row.profile,
  status: row.status,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
  turn: row.turn,
  lastSeq: row.last_seq,
  metadata: row.metadata,
  queued: row.queued,
  ...(row.stop_reason === null ? {} : { stopReason: row.stop_reason })
})

/**
 * A Worker's column values in `WORKER_COLUMNS` order, for the fixed INSERT
 * and UPDATE statements (the one hand-written mapping the other way).
 */
const workerValues = (worker: Worker, text: FreeText): Array<Param> => [
  worker.id,
  worker.runtimeId,
  worker.profile,
  worker.status,
  worker.createdAt,
  worker.updatedAt,
  worker.turn,
  worker.lastSeq,
  JSON.stringify(worker.metadata),
  worker.queued,
  worker.stopReason === undefined ? null : text(worker.stopReason)
]

/** What only `loadWorkers` reads: the row and the key the Worker was created with. */
const StoredWorkerRow = Schema.Struct({ ...WorkerRow.fields, idempotency_key: Schema.NullOr(Schema.String) })

/** An `entries` row: the Domain's entry with `outcome` NULL where the entry has none. */
const EntryRow = Schema.Struct({ ...TranscriptEntry.fields, outcome: Schema.NullOr(TurnOutcome) })

/** No `outcome` key at all when there is none (`exactOptionalPropertyTypes`), as the memory store keeps entries. */
const entryOfRow = ({ outcome, ...entry }: typeof EntryRow.Type): TranscriptEntry =>
  outcome === null ? entry : { ...entry, outcome }

const TurnRow = Schema.Struct({
  worker_id: WorkerId,
  turn: Turn.fields.turn,
  status: Turn.fields.status,
  input_seq: Turn.fields.inputSeq,
  last_seq: Turn.fields.lastSeq,
  started_at: Turn.fields.startedAt,
  ended_at: Turn.fields.endedAt,
  reason: Turn.fields.reason,
  input_tokens: Schema.NullOr(Schema.Int),
  output_tokens: Schema.NullOr(Schema.Int)
})

const turnOfRow = (row: typeof TurnRow.Type): Turn => ({
  workerId: row.worker_id,
  turn: row.turn,
  status: row.status,
  inputSeq: row.input_seq,
  lastSeq: row.last_seq,
  startedAt: row.started_at,
  endedAt: row.ended_at,
  reason: row.reason,
  // Both or neither: a turn's usage is written whole.
  usage: row.input_tokens === null || row.output_tokens === null
    ? null
    : { inputTokens: row.input_tokens, outputTokens: row.output_tokens }
})

/** A turn's column values in `UPSERT_TURN` order; filed under the Worker of the change that carries it. */
const turnValues = (workerId: string, turn: Turn, text: FreeText): Array<Param> => [
  workerId,
  turn.turn,
  turn.status,
  turn.inputSeq,
  turn.lastSeq,
  turn.startedAt,
  turn.endedAt,
  turn.reason === null ? null : text(turn.reason),
  turn.usage?.inputTokens ?? null,
  turn.usage?.outputTokens ?? null
]

const QueuedRow = Schema.Struct({
  worker_id: Schema.String,
  id: Schema.Int,
  kind: InputKind,
  at: Schema.String,
  bytes: Schema.Int
})

/** One Worker's queued input: a `QueuedRef` as it is. */
const QueueRow = Schema.Struct({ id: Schema.Int, kind: InputKind, at: Schema.String, bytes: Schema.Int })

/** An `input_receipts` row, but for its keys (the Worker's id, the input's) and its order. */
const ReceiptRow = Schema.Struct({
  status: WorkerStatus,
  turn: Schema.Int,
  last_seq: Schema.Int,
  queued: Schema.Int,
  updated_at: Schema.String,
  entry_seq: Schema.NullOr(Schema.Int),
  queue_position: Schema.NullOr(Schema.Int)
})

const receiptOfRow = (inputId: string, row: typeof ReceiptRow.Type): InputReceipt => ({
  inputId,
  worker: { status: row.status, turn: row.turn, lastSeq: row.last_seq, queued: row.queued, updatedAt: row.updated_at },
  seq: row.entry_seq ?? undefined,
  position: row.queue_position ?? undefined
})

/** A receipt's column values in `INSERT_RECEIPT` order. */
const receiptValues = (workerId: string, receipt: InputReceipt): Array<Param> => [
  workerId,
  receipt.inputId,
  receipt.worker.status,
  receipt.worker.turn,
  receipt.worker.lastSeq,
  receipt.worker.queued,
  receipt.worker.updatedAt,
  receipt.seq ?? null,
  receipt.position ?? null
]

const CountRow = Schema.Struct({ status: WorkerStatus, count: Schema.Int })

/** `worker_counts` as a record; a status without a row (none should lack one) counts 0. */
const countsOfRows = (rows: ReadonlyArray<typeof CountRow.Type>): WorkerCounts => {
  const counts = { idle: 0, busy: 0, stopped: 0, failed: 0 }
  for (const { count, status } of rows) counts[status] = count
  return counts
}

const decodeWorkerRows = Schema.decodeUnknown(Schema.Array(WorkerRow))
const decodeWorkers = (rows: unknown) => Effect.map(decodeWorkerRows(rows), (decoded) => decoded.map(workerOfRow))
const decodeStoredWorkers = Schema.decodeUnknown(Schema.Array(StoredWorkerRow))
const decodeEntryRows = Schema.decodeUnknown(Schema.Array(EntryRow))
const decodeEntries = (rows: unknown) => Effect.map(decodeEntryRows(rows), (decoded) => decoded.map(entryOfRow))
const decodeTurns = Schema.decodeUnknown(Schema.Array(TurnRow))
const decodeQueued = Schema.decodeUnknown(Schema.Array(QueuedRow))
const decodeQueue = Schema.decodeUnknown(Schema.Array(QueueRow))
const decodeCounts = Schema.decodeUnknown(Schema.Array(CountRow))
const decodeReceipts = Schema.decodeUnknown(Schema.Array(ReceiptRow))
const decodeIdRows = Schema.decodeUnknown(Schema.Array(Schema.Struct({ id: WorkerId })))
const decodeIds = (rows: unknown) => Effect.map(decodeIdRows(rows), (decoded) => decoded.map((row) => row.id))
/** An aggregate's one row, NULL over no rows. */
const decodeMaybeValue = Schema.decodeUnknown(Schema.Tuple(Schema.Struct({ value: Schema.NullOr(Schema.String) })))
const decodeValues = Schema.decodeUnknown(Schema.Array(Schema.Struct({ value: Schema.String })))
/** Rows a write changed: better-sqlite3 reports `changes`, pg `rowCount`. */
const decodeSqliteRun = Schema.decodeUnknown(Schema.Struct({ changes: Schema.Number }))
const decodePgRun = Schema.decodeUnknown(Schema.Struct({ rowCount: Schema.NullOr(Schema.Number) }))
const changesOf = (dialect: Dialect, raw: unknown): Effect.Effect<number, ParseError> =>
  dialect === "pg"
    ? Effect.map(decodePgRun(raw), (result) => result.rowCount ?? 0)
    : Effect.map(decodeSqliteRun(raw), (result) => result.changes)

const WORKER_COLUMNS =
  "id, runtime_id, profile, status, created_at, updated_at, turn, last_seq, metadata, queued, stop_reason"
/** `WORKER_COLUMNS` of the `workers` table aliased `w`, for the joins of metadata-filtered lists. */
const W_WORKER_COLUMNS = WORKER_COLUMNS.split(", ").map((column) => `w.${column}`).join(", ")
const ENTRY_COLUMNS = "seq, at, role, content, turn, outcome"
const TURN_COLUMNS =
  "worker_id, turn, status, input_seq, last_seq, started_at, ended_at, reason, input_tokens, output_tokens"
/** Rows per INSERT: 7 parameters each stays far below SQLite's 32766-parameter limit (PostgreSQL's: 65535). */
const ENTRIES_PER_INSERT = 500
/**
 * Rows per transaction when a Worker's transcript and turns are deleted: a
 * few milliseconds of writing, so that commits of other Workers queued
 * behind one wait about as long as behind a large commit.
 */
const DELETE_BATCH = 5000

const CREATED: InsertResult = { created: true }
const keyTakenBy = (existing: Worker): InsertResult => ({ created: false, existing })

// A taken idempotency key inserts nothing (the store's unique key decides); a taken id still fails.
const INSERT_WORKER = `INSERT INTO workers (${WORKER_COLUMNS}, idempotency_key) VALUES (${
  WORKER_COLUMNS.replace(/[a-z_]+/g, "?")
}, ?) ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING`
// Columns as in WORKER_COLUMNS, with `id = ?` moved from the front to the WHERE.
// The idempotency key is written once, by the INSERT.
const UPDATE_WORKER = `UPDATE workers SET ${
  WORKER_COLUMNS.split(", ").slice(1).map((column) => `${column} = ?`).join(", ")
} WHERE id = ?`
// Metadata is fixed at create: its pairs are indexed with the INSERT and
// removed with the Worker, found through its JSON (by key, no scan).
const INSERT_METADATA = "INSERT INTO worker_metadata (key, value, worker_id) SELECT key, value, ? FROM json_each(?)"
const DELETE_METADATA = `DELETE FROM worker_metadata WHERE worker_id = ?
  AND (key, value) IN (SELECT key, value FROM json_each((SELECT metadata FROM workers WHERE id = ?)))`
// PostgreSQL's text holds no U+0000, which metadata may contain: the pairs
// go in escaped (`indexText`), computed here rather than from the JSON, and
// leave by the Worker's id (an index of its own, src/postgres/Migrations.ts).
const PG_INSERT_METADATA = `INSERT INTO worker_metadata (key, value, worker_id)
  SELECT key, value, $1::text FROM unnest($2::text[], $3::text[]) AS pair (key, value)`
const PG_DELETE_METADATA = "DELETE FROM worker_metadata WHERE worker_id = $1"

/** A metadata key or value as `worker_metadata` holds it: as it is, or on PostgreSQL with `\` and U+0000 escaped. */
const indexText = (dialect: Dialect) => (text: string): string =>
  dialect === "pg" ? text.replaceAll("\\", "\\\\").replaceAll("\u0000", "\\0") : text

const INSERT_QUEUED = "INSERT INTO queued_inputs (worker_id, id, content, kind, at) VALUES (?, ?, ?, ?, ?)"
const DELETE_QUEUED = "DELETE FROM queued_inputs WHERE worker_id = ? AND id = ?"
// A receipt whose input id the Worker has already breaks the unique key: its commit fails whole.
const INSERT_RECEIPT = `INSERT INTO input_receipts
  (worker_id, input_id, status, turn, last_seq, queued, updated_at, entry_seq, queue_position) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
// The Worker's receipts older than its latest RECEIPTS_PER_WORKER (found by the unique key's prefix: a few rows).
const TRIM_RECEIPTS = `DELETE FROM input_receipts WHERE worker_id = ? AND ord <=
  (SELECT ord FROM input_receipts WHERE worker_id = ? ORDER BY ord DESC LIMIT 1 OFFSET ${RECEIPTS_PER_WORKER})`
// The first DELETE_BATCH rows of the Worker, by key: a range of the primary key.
const DELETE_ENTRIES_BATCH = `DELETE FROM entries WHERE worker_id = ? AND seq IN
  (SELECT seq FROM entries WHERE worker_id = ? ORDER BY seq LIMIT ${DELETE_BATCH})`
const DELETE_TURNS_BATCH = `DELETE FROM turns WHERE worker_id = ? AND turn IN
  (SELECT turn FROM turns WHERE worker_id = ? ORDER BY turn LIMIT ${DELETE_BATCH})`
// The last transaction of a delete: the rest of the Worker.
const DELETE_QUEUE = "DELETE FROM queued_inputs WHERE worker_id = ?"
const DELETE_RECEIPTS = "DELETE FROM input_receipts WHERE worker_id = ?"
const DELETE_TURNS = "DELETE FROM turns WHERE worker_id = ?"
const DELETE_ENTRIES = "DELETE FROM entries WHERE worker_id = ?"
const DELETE_WORKER = "DELETE FROM workers WHERE id = ?"

/** The fixed write statements in the dialect's text, built once per store. */
const writeStatements = (dialect: Dialect) => {
  const text = dialect === "pg" ? numbered : (statement: string) => statement
  return {
    insertWorker: text(INSERT_WORKER),
    updateWorker: text(UPDATE_WORKER),
    insertMetadata: dialect === "pg" ? PG_INSERT_METADATA : INSERT_METADATA,
    deleteMetadata: dialect === "pg" ? PG_DELETE_METADATA : DELETE_METADATA,
    insertQueued: text(INSERT_QUEUED),
    deleteQueued: text(DELETE_QUEUED),
    insertReceipt: text(INSERT_RECEIPT),
    trimReceipts: text(TRIM_RECEIPTS),
    deleteReceipts: text(DELETE_RECEIPTS),
    deleteEntriesBatch: text(DELETE_ENTRIES_BATCH),
    deleteTurnsBatch: text(DELETE_TURNS_BATCH),
    deleteQueue: text(DELETE_QUEUE),
    deleteTurns: text(DELETE_TURNS),
    deleteEntries: text(DELETE_ENTRIES),
    deleteWorker: text(DELETE_WORKER),
    insertEntries: (rows: number) => insertEntriesSql(dialect, rows),
    updateWorkers: (rows: number) => updateWorkersSql(dialect, rows),
    upsertTurns: (rows: number) => upsertTurnsSql(dialect, rows)
  }
}

/** What the store's writer fiber does; a batch of them is one transaction. */
type Write =
  | { readonly _tag: "Insert"; readonly worker: Worker; readonly idempotencyKey: string | undefined }
  | { readonly _tag: "Commit"; readonly change: Change }
  /** One bounded step of a delete (DELETE_BATCH rows). */
  | { readonly _tag: "DeleteEntries"; readonly workerId: string }
  | { readonly _tag: "DeleteTurns"; readonly workerId: string }
  /** The last step of a delete: everything else of the Worker. */
  | { readonly _tag: "DeleteWorker"; readonly workerId: string }

/** What a failed write was doing, for its `StoreError`. */
const operationOf = (write: Write): string => {
  switch (write._tag) {
    case "Insert":
      return `inserting Worker ${write.worker.id}`
    case "Commit":
      return `committing to Worker ${write.change.worker.id}`
    default:
      return `deleting Worker ${write.workerId}`
  }
}

/**
 * `build` kept per shape (its arguments): one string per shape, so that the
 * driver's prepared statements are reused and nothing is built per commit.
 */
const byShape = <Args extends ReadonlyArray<string | number | boolean>>(build: (...args: Args) => string) => {
  const built = new Map<string, string>()
  return (...args: Args): string => {
    const shape = args.join(":")
    let sql = built.get(shape)
    if (sql === undefined) {
      sql = build(...args)
      built.set(shape, sql)
    }
    return sql
  }
}

/** The multi-row INSERT for `rows` entries; one string per size, so statements are reused. */
const insertEntriesSql = byShape((dialect: Dialect, rows: number): string => {
  const sql = `INSERT INTO entries (worker_id, ${ENTRY_COLUMNS}) VALUES ${
    Array.from({ length: rows }, () => "(?, ?, ?, ?, ?, ?, ?)").join(", ")
  }`
  return dialect === "pg" ? numbered(sql) : sql
})

/** `WORKER_COLUMNS`' types on PostgreSQL, whose `VALUES` would take untyped parameters for text. */
const PG_WORKER_CASTS = [
  "text",
  "text",
  "text",
  "text",
  "text",
  "text",
  "integer",
  "integer",
  "text",
  "integer",
  "bytea"
].map((type) => `::${type}`)

/**
 * The UPDATE of `rows` Worker rows at once (several commits' Workers, one
 * row each), parameters as `workerValues` row after row; one row is the
 * plain `UPDATE_WORKER`.
 */
const updateWorkersSql = byShape((dialect: Dialect, rows: number): string => {
  const columns = WORKER_COLUMNS.split(", ")
  const casts = dialect === "pg" ? PG_WORKER_CASTS : columns.map(() => "")
  const row = `(${casts.map((cast) => `?${cast}`).join(", ")})`
  const sql = `WITH v (${WORKER_COLUMNS}) AS (VALUES ${Array.from({ length: rows }, () => row).join(", ")})
    UPDATE workers SET ${columns.slice(1).map((column) => `${column} = v.${column}`).join(", ")}
    FROM v WHERE workers.id = v.id`
  return dialect === "pg" ? numbered(sql) : sql
})

/**
 * The upsert of `rows` turn records (a turn's start inserts its record, its
 * end replaces it), parameters as `turnValues` row after row. No two rows
 * may have the same key: one statement cannot change a row twice.
 */
const upsertTurnsSql = byShape((dialect: Dialect, rows: number): string => {
  const row = `(${TURN_COLUMNS.replace(/[a-z_]+/g, "?")})`
  const sql = `INSERT INTO turns (${TURN_COLUMNS}) VALUES ${Array.from({ length: rows }, () => row).join(", ")}
    ON CONFLICT (worker_id, turn) DO UPDATE SET ${
    TURN_COLUMNS.split(", ").slice(2).map((column) => `${column} = excluded.${column}`).join(", ")
  }`
  return dialect === "pg" ? numbered(sql) : sql
})

/**
 * The SELECT of a list page filtered by `pairs` metadata pairs (and maybe a
 * status). The first pair drives: the page is a range of the
 * `worker_metadata` primary key from (key, value, cursor), in id order; each
 * Worker found is looked up by id and each further pair is one key lookup.
 * `CROSS JOIN` keeps SQLite from starting at `workers` instead. PostgreSQL
 * planned the join as a merge join walking `workers` from its first id up
 * to the cursor (O(the page's position)); a lateral lookup per pair found,
 * kept from being flattened back into a join by `OFFSET 0`, is a nested
 * loop of `limit` index lookups. Placeholders in parameter order: key,
 * value, cursor, status, the further pairs, limit.
 */
const listByMetadataSql = byShape((dialect: Dialect, pairs: number, byStatus: boolean): string => {
  const more = Array.from({ length: pairs - 1 }, (_, i) => {
    const m = `m${i + 2}`
    return ` AND EXISTS (SELECT 1 FROM worker_metadata AS ${m}
      WHERE ${m}.key = ? AND ${m}.value = ? AND ${m}.worker_id = m.worker_id)`
  })
  if (dialect === "pg") {
    // Numbered by hand: the status is written before the pairs but comes after them.
    let n = byStatus ? 4 : 3
    const further = more.join("").replace(/\?/g, () => `$${++n}`)
    return `SELECT ${W_WORKER_COLUMNS} FROM worker_metadata AS m
      CROSS JOIN LATERAL (SELECT ${WORKER_COLUMNS} FROM workers
        WHERE id = m.worker_id${byStatus ? " AND status = $4" : ""} OFFSET 0) AS w
      WHERE m.key = $1 AND m.value = $2 AND m.worker_id > $3${further}
      ORDER BY m.worker_id LIMIT $${n + 1}`
  }
  return `SELECT ${W_WORKER_COLUMNS} FROM worker_metadata AS m CROSS JOIN workers AS w ON w.id = m.worker_id
    WHERE m.key = ? AND m.value = ? AND m.worker_id > ?${byStatus ? " AND w.status = ?" : ""}${more.join("")}
    ORDER BY m.worker_id LIMIT ?`
})

/**
 * The store's read statements, apart so that tests can `EXPLAIN QUERY PLAN`
 * exactly what the store runs.
 */
export const readStatements = (sql: SqlClient.SqlClient) => {
  const dialect = dialectOf(sql)
  // A text's UTF-8 bytes without reading it: SQLite from the value's header, PostgreSQL from the datum's.
  const bytes = sql.literal(dialect === "pg" ? "octet_length(content)" : "length(CAST(content AS BLOB))")
  return {
    allWorkers: () => sql`SELECT ${sql.literal(WORKER_COLUMNS)}, idempotency_key FROM workers ORDER BY id`,
    workerByKey: (key: string) =>
      sql`SELECT ${sql.literal(WORKER_COLUMNS)} FROM workers WHERE idempotency_key = ${key}`,
    workerById: (workerId: string) =>
      sql`SELECT ${sql.literal(WORKER_COLUMNS)}, idempotency_key FROM workers WHERE id = ${workerId}`,
    queueOf: (workerId: string) =>
      sql`SELECT id, kind, at, ${bytes} AS bytes FROM queued_inputs
        WHERE worker_id = ${workerId} ORDER BY id`,
    // Covered by workers_status_id: ids only, in its order.
    busyWorkers: () => sql`SELECT id FROM workers WHERE status = 'busy' ORDER BY id`,
    // In primary-key order, so DISTINCT needs no sort.
    queuedWorkers: () => sql`SELECT DISTINCT worker_id AS id FROM queued_inputs ORDER BY worker_id`,
    // Four rows, kept by triggers (migration 3).
    counts: () => sql`SELECT status, count FROM worker_counts`,
    // The primary key's last entry.
    lastWorkerId: () => sql`SELECT max(id) AS value FROM workers`,
    // The WHERE term of the partial index workers_ended, as written there, so
    // that this is a range of it from the oldest; LIMIT -1 would mean none.
    expired: (before: string, limit: number) =>
      sql`SELECT id FROM workers WHERE status IN ('stopped', 'failed') AND updated_at < ${before}
        ORDER BY updated_at, id LIMIT ${Math.max(0, limit)}`,
    // Sizes only: a queued input's content stays on disk until its turn starts.
    allQueued: () => sql`SELECT worker_id, id, kind, at, ${bytes} AS bytes FROM queued_inputs ORDER BY worker_id, id`,
    queuedContent: (workerId: string, id: number) =>
      sql`SELECT content AS value FROM queued_inputs WHERE worker_id = ${workerId} AND id = ${id}`,
    // The unique key's one row.
    inputReceipt: (workerId: string, inputId: string) =>
      sql`SELECT status, turn, last_seq, queued, updated_at, entry_seq, queue_position FROM input_receipts
        WHERE worker_id = ${workerId} AND input_id = ${inputId}`,
    // `id > ''` holds for every id, so one statement shape serves the first page too.
    listWorkers: ({ after = "", limit, metadata, status }: ListWorkersQuery) => {
      const pairs = Object.entries(metadata ?? {})
      const first = pairs[0]
      if (first !== undefined) {
        // In the order of the statement's placeholders.
        const text = indexText(dialect)
        const params: Array<string | number> = [text(first[0]), text(first[1]), after]
        if (status !== undefined) params.push(status)
        for (const [key, value] of pairs.slice(1)) params.push(text(key), text(value))
        params.push(limit)
        return sql.unsafe<Row>(listByMetadataSql(dialect, pairs.length, status !== undefined), params)
      }
      return status === undefined
        ? sql`SELECT ${sql.literal(WORKER_COLUMNS)} FROM workers WHERE id > ${after} ORDER BY id LIMIT ${limit}`
        : sql`SELECT ${sql.literal(WORKER_COLUMNS)} FROM workers
            WHERE status = ${status} AND id > ${after} ORDER BY id LIMIT ${limit}`
    },
    transcript: (workerId: string, after: number, limit: number) =>
      sql`SELECT ${sql.literal(ENTRY_COLUMNS)} FROM entries
        WHERE worker_id = ${workerId} AND seq > ${after} ORDER BY seq LIMIT ${limit}`,
    // Sizes without the contents: SQLite reads a value's length from its header.
    contentSizes: (workerId: string, after: number, limit: number) =>
      sql`SELECT ${bytes} AS bytes FROM entries
        WHERE worker_id = ${workerId} AND seq > ${after} ORDER BY seq LIMIT ${limit}`,
    turn: (workerId: string, turn: number) =>
      sql`SELECT ${sql.literal(TURN_COLUMNS)} FROM turns WHERE worker_id = ${workerId} AND turn = ${turn}`,
    // Whether a delete has batches left: one row, or none.
    anyEntry: (workerId: string) => sql`SELECT seq FROM entries WHERE worker_id = ${workerId} LIMIT 1`,
    anyTurn: (workerId: string) => sql`SELECT turn FROM turns WHERE worker_id = ${workerId} LIMIT 1`
  }
}

const decodeSizes = Schema.decodeUnknown(Schema.Array(Schema.Struct({ bytes: Schema.Int })))

/** How many rows of `sizes` fit in `maxBytes`, at least one. */
const fitting = (sizes: ReadonlyArray<{ readonly bytes: number }>, maxBytes: number): number => {
  let total = 0
  for (let i = 0; i < sizes.length; i++) {
    total += sizes[i]!.bytes
    if (total > maxBytes) return Math.max(1, i)
  }
  return sizes.length
}

/** What a dialect tells the shared store about its database. */
export interface SqlStoreOptions {
  /** `RuntimeInfo.store`: `sqlite`, `postgres`. */
  readonly kind: string
  /** How messages name the store, e.g. `SQLite store /var/lib/runtime.db`. */
  readonly label: string
  /** What else a runtime with another id may be started on: `file`, `database`. */
  readonly place: string
  /** A database error's own message, found under the `SqlError` / `ParseError` wrappers. */
  readonly errorMessage: (error: unknown) => string
  /** Runs before each write transaction; failing it fails the writes (e.g. the file is gone). */
  readonly beforeWrite?: Effect.Effect<void, StoreError> | undefined
  /** Runs after each write transaction, before the writes are answered. */
  readonly afterWrite?: Effect.Effect<void, StoreError> | undefined
  /** Why the store can no longer be used, if it cannot. */
  readonly failure?: (() => string | undefined) | undefined
}

/**
 * The store over the `SqlClient` in context, whose schema the dialect has
 * brought up to date. Commits run on the store's own writer fiber (group
 * commit): never call `commit` inside a transaction of the same client,
 * which would wait on itself.
 */
export const makeSqlStore = (
  options: SqlStoreOptions
): Effect.Effect<RuntimeStoreService, never, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const { label } = options
    const sql = yield* SqlClient.SqlClient
    const dialect = dialectOf(sql)
    const reads = readStatements(sql)
    const writes = writeStatements(dialect)
    const text = freeText(dialect)

    const failed = (operation: string) => (error: unknown) =>
      new StoreError({ message: `${label}: ${operation} failed: ${options.errorMessage(error)}`, cause: error })

    // SQLite only: PostgreSQL ends a transaction whose COMMIT fails. Holds the
    // connection while it runs, so it cannot end another fiber's transaction.
    const rollbackIfOpen = dialect === "sqlite"
      ? Effect.scoped(
        Effect.flatMap(sql.reserve, (connection) => connection.executeUnprepared("ROLLBACK", [], undefined))
      ).pipe(Effect.ignore)
      : Effect.void

    /**
     * Every failure as a `StoreError`. `withTransaction` turns a failed COMMIT
     * into a defect and leaves the transaction open (a deferred constraint, a
     * full disk); closing it keeps the next commit from failing too.
     */
    const asStoreError = (operation: string) => <A>(effect: Effect.Effect<A, SqlError | ParseError | StoreError>) =>
      effect.pipe(
        Effect.catchTags({ SqlError: failed(operation), ParseError: failed(operation) }),
        Effect.catchAllDefect((defect) =>
          Predicate.isTagged(defect, "SqlError")
            ? Effect.zipRight(rollbackIfOpen, Effect.fail(failed(operation)(defect)))
            : Effect.die(defect)
        )
      )

    // Fixed SQL with positional parameters: nothing is compiled or
    // schema-encoded per commit. The commit path runs once or twice per
    // input, and JS work between statements measurably slows even the native
    // COMMIT (docs/benchmarks.md).
    /**
     * The changes of consecutive commits, in one transaction as a few
     * statements whatever their number: each statement is a round trip to
     * PostgreSQL. One UPDATE of the Workers (a Worker's last state in the
     * batch wins), one INSERT of every entry (in order), one upsert of the
     * turns (a record's last state wins), then the queues change by change.
     */
    const commitChanges = (changes: ReadonlyArray<Change>) =>
      Effect.gen(function*() {
        const workers = new Map<string, Worker>()
        for (const { worker } of changes) workers.set(worker.id, worker)
        // In id order: concurrent writers (cluster mode) lock rows in one order.
        const ids = workers.size === 1 ? [...workers.keys()] : [...workers.keys()].sort()
        const workerParams: Array<Param> = []
        for (const id of ids) workerParams.push(...workerValues(workers.get(id)!, text))
        const updated = yield* changesOf(
          dialect,
          ids.length === 1
            ? yield* sql.unsafe(writes.updateWorker, [...workerParams.slice(1), ids[0]!]).raw
            : yield* sql.unsafe(writes.updateWorkers(ids.length), workerParams).raw
        )
        if (updated !== ids.length) {
          return yield* new StoreError({
            message: ids.length === 1
              ? `${label}: no Worker ${ids[0]} to commit to`
              : `${label}: ${ids.length - updated} of the Workers ${ids.join(", ")} not there to commit to`
          })
        }

        const entries: Array<readonly [string, TranscriptEntry]> = []
        const turns = new Map<string, readonly [string, Turn]>()
        for (const change of changes) {
          const workerId = change.worker.id
          for (const entry of change.entries) entries.push([workerId, entry])
          // `turn:id`: the number ends at the first colon, so no two keys collide.
          for (const turn of change.turns ?? []) turns.set(`${turn.turn}:${workerId}`, [workerId, turn])
        }
        for (const chunk of chunks(entries, ENTRIES_PER_INSERT)) {
          const params: Array<Param> = []
          for (const [workerId, entry] of chunk) {
            params.push(
              workerId,
              entry.seq,
              entry.at,
              entry.role,
              text(entry.content),
              entry.turn,
              entry.outcome ?? null
            )
          }
          yield* sql.unsafe(writes.insertEntries(chunk.length), params)
        }
        for (const chunk of chunks([...turns.values()], ENTRIES_PER_INSERT)) {
          const params: Array<Param> = []
          for (const [workerId, turn] of chunk) params.push(...turnValues(workerId, turn, text))
          yield* sql.unsafe(writes.upsertTurns(chunk.length), params)
        }

        for (const { dequeue, enqueue, receipt, worker } of changes) {
          // Removed before one is added, as the memory store filters then appends.
          for (const id of dequeue ?? []) yield* sql.unsafe(writes.deleteQueued, [worker.id, id])
          if (enqueue !== undefined) {
            yield* sql.unsafe(writes.insertQueued, [
              worker.id,
              enqueue.id,
              text(enqueue.content),
              enqueue.kind,
              enqueue.at
            ])
          }
          if (receipt !== undefined) {
            yield* sql.unsafe(writes.insertReceipt, receiptValues(worker.id, receipt))
            yield* sql.unsafe(writes.trimReceipts, [worker.id, worker.id])
          }
        }
      })

    /** The last step of a delete: everything the batches did not take, and the row last. */
    const deleteRest = (workerId: string) =>
      Effect.gen(function*() {
        // First: it finds the metadata pairs through the Worker row.
        yield* sql.unsafe(writes.deleteMetadata, dialect === "pg" ? [workerId] : [workerId, workerId])
        yield* sql.unsafe(writes.deleteQueue, [workerId])
        // At most RECEIPTS_PER_WORKER rows.
        yield* sql.unsafe(writes.deleteReceipts, [workerId])
        // What the batches left: what a commit added meanwhile, if anything.
        yield* sql.unsafe(writes.deleteTurns, [workerId])
        yield* sql.unsafe(writes.deleteEntries, [workerId])
        yield* sql.unsafe(writes.deleteWorker, [workerId])
      })

    const insertWorker = (worker: Worker, idempotencyKey: string | undefined) =>
      Effect.gen(function*() {
        const inserted = yield* changesOf(
          dialect,
          yield* sql.unsafe(writes.insertWorker, [...workerValues(worker, text), idempotencyKey ?? null]).raw
        )
        if (inserted === 0) return
        if (dialect === "pg") {
          const pairs = Object.entries(worker.metadata)
          const text = indexText(dialect)
          yield* sql.unsafe(writes.insertMetadata, [
            worker.id,
            pairs.map(([key]) => text(key)),
            pairs.map(([, value]) => text(value))
          ])
        } else {
          yield* sql.unsafe(writes.insertMetadata, [worker.id, JSON.stringify(worker.metadata)])
        }
      })

    const writeOne = (write: Write): Effect.Effect<unknown, SqlError | ParseError | StoreError> => {
      switch (write._tag) {
        case "Insert":
          return insertWorker(write.worker, write.idempotencyKey)
        case "Commit":
          return commitChanges([write.change])
        case "DeleteEntries":
          return sql.unsafe(writes.deleteEntriesBatch, [write.workerId, write.workerId])
        case "DeleteTurns":
          return sql.unsafe(writes.deleteTurnsBatch, [write.workerId, write.workerId])
        case "DeleteWorker":
          return deleteRest(write.workerId)
      }
    }

    /** A batch's writes in order, consecutive commits merged. */
    const writeAll = (batch: ReadonlyArray<Write>) =>
      Effect.gen(function*() {
        let run: Array<Change> = []
        for (const write of batch) {
          if (write._tag === "Commit") {
            run.push(write.change)
            continue
          }
          if (run.length > 0) yield* commitChanges(run)
          run = []
          yield* writeOne(write)
        }
        if (run.length > 0) yield* commitChanges(run)
      })

    const runtimeId = (requested: string | undefined, generate: () => string) =>
      sql.withTransaction(Effect.gen(function*() {
        const read = Effect.map(
          Effect.flatMap(sql`SELECT value FROM meta WHERE key = 'runtime_id'`, decodeValues),
          (rows) => rows[0]?.value
        )
        let stored = yield* read
        if (stored === undefined) {
          const id = requested ?? generate()
          // The runners of a cluster start at once: the first one's id is the cluster's.
          yield* sql`INSERT INTO meta (key, value) VALUES ('runtime_id', ${id}) ON CONFLICT (key) DO NOTHING`
          stored = (yield* read) ?? id
          if (stored === id) return id
        }
        if (requested !== undefined && requested !== stored) {
          return yield* new StoreError({
            message: `the ${label} belongs to runtime ${JSON.stringify(stored)}, ` +
              `but runtime id ${JSON.stringify(requested)} was requested (--runtime-id / WORKER_RUNTIME_ID); ` +
              `start without one, with ${JSON.stringify(stored)}, or on another ${options.place}`
          })
        }
        return stored
      }))

    const beforeWrite = options.beforeWrite ?? Effect.void
    const afterWrite = options.afterWrite ?? Effect.void

    // Every write (inserts, commits, the steps of a delete) goes through this
    // one writer, so that a long delete is a series of short transactions
    // that the commits of other Workers interleave with.
    const writer = yield* makeGroupCommit(
      (batch: ReadonlyArray<Write>) =>
        // Each commit's rows go in one transaction; concurrent commits may share it.
        Effect.zipRight(
          beforeWrite,
          asStoreError(batch.length === 1 ? operationOf(batch[0]!) : `committing ${batch.length} changes`)(
            sql.withTransaction(writeAll(batch))
          )
        ).pipe(Effect.zipLeft(afterWrite)),
      GROUP_COMMIT_MAX
    )

    /** Whether `read` (one of `anyEntry`, `anyTurn`) finds a row. */
    const remains = (read: Effect.Effect<ReadonlyArray<unknown>, SqlError>, workerId: string) =>
      asStoreError(`deleting Worker ${workerId}`)(Effect.map(read, (rows) => rows.length > 0))

    /**
     * A Worker's transcript and turns can be millions of rows: deleting them
     * in one transaction would hold the writer, and every other Worker's
     * commit, for seconds. So they go DELETE_BATCH rows per transaction, each
     * queued behind the commits waiting at that moment; then the rest (the
     * row, its metadata pairs, queue and key, and whatever a late commit
     * added) in one last transaction. Until then the Worker is still stored,
     * its transcript shrinking from the start: a delete that fails half-way
     * (or a crash) leaves it so, and deleting it again finishes.
     */
    const deleteWorker = (workerId: string) =>
      Effect.gen(function*() {
        while (yield* remains(reads.anyEntry(workerId), workerId)) {
          yield* writer.write({ _tag: "DeleteEntries", workerId })
        }
        while (yield* remains(reads.anyTurn(workerId), workerId)) {
          yield* writer.write({ _tag: "DeleteTurns", workerId })
        }
        yield* writer.write({ _tag: "DeleteWorker", workerId })
      })

    const store: RuntimeStoreService = {
      kind: options.kind,
      durable: true,
      runtimeId: (requested, generate) => asStoreError("reading the runtime id")(runtimeId(requested, generate)),
      loadWorkers: asStoreError("loading Workers")(
        Effect.gen(function*() {
          const rows = yield* decodeStoredWorkers(yield* reads.allWorkers())
          // Every queue in one read, in (worker_id, id) order: the primary key's.
          const queues = new Map<string, Array<QueuedRef>>()
          for (const { worker_id, ...input } of yield* decodeQueued(yield* reads.allQueued())) {
            let queue = queues.get(worker_id)
            if (queue === undefined) {
              queue = []
              queues.set(worker_id, queue)
            }
            queue.push(input)
          }
          return rows.map((row): StoredWorker => ({
            worker: workerOfRow(row),
            idempotencyKey: row.idempotency_key ?? undefined,
            queue: queues.get(row.id) ?? []
          }))
        })
      ),
      getWorker: (workerId) =>
        asStoreError(`reading Worker ${workerId}`)(
          // One read transaction: the row and its queue as of the same commit.
          sql.withTransaction(Effect.gen(function*() {
            // PostgreSQL's default (read committed) takes a snapshot per statement.
            if (dialect === "pg") yield* sql`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ`
            const row = (yield* decodeStoredWorkers(yield* reads.workerById(workerId)))[0]
            if (row === undefined) return undefined
            const stored: StoredWorker = {
              worker: workerOfRow(row),
              idempotencyKey: row.idempotency_key ?? undefined,
              queue: yield* decodeQueue(yield* reads.queueOf(workerId))
            }
            return stored
          }))
        ),
      workerByKey: (idempotencyKey) =>
        asStoreError(`reading idempotency key ${idempotencyKey}`)(
          Effect.map(Effect.flatMap(reads.workerByKey(idempotencyKey), decodeWorkers), (rows) => rows[0])
        ),
      busyWorkers: asStoreError("listing busy Workers")(Effect.flatMap(reads.busyWorkers(), decodeIds)),
      queuedWorkers: asStoreError("listing Workers with queued inputs")(
        Effect.flatMap(reads.queuedWorkers(), decodeIds)
      ),
      counts: asStoreError("counting Workers")(
        Effect.map(Effect.flatMap(reads.counts(), decodeCounts), countsOfRows)
      ),
      lastWorkerId: asStoreError("reading the last Worker id")(
        Effect.map(Effect.flatMap(reads.lastWorkerId(), decodeMaybeValue), ([{ value }]) => value ?? undefined)
      ),
      expired: (before, limit) =>
        asStoreError("listing expired Workers")(Effect.flatMap(reads.expired(before, limit), decodeIds)),
      failure: options.failure ?? (() => undefined),
      insertWorker: (worker, idempotencyKey) =>
        Effect.gen(function*() {
          yield* writer.write({ _tag: "Insert", worker, idempotencyKey })
          if (idempotencyKey === undefined) return CREATED
          // Committed: the row holding the key is this Worker's, or the one that took it first.
          const rows = yield* asStoreError(`reading idempotency key ${idempotencyKey}`)(
            Effect.flatMap(reads.workerByKey(idempotencyKey), decodeWorkers)
          )
          const holder = rows[0]
          if (holder === undefined) {
            return yield* new StoreError({ message: `${label}: Worker ${worker.id} was not stored` })
          }
          return holder.id === worker.id ? CREATED : keyTakenBy(holder)
        }),
      commit: (change) => writer.write({ _tag: "Commit", change }),
      inputReceipt: (workerId, inputId) =>
        asStoreError(`reading input ${inputId} of Worker ${workerId}`)(
          Effect.map(Effect.flatMap(reads.inputReceipt(workerId, inputId), decodeReceipts), (rows) => {
            const row = rows[0]
            return row === undefined ? undefined : receiptOfRow(inputId, row)
          })
        ),
      queuedContent: (workerId, id) =>
        asStoreError(`reading queued input ${id} of Worker ${workerId}`)(
          Effect.flatMap(
            Effect.flatMap(reads.queuedContent(workerId, id), decodeValues),
            (rows) =>
              rows[0] === undefined
                ? Effect.fail(new StoreError({ message: `no queued input ${id} of Worker ${workerId}` }))
                : Effect.succeed(rows[0].value)
          )
        ),
      transcript: (workerId, { after, limit, maxBytes }) =>
        asStoreError(`reading the transcript of Worker ${workerId}`)(
          Effect.gen(function*() {
            const count = maxBytes === undefined
              ? limit
              : fitting(yield* decodeSizes(yield* reads.contentSizes(workerId, after, limit)), maxBytes)
            return yield* decodeEntries(yield* reads.transcript(workerId, after, count))
          })
        ),
      turn: (workerId, turn) =>
        asStoreError(`reading turn ${turn} of Worker ${workerId}`)(
          Effect.map(Effect.flatMap(reads.turn(workerId, turn), decodeTurns), (rows) => {
            const row = rows[0]
            return row === undefined ? undefined : turnOfRow(row)
          })
        ),
      listWorkers: (query) => asStoreError("listing Workers")(Effect.flatMap(reads.listWorkers(query), decodeWorkers)),
      deleteWorker
    }
    return store
  })
const chunks = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

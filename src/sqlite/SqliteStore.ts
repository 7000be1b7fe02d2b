/**
 * The durable `RuntimeStore`: one SQLite file through `@effect/sql`.
 *
 * The process holds the file exclusively for its whole life, so a second
 * runtime on the same file is refused at start instead of writing beside the
 * first. Each `commit` is one transaction, made durable before it returns
 * (WAL, `synchronous = FULL`). docs/durability.md explains the choices.
 */
import { accessSync, constants, mkdirSync, statSync } from "node:fs"
import { dirname } from "node:path"

import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { ParseError } from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"

import { Metadata, RuntimeId, TranscriptEntry, type Worker, WorkerId, WorkerStatus } from "../Domain.js"
import { type ListWorkersQuery, RuntimeStore, type RuntimeStoreService, StoreError } from "../RuntimeStore.js"
import { makeGroupCommit } from "./GroupCommit.js"
import { MIGRATIONS_TABLE, runMigrations } from "./Migrations.js"

/** Commits that may share one transaction. */
const GROUP_COMMIT_MAX = 256
/** What the WAL is truncated to after a checkpoint. */
const WAL_SIZE_LIMIT = 64 * 1024 * 1024
/** How often the file's identity is checked when nothing is written. */
const IDENTITY_CHECK_MS = 1000

export interface SqliteStoreOptions {
  /** The database file; its directory is created when missing. */
  readonly filename: string
}

// --- opening the file --------------------------------------------------------

const messageOf = (error: unknown): string =>
  Predicate.hasProperty(error, "message") && Predicate.isString(error.message) ? error.message : String(error)

/** better-sqlite3's error and its `SQLITE_*` code, found under `SqlError` / `MigrationError` wrappers. */
const nativeError = (error: unknown): { readonly code: string | undefined; readonly message: string } => {
  let current: unknown = error
  for (let depth = 0; depth < 5 && Predicate.isObject(current); depth++) {
    const code = Predicate.hasProperty(current, "code") ? current.code : undefined
    if (Predicate.isString(code) && code.startsWith("SQLITE_")) return { code, message: messageOf(current) }
    current = Predicate.hasProperty(current, "cause") ? current.cause : undefined
  }
  return { code: undefined, message: messageOf(error) }
}

const openReason = (error: unknown): string => {
  if (Predicate.isString(error)) return error
  const { code = "", message } = nativeError(error)
  if (code === "SQLITE_NOTADB") return "the file is not a SQLite database"
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) {
    return "the database is in use by another process (another runtime has it open)"
  }
  if (code.startsWith("SQLITE_READONLY")) return "the file is read-only; the store must be writable"
  return code === "" ? message : `${message} (${code})`
}

const openError = (filename: string, error: unknown) =>
  new StoreError({ message: `cannot open the SQLite store ${filename}: ${openReason(error)}`, cause: error })

const fsStep = <A>(filename: string, what: string, run: () => A) =>
  Effect.try({ try: run, catch: (error) => openError(filename, `${what} (${messageOf(error)})`) })

/**
 * `mkdirSync(dir, { recursive: true })` spins forever on Node 20 when a level
 * answers ENOENT although its parent exists (e.g. under /proc), so create the
 * missing levels one by one and let any failure surface.
 */
const ensureDirectory = (dir: string): void => {
  const missing: Array<string> = []
  let current = dir
  while (statSync(current, { throwIfNoEntry: false }) === undefined) {
    missing.push(current)
    const parent = dirname(current)
    if (parent === current) break
    current = parent
  }
  // An existing non-directory: let mkdir report it (EEXIST / ENOTDIR).
  if (missing.length === 0 && !statSync(dir).isDirectory()) mkdirSync(dir)
  for (const level of missing.reverse()) mkdirSync(level)
}

/**
 * Checks what SQLite would otherwise report vaguely or not at all: SQLite
 * silently opens an unwritable file read-only, and needs to create `-wal` next
 * to the file.
 */
const checkPath = (filename: string): Effect.Effect<void, StoreError> =>
  Effect.gen(function*() {
    const dir = dirname(filename)
    yield* fsStep(filename, `cannot create its directory ${dir}`, () => ensureDirectory(dir))
    const stat = yield* fsStep(filename, "cannot inspect it", () => statSync(filename, { throwIfNoEntry: false }))
    if (stat?.isDirectory() === true) return yield* openError(filename, "it is a directory, not a database file")
    if (stat !== undefined) {
      yield* fsStep(filename, "the file is not readable and writable by this process; the store must be writable", () =>
        accessSync(filename, constants.R_OK | constants.W_OK))
    }
    yield* fsStep(filename, `its directory ${dir} is not writable (SQLite creates the -wal file there)`, () =>
      accessSync(dir, constants.W_OK))
  })

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
  ...(row.stop_reason === null ? {} : { stopReason: row.stop_reason })
})

/**
 * A Worker's column values in `WORKER_COLUMNS` order, for the fixed INSERT
 * and UPDATE statements (the one hand-written mapping the other way).
 */
const workerValues = (worker: Worker): Array<string | number | null> => [
  worker.id,
  worker.runtimeId,
  worker.profile,
  worker.status,
  worker.createdAt,
  worker.updatedAt,
  worker.turn,
  worker.lastSeq,
  JSON.stringify(worker.metadata),
  worker.stopReason ?? null
]

const decodeWorkerRows = Schema.decodeUnknown(Schema.Array(WorkerRow))
const decodeWorkers = (rows: unknown) => Effect.map(decodeWorkerRows(rows), (decoded) => decoded.map(workerOfRow))
const decodeEntries = Schema.decodeUnknown(Schema.Array(TranscriptEntry))
const decodeValues = Schema.decodeUnknown(Schema.Array(Schema.Struct({ value: Schema.String })))
const decodeJournalMode = Schema.decodeUnknown(Schema.Tuple(Schema.Struct({ journal_mode: Schema.String })))
const decodeRunResult = Schema.decodeUnknown(Schema.Struct({ changes: Schema.Number }))

const WORKER_COLUMNS = "id, runtime_id, profile, status, created_at, updated_at, turn, last_seq, metadata, stop_reason"
const ENTRY_COLUMNS = "seq, at, role, content, turn"
/** Rows per INSERT: 6 parameters each stays far below SQLite's 32766-parameter limit. */
const ENTRIES_PER_INSERT = 500

const INSERT_WORKER = `INSERT INTO workers (${WORKER_COLUMNS}) VALUES (${WORKER_COLUMNS.replace(/[a-z_]+/g, "?")})`
// Columns as in WORKER_COLUMNS, with `id = ?` moved from the front to the WHERE.
const UPDATE_WORKER = `UPDATE workers SET ${
  WORKER_COLUMNS.split(", ").slice(1).map((column) => `${column} = ?`).join(", ")
} WHERE id = ?`

/** The multi-row INSERT for `rows` entries; one string per size, so statements are reused. */
const insertEntriesSql = (rows: number): string => {
  let cached = insertEntriesCache.get(rows)
  if (cached === undefined) {
    cached = `INSERT INTO entries (worker_id, seq, at, role, content, turn) VALUES ${
      Array.from({ length: rows }, () => "(?, ?, ?, ?, ?, ?)").join(", ")
    }`
    insertEntriesCache.set(rows, cached)
  }
  return cached
}
const insertEntriesCache = new Map<number, string>()

/**
 * The store's read statements, apart so that tests can `EXPLAIN QUERY PLAN`
 * exactly what the store runs.
 */
export const readStatements = (sql: SqlClient.SqlClient) => ({
  allWorkers: () => sql`SELECT ${sql.literal(WORKER_COLUMNS)} FROM workers ORDER BY id`,
  // `id > ''` holds for every id, so one statement shape serves the first page too.
  listWorkers: ({ after = "", limit, status }: ListWorkersQuery) =>
    status === undefined
      ? sql`SELECT ${sql.literal(WORKER_COLUMNS)} FROM workers WHERE id > ${after} ORDER BY id LIMIT ${limit}`
      : sql`SELECT ${sql.literal(WORKER_COLUMNS)} FROM workers
            WHERE status = ${status} AND id > ${after} ORDER BY id LIMIT ${limit}`,
  transcript: (workerId: string, after: number, limit: number) =>
    sql`SELECT ${sql.literal(ENTRY_COLUMNS)} FROM entries
        WHERE worker_id = ${workerId} AND seq > ${after} ORDER BY seq LIMIT ${limit}`,
  // Sizes without the contents: SQLite reads a value's length from its header.
  contentSizes: (workerId: string, after: number, limit: number) =>
    sql`SELECT length(CAST(content AS BLOB)) AS bytes FROM entries
        WHERE worker_id = ${workerId} AND seq > ${after} ORDER BY seq LIMIT ${limit}`
})

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

/** Refuses a SQLite database that some other program made: we would scribble our tables into it. */
const refuseForeign = (sql: SqlClient.SqlClient) =>
  Effect.gen(function*() {
    const rows = yield* sql`SELECT name AS value FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
    const tables = (yield* decodeValues(rows)).map((row) => row.value)
    if (tables.length > 0 && !tables.includes(MIGRATIONS_TABLE)) {
      return yield* Effect.fail(
        `it is a SQLite database of something else (tables: ${tables.join(", ")}), not a worker-runtime store`
      )
    }
  })

/** Locks the file, enters WAL, migrates, and proves the file writable, before the first request. */
const prepareFile = (sql: SqlClient.SqlClient) =>
  Effect.gen(function*() {
    // better-sqlite3 waits 5 s for a lock by default; ours is held until close,
    // so a second opener should learn that at once.
    yield* sql`PRAGMA busy_timeout = 0`
    // Set before the first access to the file: then WAL keeps its index in heap
    // memory (no -shm file) and the first access takes an exclusive lock on the
    // file that is held until the connection closes.
    yield* sql`PRAGMA locking_mode = EXCLUSIVE`
    const [{ journal_mode }] = yield* Effect.flatMap(sql`PRAGMA journal_mode = WAL`, decodeJournalMode)
    if (journal_mode !== "wal") return yield* Effect.fail(`could not enter WAL mode (journal_mode is ${journal_mode})`)
    // Every commit waits for the WAL to reach the disk: a 2xx survives power loss.
    yield* sql`PRAGMA synchronous = FULL`
    // Checkpoint the WAL into the database every 1000 pages (about 4 MiB), and
    // truncate it back to at most 64 MiB after a checkpoint, so that it does not
    // keep the size of its largest burst (docs/durability.md).
    yield* sql`PRAGMA wal_autocheckpoint = 1000`
    yield* sql`PRAGMA journal_size_limit = ${sql.literal(String(WAL_SIZE_LIMIT))}`
    yield* refuseForeign(sql)
    yield* runMigrations
    // A real write, not just a lock: a file SQLite opened read-only fails here.
    const now = new Date(yield* Clock.currentTimeMillis).toISOString()
    yield* sql`INSERT INTO meta (key, value) VALUES ('last_opened_at', ${now})
               ON CONFLICT (key) DO UPDATE SET value = excluded.value`
  })

/**
 * The store over the `SqlClient` in context, which must be SQLite. Prepares the
 * file first (lock, WAL, migrations). Commits run on the store's own writer
 * fiber (group commit): never call `commit` inside a transaction of the same
 * client, which would wait on itself. For the exclusive lock without shared
 * memory, the client must not have entered WAL itself (`disableWAL: true`), as
 * `SqliteStoreLive` does.
 */
export const makeSqliteStore = (
  options: SqliteStoreOptions
): Effect.Effect<RuntimeStoreService, StoreError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const { filename } = options
    const sql = yield* SqlClient.SqlClient
    yield* prepareFile(sql).pipe(
      Effect.catchAll((error) => Effect.fail(openError(filename, error))),
      // The Migrator turns a failing migration into a defect.
      Effect.catchAllDefect((defect) => Effect.fail(openError(filename, defect)))
    )
    const reads = readStatements(sql)

    const failed = (operation: string) => (error: unknown) =>
      new StoreError({
        message: `SQLite store ${filename}: ${operation} failed: ${nativeError(error).message}`,
        cause: error
      })

    // Holds the connection while it runs, so it cannot end another fiber's transaction.
    const rollbackIfOpen = Effect.scoped(
      Effect.flatMap(sql.reserve, (connection) => connection.executeUnprepared("ROLLBACK", [], undefined))
    ).pipe(Effect.ignore)

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

    // Fixed SQL with positional parameters: the statement is prepared once and
    // nothing is compiled or schema-encoded per commit. The commit path runs
    // once or twice per input, and JS work between statements measurably
    // slows even the native COMMIT (docs/benchmarks.md).
    const updateWorker = (worker: Worker) =>
      Effect.gen(function*() {
        const result = yield* decodeRunResult(
          yield* sql.unsafe(UPDATE_WORKER, [...workerValues(worker).slice(1), worker.id]).raw
        )
        if (result.changes === 0) {
          return yield* new StoreError({ message: `SQLite store ${filename}: no Worker ${worker.id} to commit to` })
        }
      })

    const insertEntries = (workerId: string, entries: ReadonlyArray<TranscriptEntry>) =>
      Effect.forEach(
        chunks(entries, ENTRIES_PER_INSERT),
        (chunk) => {
          const params: Array<string | number> = []
          for (const entry of chunk) params.push(workerId, entry.seq, entry.at, entry.role, entry.content, entry.turn)
          return sql.unsafe(insertEntriesSql(chunk.length), params)
        },
        { discard: true }
      )

    const runtimeId = (requested: string | undefined, generate: () => string) =>
      sql.withTransaction(Effect.gen(function*() {
        const rows = yield* decodeValues(yield* sql`SELECT value FROM meta WHERE key = 'runtime_id'`)
        const stored = rows[0]?.value
        if (stored === undefined) {
          const id = requested ?? generate()
          yield* sql`INSERT INTO meta (key, value) VALUES ('runtime_id', ${id})`
          return id
        }
        if (requested !== undefined && requested !== stored) {
          return yield* new StoreError({
            message: `the SQLite store ${filename} belongs to runtime ${JSON.stringify(stored)}, ` +
              `but runtime id ${JSON.stringify(requested)} was requested (--runtime-id / WORKER_RUNTIME_ID); ` +
              `start without one, with ${JSON.stringify(stored)}, or on another file`
          })
        }
        return stored
      }))

    // Each commit's rows go in one transaction; concurrent commits may share it.
    // The file deleted or replaced under a running store: SQLite goes on
    // writing to the old inode, which nothing will ever read again. Noticed
    // after every commit (before it is acknowledged) and every second.
    const identity = fileIdentity(filename)
    let lost: string | undefined
    const checkIdentity = Effect.suspend(() => {
      if (lost !== undefined || identity === undefined) return Effect.void
      const now = fileIdentity(filename)
      if (now !== undefined && now.dev === identity.dev && now.ino === identity.ino) return Effect.void
      lost = now === undefined
        ? `the SQLite store ${filename} was deleted while the runtime ran; nothing more can be stored`
        : `the SQLite store ${filename} was replaced by another file while the runtime ran; nothing more can be stored`
      return Effect.logError(`${lost}. Stop the runtime, restore the file from a backup, and start it again.`)
    })
    const refuseIfLost = Effect.suspend(() =>
      lost === undefined ? Effect.void : Effect.fail(new StoreError({ message: lost }))
    )
    yield* Effect.forkScoped(
      Effect.repeat(checkIdentity, Schedule.spaced(IDENTITY_CHECK_MS)).pipe(
        // Real time, also under a test clock: this watches the file system.
        Effect.withClock(Clock.make())
      )
    )

    const commits = yield* makeGroupCommit(
      (batch: ReadonlyArray<{ readonly worker: Worker; readonly entries: ReadonlyArray<TranscriptEntry> }>) =>
        Effect.zipRight(
          refuseIfLost,
          asStoreError(
            batch.length === 1 ? `committing to Worker ${batch[0]!.worker.id}` : `committing ${batch.length} changes`
          )(
            sql.withTransaction(
              Effect.forEach(
                batch,
                ({ entries, worker }) => Effect.zipRight(updateWorker(worker), insertEntries(worker.id, entries)),
                { discard: true }
              )
            )
          )
        ).pipe(Effect.zipLeft(Effect.zipRight(checkIdentity, refuseIfLost))),
      GROUP_COMMIT_MAX
    )
    // A clean close leaves no WAL behind.
    yield* Effect.addFinalizer(() =>
      lost === undefined ? Effect.ignore(sql`PRAGMA wal_checkpoint(TRUNCATE)`) : Effect.void
    )

    const store: RuntimeStoreService = {
      kind: "sqlite",
      runtimeId: (requested, generate) => asStoreError("reading the runtime id")(runtimeId(requested, generate)),
      loadWorkers: asStoreError("loading Workers")(Effect.flatMap(reads.allWorkers(), decodeWorkers)),
      failure: () => lost,
      insertWorker: (worker) =>
        Effect.zipRight(
          refuseIfLost,
          asStoreError(`inserting Worker ${worker.id}`)(sql.unsafe(INSERT_WORKER, workerValues(worker)))
        ).pipe(Effect.zipLeft(Effect.zipRight(checkIdentity, refuseIfLost))),
      commit: (worker, entries) => commits.write({ worker, entries }),
      transcript: (workerId, { after, limit, maxBytes }) =>
        asStoreError(`reading the transcript of Worker ${workerId}`)(
          Effect.gen(function*() {
            const count = maxBytes === undefined
              ? limit
              : fitting(yield* decodeSizes(yield* reads.contentSizes(workerId, after, limit)), maxBytes)
            return yield* decodeEntries(yield* reads.transcript(workerId, after, count))
          })
        ),
      listWorkers: (query) => asStoreError("listing Workers")(Effect.flatMap(reads.listWorkers(query), decodeWorkers))
    }
    return store
  })

/** The device and inode of a file, or undefined when it is gone. */
const fileIdentity = (filename: string): { readonly dev: number; readonly ino: number } | undefined => {
  try {
    const stat = statSync(filename, { throwIfNoEntry: false })
    return stat === undefined ? undefined : { dev: stat.dev, ino: stat.ino }
  } catch {
    return undefined
  }
}

const chunks = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

/**
 * The SQLite store on `filename`, with its own client. Fails with a
 * `StoreError` naming the file when it cannot be used (not a database, a
 * directory, not writable, held by another process), never by starting over.
 */
export const SqliteStoreLive = (options: SqliteStoreOptions): Layer.Layer<RuntimeStore, StoreError> =>
  Layer.scoped(
    RuntimeStore,
    Effect.gen(function*() {
      yield* checkPath(options.filename)
      const client = yield* Layer.build(
        // WAL is entered by `makeSqliteStore`, after the exclusive locking mode.
        SqliteClient.layer({ filename: options.filename, disableWAL: true })
      ).pipe(
        Effect.catchAll((error) => Effect.fail(openError(options.filename, error))),
        // better-sqlite3 throws from its constructor, which the client does not catch.
        Effect.catchAllDefect((defect) => Effect.fail(openError(options.filename, defect)))
      )
      return yield* Effect.provide(makeSqliteStore(options), client)
    })
  )

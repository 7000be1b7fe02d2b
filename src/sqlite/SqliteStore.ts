/**
 * The durable `RuntimeStore` on one SQLite file: the file's part (its
 * modes, WAL, lock, identity); the store itself is src/sql/SqlStore.ts.
 *
 * The process holds the file exclusively for its whole life, so a second
 * runtime on the same file is refused at start instead of writing beside the
 * first. Each `commit` is one transaction, made durable before it returns
 * (WAL, `synchronous = FULL`); all writes go through one writer fiber, and
 * deleting a Worker is a series of bounded transactions, so that a large
 * delete never holds up other Workers' commits for long. docs/durability.md
 * explains the choices.
 */
import { accessSync, chmodSync, closeSync, constants, fchmodSync, mkdirSync, openSync, statSync } from "node:fs"
import { dirname } from "node:path"

import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Predicate from "effect/Predicate"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"

import { RuntimeStore, type RuntimeStoreService, StoreError } from "../RuntimeStore.js"
import { makeSqlStore } from "../sql/SqlStore.js"
import { MIGRATIONS_TABLE, runMigrations } from "./Migrations.js"

/** The read statements, for tests that check their query plans. */
export { readStatements } from "../sql/SqlStore.js"

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

/** The store's own files and directories: its user's alone (docs/security.md). */
const PRIVATE_FILE = 0o600
const PRIVATE_DIRECTORY = 0o700

/**
 * `mkdirSync(dir, { recursive: true })` spins forever on Node 20 when a level
 * answers ENOENT although its parent exists (e.g. under /proc), so create the
 * missing levels one by one and let any failure surface. Each level created
 * is 0700 whatever the umask; existing ones are left as they are.
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
  for (const level of missing.reverse()) {
    mkdirSync(level, { mode: PRIVATE_DIRECTORY })
    // The umask may have taken bits off mkdir's mode.
    chmodSync(level, PRIVATE_DIRECTORY)
  }
}

/**
 * Creates `filename` empty (SQLite's new database) with mode 0600 whatever the
 * umask, before SQLite opens it: SQLite would create it 0644 less the umask,
 * and gives the -wal, -shm and -journal files it creates beside it the mode
 * of the database file. False when the file exists already (created meanwhile).
 */
const createPrivateFile = (filename: string): boolean => {
  let fd: number
  try {
    fd = openSync(filename, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, PRIVATE_FILE)
  } catch (error) {
    if (Predicate.hasProperty(error, "code") && error.code === "EEXIST") return false
    throw error
  }
  try {
    fchmodSync(fd, PRIVATE_FILE)
  } finally {
    closeSync(fd)
  }
  return true
}

/** The permission bits of an existing file that others may use, or undefined when there is none or no such file. */
const openToOthers = (path: string): string | undefined => {
  const mode = statSync(path, { throwIfNoEntry: false })?.mode
  return mode === undefined || (mode & 0o077) === 0 ? undefined : (mode & 0o777).toString(8)
}

/**
 * One warning for an existing file that other users can read (or write),
 * which the store leaves as it is: the operator chose it. The -wal and -shm
 * files SQLite creates get the database file's mode, so only when the file is
 * private are leftover ones (a crash under an earlier version) checked.
 */
const warnIfOpen = (filename: string): Effect.Effect<void> =>
  Effect.suspend(() => {
    const mode = openToOthers(filename)
    if (mode !== undefined) {
      return Effect.logWarning(
        `the SQLite store ${filename} is open to other users (mode ${mode}), and so are the -wal and -shm ` +
          `files SQLite creates beside it with its mode: every transcript. Left as it is; ` +
          `chmod 600 ${filename} (and its -wal / -shm, if any) to keep it private`
      )
    }
    return Effect.forEach([`${filename}-wal`, `${filename}-shm`], (path) => {
      const leftover = openToOthers(path)
      return leftover === undefined ? Effect.void : Effect.logWarning(
        `${path} of the SQLite store is open to other users (mode ${leftover}). Left as it is; ` +
          `chmod 600 ${path} to keep it private`
      )
    }, { discard: true })
  }).pipe(Effect.catchAllDefect(() => Effect.void))

/**
 * Checks what SQLite would otherwise report vaguely or not at all: SQLite
 * silently opens an unwritable file read-only, and needs to create `-wal` next
 * to the file. Creates a missing file private (0600), and warns about an
 * existing one that others can read.
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
    const created = stat === undefined && (yield* fsStep(filename, "cannot create it", () =>
      createPrivateFile(filename)))
    if (!created) {
      yield* warnIfOpen(filename)
    }
  })

/** Refuses a SQLite database that some other program made: we would scribble our tables into it. */
const decodeValues = Schema.decodeUnknown(Schema.Array(Schema.Struct({ value: Schema.String })))
const decodeJournalMode = Schema.decodeUnknown(Schema.Tuple(Schema.Struct({ journal_mode: Schema.String })))

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
    // A clean close leaves no WAL behind (added first: it runs after the writer has stopped).
    yield* Effect.addFinalizer(() =>
      lost === undefined ? Effect.ignore(sql`PRAGMA wal_checkpoint(TRUNCATE)`) : Effect.void
    )
    return yield* makeSqlStore({
      kind: "sqlite",
      label: `SQLite store ${filename}`,
      place: "file",
      errorMessage: (error) => nativeError(error).message,
      beforeWrite: refuseIfLost,
      afterWrite: Effect.zipRight(checkIdentity, refuseIfLost),
      failure: () => lost
    })
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

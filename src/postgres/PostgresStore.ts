/**
 * The durable `RuntimeStore` on a PostgreSQL database: connecting (a pool
 * with bounded waits), the checks at start, the schema, and the one-runtime
 * lock; the store itself is src/sql/SqlStore.ts. Each `commit` is one
 * transaction, committed (and so flushed by the server) before it returns.
 * docs/durability.md explains the choices.
 */
import { hostname } from "node:os"

import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Predicate from "effect/Predicate"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Pg from "pg"

import { RuntimeStore, type RuntimeStoreService, StoreError } from "../RuntimeStore.js"
import { makeSqlStore } from "../sql/SqlStore.js"
import { MIGRATIONS_TABLE, runMigrations, SCHEMA_VERSION } from "./Migrations.js"
import { maskUrl, urlProblem } from "./Url.js"

/** The read statements, for tests that check their query plans. */
export { readStatements } from "../sql/SqlStore.js"
export { maskUrl } from "./Url.js"

/** The oldest server the store runs on. */
const MIN_SERVER_VERSION = 14
/** The first key of the one-runtime advisory lock ("WRKR"); the second is the database and schema's hash. */
const LOCK_CLASS = 0x57524b52
/** The first key of the lock held while the schema is checked and migrated ("WRKM"). */
const MIGRATION_LOCK_CLASS = 0x57524b4d
/** Connections opened at most by default, the lock's included (`--store-pool-size`). */
const DEFAULT_POOL_SIZE = 20
/** How often a lost lock connection is retried. */
const RELOCK_MS = 1000
/**
 * How often the lock's connection asks the server whether it answers, and
 * how long it waits: a hung server (stopped, out of memory, a network that
 * drops packets) is noticed within their sum, well inside the 30 s in which
 * /readyz must say so (docs/operations.md).
 */
const PING_EVERY_MS = 3000
const PING_TIMEOUT_MS = 10_000

export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database` (or `postgresql://`); the password may come from `PGPASSWORD`. */
  readonly url: string
  /**
   * Connections the store opens at most (default 20, at least 2): one holds
   * the lock, the others run statements.
   */
  readonly poolSize?: number | undefined
  /**
   * How long to wait for a connection (default 10 s): at start for the
   * server to answer at all, later for a connection from the pool.
   */
  readonly connectTimeoutMs?: number | undefined
  /**
   * How long one statement may take before it fails (default 10 s): a
   * transaction's first statement and its rollback, or the wait for a
   * connection and a statement, stay under a client's 30 s, so that a hung
   * server answers requests 503 rather than hanging them.
   */
  readonly queryTimeoutMs?: number | undefined
  /**
   * One runner of a cluster (docs/cluster.md): the database is shared with
   * the cluster's other runners, and still refused to a runtime outside
   * cluster mode (and this runner refused while one holds it).
   */
  readonly cluster?: boolean | undefined
}

// --- the URL ------------------------------------------------------------------

const parseUrl = (url: string): Effect.Effect<URL, StoreError> => {
  const problem = urlProblem(url)
  return problem === undefined
    ? Effect.succeed(new URL(url))
    : Effect.fail(new StoreError({ message: `cannot open the PostgreSQL store ${maskUrl(url)}: ${problem}` }))
}

// --- errors -------------------------------------------------------------------

const messageOf = (error: unknown): string =>
  Predicate.hasProperty(error, "message") && Predicate.isString(error.message) ? error.message : String(error)

/** pg's error and its code (SQLSTATE, or the socket's `ECONNREFUSED` …), found under the `SqlError` wrappers. */
const nativeError = (error: unknown): { readonly code: string | undefined; readonly message: string } => {
  let current: unknown = error
  for (let depth = 0; depth < 5 && Predicate.isObject(current); depth++) {
    const code = Predicate.hasProperty(current, "code") ? current.code : undefined
    if (Predicate.isString(code)) return { code, message: messageOf(current) }
    current = Predicate.hasProperty(current, "cause") ? current.cause : undefined
  }
  // The innermost message: pg's own, not a wrapper's.
  current = error
  let message = messageOf(error)
  for (let depth = 0; depth < 5 && Predicate.hasProperty(current, "cause") && current.cause !== undefined; depth++) {
    current = current.cause
    message = messageOf(current)
  }
  return { code: undefined, message }
}

const storeMessage = (error: unknown): string => {
  const { code, message } = nativeError(error)
  return code === undefined ? message : `${message} (${code})`
}

/** SQLSTATEs of a server that is there but refuses this configuration: waiting will not help. */
const FATAL_AT_START: Record<string, (url: URL) => string> = {
  "28P01": (url) => `wrong password for user ${JSON.stringify(decodeURIComponent(url.username))}`,
  "28000": (url) => `user ${JSON.stringify(decodeURIComponent(url.username))} may not connect (pg_hba.conf)`,
  "3D000": (url) => `database ${JSON.stringify(decodeURIComponent(url.pathname.slice(1)))} does not exist`
}

class StartFailure extends Schema.TaggedError<StartFailure>()("StartFailure", {
  message: Schema.String,
  /** Whether waiting may help: the server is not there (yet). */
  retry: Schema.Boolean
}) {}

// --- the lock -------------------------------------------------------------------

const LOCK_KEY = `hashtext(current_database() || '/' || coalesce(current_schema(), ''))`

const decodeLocked = Schema.decodeUnknown(
  Schema.Struct({ rows: Schema.Tuple(Schema.Struct({ locked: Schema.Boolean })) })
)
const decodeHolder = Schema.decodeUnknown(Schema.Struct({
  rows: Schema.Array(Schema.Struct({
    application_name: Schema.NullOr(Schema.String),
    client_addr: Schema.NullOr(Schema.String),
    pid: Schema.Number,
    mode: Schema.String
  }))
}))
const decodeRuntimeId = Schema.decodeUnknown(Schema.Struct({
  rows: Schema.Array(Schema.Struct({ value: Schema.String }))
}))

/** Who holds the lock, as the second runtime's start failure names it, and whether a cluster's runners hold it. */
const describeHolder = (client: Pg.Client): Effect.Effect<{ readonly who: string; readonly cluster: boolean }> =>
  Effect.gen(function*() {
    const holder = yield* decodeHolder(
      yield* Effect.promise(() =>
        client.query(
          `SELECT a.application_name, host(a.client_addr) AS client_addr, a.pid, l.mode FROM pg_locks AS l
           JOIN pg_stat_activity AS a ON a.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
             AND l.classid = ${LOCK_CLASS}::oid AND l.objid = (${LOCK_KEY})::oid`
        )
      )
    )
    const stored = yield* decodeRuntimeId(
      yield* Effect.promise(() =>
        client.query(
          `SELECT value FROM meta WHERE key = 'runtime_id' AND to_regclass('meta') IS NOT NULL`
        ).catch(() => ({ rows: [] }))
      )
    )
    const runtime = stored.rows[0] === undefined ? "another runtime" : `runtime ${JSON.stringify(stored.rows[0].value)}`
    const row = holder.rows[0]
    if (row === undefined) return { who: runtime, cluster: false }
    const where = row.application_name?.startsWith("worker-runtime ") === true
      ? row.application_name.slice("worker-runtime ".length)
      : `server pid ${row.pid}`
    return {
      who: `${runtime} (${where}${row.client_addr === null ? "" : `, connected from ${row.client_addr}`})`,
      // Runners of a cluster share the lock; a runtime outside cluster mode holds it alone.
      cluster: row.mode === "ShareLock"
    }
  }).pipe(Effect.orElseSucceed(() => ({ who: "another runtime", cluster: false })))

const BYTEA_OID = 17

/** pg's parsers, but `bytea` (text format `\x` + hex) as a UTF-8 string. */
const typeParser: Pg.CustomTypesConfig["getTypeParser"] = (oid: number, format?: "text" | "binary") =>
  oid === BYTEA_OID
    ? (value: string) => Buffer.from(value.slice(2), "hex").toString("utf8")
    : Pg.types.getTypeParser(oid, format ?? "text")

/** This process, as other runtimes see it in `pg_stat_activity` (at most 63 bytes). */
const applicationName = (): string => `worker-runtime on host ${hostname()} pid ${process.pid}`.slice(0, 63)

/**
 * A pool that refuses connections at once while `refusal` says why: the
 * statements of a store whose server hangs fail now, not after their timeout.
 */
class GuardedPool extends Pg.Pool {
  constructor(config: Pg.PoolConfig, private readonly refusal: () => string | undefined) {
    super(config)
  }
  override connect(): Promise<Pg.PoolClient>
  override connect(
    callback: (error: Error | undefined, client: Pg.PoolClient | undefined, done: (release?: unknown) => void) => void
  ): void
  override connect(
    callback?: (error: Error | undefined, client: Pg.PoolClient | undefined, done: (release?: unknown) => void) => void
  ): Promise<Pg.PoolClient> | void {
    const refused = this.refusal()
    if (refused !== undefined) {
      const error = new Error(refused)
      if (callback === undefined) return Promise.reject(error)
      process.nextTick(() => callback(error, undefined, () => {}))
      return
    }
    return callback === undefined ? super.connect() : super.connect(callback)
  }
}

// --- the store --------------------------------------------------------------------

const decodeVersion = Schema.decodeUnknown(
  Schema.Tuple(Schema.Struct({ version: Schema.NumberFromString }))
)
const decodeTables = Schema.decodeUnknown(Schema.Array(Schema.Struct({ name: Schema.String })))
const decodeMaxMigration = Schema.decodeUnknown(Schema.Tuple(Schema.Struct({ version: Schema.NullOr(Schema.Number) })))

/** Refuses a schema of some other program, and one that a newer version of the runtime wrote. */
const checkSchema = (sql: SqlClient.SqlClient) =>
  Effect.gen(function*() {
    const tables = (yield* decodeTables(
      yield* sql`SELECT table_name AS name FROM information_schema.tables
                 WHERE table_schema = current_schema() ORDER BY table_name`
    )).map((row) => row.name)
    if (tables.length > 0 && !tables.includes(MIGRATIONS_TABLE)) {
      return yield* Effect.fail(
        `its schema holds tables of something else (${tables.join(", ")}), not a worker-runtime store; ` +
          `use another database (or schema)`
      )
    }
    if (tables.length === 0) return
    const [{ version }] = yield* decodeMaxMigration(
      yield* sql`SELECT max(migration_id) AS version FROM ${sql(MIGRATIONS_TABLE)}`
    )
    if (version !== null && version > SCHEMA_VERSION) {
      return yield* Effect.fail(
        `its schema is version ${version}, written by a newer worker-runtime; this one knows up to ${SCHEMA_VERSION}. ` +
          `Run the newer version, or restore a backup of the database`
      )
    }
  })

/**
 * The PostgreSQL store on `options.url`, with its own pool. Fails with a
 * `StoreError` of one line (password masked) when the database cannot be
 * used: malformed URL, no server within `connectTimeoutMs`, wrong
 * credentials, no such database, a server older than 14, a schema of
 * something else or of a newer version, another runtime holding it.
 */
export const PostgresStoreLive = (options: PostgresStoreOptions): Layer.Layer<RuntimeStore, StoreError> =>
  Layer.scoped(RuntimeStore, makePostgresStore(options))

export const makePostgresStore = (
  options: PostgresStoreOptions
): Effect.Effect<RuntimeStoreService, StoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const url = yield* parseUrl(options.url)
    const masked = maskUrl(options.url)
    const label = `PostgreSQL store ${masked}`
    const openError = (why: string, cause?: unknown) =>
      new StoreError({ message: `cannot open the ${label}: ${why}`, cause })
    const connectTimeoutMs = options.connectTimeoutMs ?? 10_000
    const config: Pg.PoolConfig = {
      // `bytea` (contents, reasons: src/postgres/Migrations.ts) read back as the UTF-8 text it holds.
      types: { getTypeParser: typeParser },
      connectionString: options.url,
      // One connection of the size is the lock's (below).
      max: Math.max(1, (options.poolSize ?? DEFAULT_POOL_SIZE) - 1),
      connectionTimeoutMillis: connectTimeoutMs,
      idleTimeoutMillis: 30_000,
      query_timeout: options.queryTimeoutMs ?? 10_000,
      keepAlive: true,
      application_name: applicationName()
    }
    // Why the server cannot be used now (it does not answer), if it cannot.
    let unreachable: string | undefined
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const created = new GuardedPool(
          config,
          () => (unreachable === undefined ? undefined : "the server does not answer")
        )
        // An idle connection the server closed (a restart): the pool drops it; nothing to do.
        created.on("error", () => {})
        return created
      }),
      (created) => Effect.promise(() => created.end().catch(() => undefined))
    )

    // The server: there within connectTimeoutMs, accepting these credentials, new enough.
    const probe = Effect.tryPromise({
      try: () => pool.query("SELECT current_setting('server_version_num') AS version"),
      catch: (error) => {
        const { code, message } = nativeError(error)
        const fatal = code === undefined ? undefined : FATAL_AT_START[code]
        return fatal === undefined
          ? new StartFailure({ message: `no PostgreSQL server answers at ${url.host} (${message})`, retry: true })
          : new StartFailure({ message: fatal(url), retry: false })
      }
    })
    const { rows } = yield* probe.pipe(
      Effect.retry({
        while: (failure) => failure.retry,
        schedule: Schedule.spaced(Duration.millis(250)).pipe(
          Schedule.upTo(Duration.millis(connectTimeoutMs))
        )
      }),
      // Real time, also under a test clock: this waits for a server.
      Effect.withClock(Clock.make()),
      Effect.mapError((failure) => openError(failure.message))
    )
    const [{ version }] = yield* Effect.mapError(
      decodeVersion(rows),
      (error) => openError(`cannot read the server's version (${error.message})`)
    )
    if (version < MIN_SERVER_VERSION * 10_000) {
      return yield* openError(
        `the server is PostgreSQL ${Math.floor(version / 10_000)}; the store needs ${MIN_SERVER_VERSION} or newer`
      )
    }

    // One runtime per database (and schema): a session lock on a connection of
    // its own, held until the store closes or the connection is lost.
    // The runners of a cluster share it; it keeps out a runtime outside cluster mode, and the reverse.
    const lockFunction = options.cluster === true ? "pg_try_advisory_lock_shared" : "pg_try_advisory_lock"
    let lockClient: Pg.Client | undefined
    let lockHeld = false
    let lockTaken: string | undefined
    const takeLock = Effect.gen(function*() {
      const client = new Pg.Client({ ...config, query_timeout: config.query_timeout })
      client.on("error", () => {
        lockHeld = false
      })
      client.on("end", () => {
        lockHeld = false
      })
      yield* Effect.tryPromise({ try: () => client.connect(), catch: (error) => storeMessage(error) })
      const locked = yield* Effect.tryPromise({
        try: () => client.query(`SELECT ${lockFunction}(${LOCK_CLASS}, ${LOCK_KEY}) AS locked`),
        catch: (error) => storeMessage(error)
      }).pipe(
        Effect.flatMap((result) => Effect.mapError(decodeLocked(result), (error) => error.message)),
        Effect.tapError(() => Effect.promise(() => client.end().catch(() => undefined)))
      )
      if (!locked.rows[0].locked) {
        const holder = yield* describeHolder(client)
        yield* Effect.promise(() => client.end().catch(() => undefined))
        return { _tag: "Taken" as const, holder }
      }
      lockClient = client
      lockHeld = true
      // A connection just made and locked: the server answers.
      unreachable = undefined
      return { _tag: "Held" as const }
    })
    const first = yield* Effect.mapError(takeLock, (why) => openError(`cannot take its lock (${why})`))
    if (first._tag === "Taken") {
      const { cluster, who } = first.holder
      return yield* openError(
        options.cluster === true
          ? `it is in use by ${who} outside cluster mode; a cluster's runners cannot share it. ` +
            `Stop that runtime first, or use another database`
          : cluster
          ? `it is in use by the runners of a cluster (${who} among them); ` +
            `a runtime outside cluster mode cannot share it. Start this one with --cluster, or use another database`
          : `it is in use by ${who}; one runtime per database outside cluster mode. ` +
            `Stop that runtime first, or use another database`
      )
    }
    yield* Effect.addFinalizer(() =>
      Effect.promise(() => lockClient?.end().catch(() => undefined) ?? Promise.resolve())
    )
    // The lock connection lost (the server restarted): taken again once the
    // server is back; meanwhile writes fail, as they would anyway.
    yield* Effect.forkScoped(
      Effect.repeat(
        Effect.suspend(() => {
          if (lockHeld || lockTaken !== undefined) return Effect.void
          return Effect.gen(function*() {
            const old = lockClient
            lockClient = undefined
            if (old !== undefined) yield* Effect.promise(() => old.end().catch(() => undefined))
            const again = yield* Effect.either(takeLock)
            if (again._tag === "Left") return
            if (again.right._tag === "Taken") {
              lockTaken = `the ${label} was taken by ${again.right.holder.who} while its connection was lost; ` +
                `nothing more can be stored. Stop this runtime`
              yield* Effect.logError(lockTaken)
            } else {
              yield* Effect.logInfo(`the ${label} is locked again`)
            }
          })
        }),
        Schedule.spaced(Duration.millis(RELOCK_MS))
      ).pipe(Effect.withClock(Clock.make()))
    )
    // A server that hangs keeps its connections open: only asking notices it.
    // Meanwhile statements fail at once instead of waiting out their timeout.
    yield* Effect.forkScoped(
      Effect.repeat(
        Effect.suspend(() => {
          const client = lockClient
          if (!lockHeld || client === undefined) return Effect.void
          return Effect.tryPromise({
            try: () => client.query("SELECT 1"),
            catch: (error) => storeMessage(error)
          }).pipe(
            Effect.timeoutFail({
              duration: Duration.millis(PING_TIMEOUT_MS),
              onTimeout: () => `no answer within ${PING_TIMEOUT_MS / 1000} s`
            }),
            Effect.matchEffect({
              onFailure: (why) => {
                if (unreachable !== undefined || client !== lockClient || !lockHeld) return Effect.void
                unreachable = `${label}: the server does not answer (${why})`
                return Effect.logError(unreachable)
              },
              onSuccess: () => {
                if (unreachable === undefined) return Effect.void
                unreachable = undefined
                return Effect.logInfo(`the ${label} answers again`)
              }
            })
          )
        }),
        Schedule.spaced(Duration.millis(PING_EVERY_MS))
      ).pipe(Effect.withClock(Clock.make()))
    )

    const client = yield* Layer.build(PgClient.layerFromPool({
      acquire: Effect.succeed(pool),
      applicationName: config.application_name
    })).pipe(Effect.mapError((error) => openError(storeMessage(error), error)))
    const sql = Context.get(client, SqlClient.SqlClient)
    // The runners of a cluster start at once: one migrates, the others wait
    // for it and find the schema done (a lock of its own, on the lock's connection).
    const migrating = (hold: boolean) =>
      Effect.promise(async () => {
        await lockClient?.query(
          `SELECT ${hold ? "pg_advisory_lock" : "pg_advisory_unlock"}(${MIGRATION_LOCK_CLASS}, ${LOCK_KEY})`
        ).catch(() => undefined)
      })
    yield* Effect.gen(function*() {
      yield* migrating(true)
      yield* checkSchema(sql)
      yield* runMigrations
    }).pipe(
      Effect.ensuring(migrating(false)),
      Effect.provide(client),
      Effect.catchAll((error) =>
        Effect.fail(openError(Predicate.isString(error) ? error : storeMessage(error), error))
      ),
      // The Migrator turns a failing migration into a defect.
      Effect.catchAllDefect((defect) => Effect.fail(openError(storeMessage(defect), defect)))
    )
    yield* Effect.logInfo(`opened the ${label}`)

    return yield* makeSqlStore({
      kind: "postgres",
      label,
      place: "database",
      errorMessage: storeMessage,
      beforeWrite: Effect.suspend(() =>
        lockTaken !== undefined
          ? Effect.fail(new StoreError({ message: lockTaken }))
          : unreachable !== undefined
          ? Effect.fail(new StoreError({ message: unreachable }))
          : lockHeld
          ? Effect.void
          : Effect.fail(
            new StoreError({ message: `${label}: the server is unreachable (its lock is being taken again)` })
          )
      ),
      // Also while the lock is being taken again: not ready until writes can succeed.
      failure: () =>
        lockTaken ?? unreachable ??
          (lockHeld ? undefined : `${label}: the server is unreachable (its lock is being taken again)`)
    }).pipe(Effect.provide(client))
  })

/**
 * The PostgreSQL store on a real server (test/postgresSetup.ts starts one):
 * the store contract and the behavioural suites, each test place a schema of
 * its own; then what only a server can do wrong: configurations that cannot
 * work, a second runtime, the server going away and coming back, and query
 * plans that stay O(limit).
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, inject, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer, Redacted, Scope } from "effect"
import { createServer } from "node:net"
import { hostname } from "node:os"

import * as Pg from "pg"

import { Runtime, RuntimeFromStore, RuntimeStore, StoreError, Unavailable } from "../src/index.js"
import { PostgresStoreLive, type PostgresStoreOptions } from "../src/postgres/index.js"
import { makePostgresStore, readStatements } from "../src/postgres/PostgresStore.js"
import { exitOf, runBin, startBin } from "./support/bin.js"
import { busySuite } from "./support/busySuite.js"
import { suiteProfiles } from "./support/engines.js"
import { eventuallyLive } from "./support/eventually.js"
import { followSuite } from "./support/followSuite.js"
import { lifecycleSuite } from "./support/lifecycleSuite.js"
import {
  createSchema,
  freshUrl as freshUrlOn,
  pgScript,
  pgScriptAsync,
  schemaOf,
  withClient
} from "./support/postgres.js"
import { raw } from "./support/raw.js"
import { runtimeSuite } from "./support/runtimeSuite.js"
import { storeSuite, wid, worker } from "./support/storeSuite.js"

const serverUrl = inject("postgresUrl")

const freshUrl = () => freshUrlOn(serverUrl)
const withAdmin = <A>(f: (client: Pg.Client) => Promise<A>): Promise<A> => withClient(serverUrl, f)

/** The store on `url`, its schema created first. */
const storeOn = (url: string, options: Omit<PostgresStoreOptions, "url"> = {}) =>
  Layer.unwrapEffect(
    Effect.promise(() => withAdmin((admin) => admin.query(`CREATE SCHEMA IF NOT EXISTS ${schemaOf(url)}`))).pipe(
      Effect.as(PostgresStoreLive({ url, ...options }))
    )
  )

storeSuite("postgres store", () => {
  const url = freshUrl()
  return () => storeOn(url)
}, { commitsCanFail: true })

runtimeSuite(
  "Runtime (embedded, postgres store)",
  (options) => RuntimeFromStore(options).pipe(Layer.provide(storeOn(freshUrl())))
)

followSuite(
  "Following (embedded, postgres store)",
  (options) => RuntimeFromStore(options).pipe(Layer.provide(storeOn(freshUrl())))
)

busySuite(
  "Busy policy (embedded, postgres store)",
  (options) => RuntimeFromStore(options).pipe(Layer.provide(storeOn(freshUrl())))
)

lifecycleSuite(
  "Lifecycle (embedded, postgres store)",
  (options) => RuntimeFromStore(options).pipe(Layer.provide(storeOn(freshUrl())))
)

// --- query plans ---------------------------------------------------------------

describe("postgres store: reads are index reads", () => {
  it.scoped("no read scans workers, entries or turns, or sorts", () =>
    Effect.gen(function*() {
      const url = freshUrl()
      yield* Effect.promise(() => withAdmin((admin) => admin.query(`CREATE SCHEMA ${schemaOf(url)}`)))
      const store = yield* makePostgresStore({ url })
      for (let i = 0; i < 200; i++) {
        const status = (["idle", "busy", "stopped", "failed"] as const)[i % 4]!
        yield* store.insertWorker(
          worker(`w${String(i).padStart(3, "0")}`, {
            status,
            metadata: { team: `t${i % 5}` },
            updatedAt: `2026-01-01T00:${String(i % 60).padStart(2, "0")}:00.000Z`,
            ...(status === "stopped" ? { stopReason: "x" } : {})
          }),
          i % 3 === 0 ? `key-${i}` : undefined
        )
      }
      const context = yield* Layer.build(PgClient.layer({ url: redacted(url) }))
      const sql = Context.get(context, SqlClient.SqlClient)
      // Many idle Workers, so that walking the primary key for another status costs what it would.
      yield* sql`INSERT INTO workers (id, runtime_id, profile, status, created_at, updated_at, turn, last_seq, metadata)
        SELECT 'x' || lpad(g::text, 5, '0'), 'rt', 'default', 'idle', '2026', '2026', 0, 0, '{}'
        FROM generate_series(1, 5000) AS g`
      yield* sql`ANALYZE`
      // Sequential scans, bitmaps and sorts are what the planner picks for
      // tables this small whatever the indexes; forbidding them shows which
      // index each read can use, and a Sort left means no index gives the order.
      const reads = readStatements(sql)
      const plan = (statement: ReturnType<typeof reads.allWorkers>) => {
        const [text, params] = statement.compile()
        return sql.withTransaction(Effect.gen(function*() {
          yield* sql`SET LOCAL enable_seqscan = off`
          yield* sql`SET LOCAL enable_bitmapscan = off`
          yield* sql`SET LOCAL enable_sort = off`
          const rows = yield* sql.unsafe<{ "QUERY PLAN": string }>(`EXPLAIN ${text}`, params)
          return rows.map((row) => row["QUERY PLAN"]).join("\n")
        }))
      }
      const indexOnly = (text: string) => {
        expect(text).not.toMatch(/Seq Scan/)
        expect(text).not.toMatch(/^\s*(->\s*)?Sort\b/m)
      }
      expect(yield* plan(reads.transcript("w", 10, 100))).toMatch(/Index Scan using entries_pkey/)
      expect(yield* plan(reads.contentSizes("w", 10, 100))).toMatch(/Index Scan using entries_pkey/)
      expect(yield* plan(reads.turn("w", 3))).toMatch(/Index Scan using turns_pkey/)
      expect(yield* plan(reads.workerById("w"))).toMatch(/Index Scan using workers_pkey/)
      expect(yield* plan(reads.workerByKey("k"))).toMatch(/using workers_idempotency_key/)
      expect(yield* plan(reads.listWorkers({ limit: 100 }))).toMatch(/Index Scan using workers_pkey/)
      expect(yield* plan(reads.listWorkers({ limit: 100, status: "failed" }))).toMatch(
        /using workers_status_id/
      )
      expect(yield* plan(reads.listWorkers({ limit: 100, metadata: { team: "t1" }, after: "w010" }))).toMatch(
        /using worker_metadata_pkey/
      )
      // A metadata page looks each pair's Worker up by id (a nested loop), not
      // in a join that walks `workers` from its first id (O(the cursor's place)).
      for (
        const query of [
          { limit: 100, metadata: { team: "t1" }, after: "w010" },
          { limit: 100, metadata: { team: "t1" }, status: "busy" as const, after: "w010" },
          { limit: 100, metadata: { team: "t1", other: "y" }, status: "idle" as const }
        ]
      ) {
        const text = yield* plan(reads.listWorkers(query))
        expect(text).toMatch(/Nested Loop/)
        expect(text).toMatch(/Index Scan using workers_(pkey|status_id) on workers/)
        expect(text).not.toMatch(/Merge Join|Hash Join|Materialize/)
      }
      expect(yield* plan(reads.busyWorkers())).toMatch(/using workers_status_id/)
      expect(yield* plan(reads.lastWorkerId())).toMatch(/Index Only Scan Backward using workers_pkey/)
      expect(yield* plan(reads.expired("2026-01-02T00:00:00.000Z", 100))).toMatch(/using workers_ended/)
      expect(yield* plan(reads.queueOf("w"))).toMatch(/using queued_inputs_pkey/)
      expect(yield* plan(reads.inputReceipt("w", "in-1"))).toMatch(/using input_receipts_input/)
      expect(yield* plan(reads.anyEntry("w"))).toMatch(/using entries_pkey/)
      expect(yield* plan(reads.anyTurn("w"))).toMatch(/using turns_pkey/)
      for (
        const statement of [
          reads.transcript("w", 10, 100),
          reads.turn("w", 3),
          reads.workerById("w"),
          reads.workerByKey("k"),
          reads.listWorkers({ limit: 100 }),
          reads.listWorkers({ limit: 100, status: "idle", after: "x" }),
          reads.listWorkers({ limit: 100, metadata: { team: "t1", other: "y" }, status: "busy", after: "x" }),
          reads.busyWorkers(),
          reads.lastWorkerId(),
          reads.expired("x", 1)
        ]
      ) indexOnly(yield* plan(statement))
      // the counts: four rows of their own table, kept by the trigger
      expect(yield* plan(reads.counts())).toMatch(/worker_counts/)
      expect(yield* plan(reads.counts())).not.toMatch(/workers/)
      expect(yield* store.counts).toEqual({ idle: 5050, busy: 50, stopped: 50, failed: 50 })
      expect(yield* store.lastWorkerId).toBe("x05000")
      expect((yield* store.listWorkers({ limit: 3, metadata: { team: "t1" } })).map((w) => w.id)).toEqual([
        "w001",
        "w006",
        "w011"
      ])
      yield* store.deleteWorker(wid("w001"))
      expect(yield* store.counts).toEqual({ idle: 5050, busy: 49, stopped: 50, failed: 50 })
    }))
})

/** A URL as `PgClient.layer` takes it. */
const redacted = (url: string) => Redacted.make(url)

// --- concurrent writers on one schema ---------------------------------------------

describe("postgres store: the counts trigger under concurrent transactions", () => {
  it.scopedLive("status changes of several Workers in two transactions at once do not deadlock, and all count", () =>
    Effect.gen(function*() {
      const url = freshUrl()
      // The store makes the schema and the Workers, then closes (its lock with it).
      yield* Effect.scoped(Effect.gen(function*() {
        const store = Context.get(yield* Layer.build(storeOn(url)), RuntimeStore)
        for (const [id, status] of [["a", "idle"], ["b", "busy"], ["c", "busy"], ["d", "stopped"]] as const) {
          yield* store.insertWorker(worker(id, { status }), undefined)
        }
      }))
      const one = new Pg.Pool({ connectionString: url, max: 1 })
      const two = new Pg.Pool({ connectionString: url, max: 1 })
      yield* Effect.addFinalizer(() => Effect.promise(() => Promise.all([one.end(), two.end()])))
      const status = (pool: Pg.Pool, id: string, to: string) =>
        pool.query("UPDATE workers SET status = $1 WHERE id = $2", [to, id])
      const pid = (yield* Effect.promise(() => two.query<{ pid: number }>("SELECT pg_backend_pid() AS pid"))).rows[0]!
        .pid
      yield* Effect.promise(() => one.query("BEGIN"))
      yield* Effect.promise(() => status(one, "a", "stopped"))
      yield* Effect.promise(() => two.query("BEGIN"))
      // The second transaction's first change: done at once (rows taken in the
      // order of each change, as the first trigger did) or waiting for the first.
      let firstDone = false
      const second = status(two, "b", "failed").then(() => {
        firstDone = true
      })
      yield* eventuallyLive(
        Effect.promise(() =>
          one.query<{ waiting: boolean }>(
            "SELECT count(*) > 0 AS waiting FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'",
            [pid]
          )
        ),
        (result) => firstDone || result.rows[0]!.waiting,
        "the second transaction's first change done or waiting"
      )
      // Each now wants a row the other would hold had it taken only its own: a cycle.
      const results = yield* Effect.promise(() =>
        Promise.allSettled([
          status(one, "c", "idle").then(() => one.query("COMMIT")),
          second.then(() => status(two, "d", "idle")).then(() => two.query("COMMIT"))
        ])
      )
      expect(results.map((result) => result.status === "rejected" ? String(result.reason) : "ok")).toEqual(["ok", "ok"])
      const store = Context.get(yield* Layer.build(storeOn(url)), RuntimeStore)
      expect(yield* store.counts).toEqual({ idle: 2, busy: 0, stopped: 1, failed: 1 })
    }))
})

// --- one runtime per database ----------------------------------------------------

describe("postgres store: one runtime per database", () => {
  it.effect("a second store on the same database fails at start, naming the first's runtime and host", () =>
    Effect.gen(function*() {
      const url = freshUrl()
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(storeOn(url), scope)
      const first = Context.get(context, RuntimeStore)
      expect(first.kind).toBe("postgres")
      yield* first.runtimeId("rt-first", () => "x")
      const error = yield* Effect.flip(Effect.scoped(Layer.build(storeOn(url))))
      expect(error).toBeInstanceOf(StoreError)
      expect(error.message).toContain("in use by runtime \"rt-first\"")
      expect(error.message).toContain(`host ${hostname()}`)
      expect(error.message).not.toContain("\n")
      // another schema is another store
      yield* Effect.scoped(Layer.build(storeOn(freshUrl())))
      // closing the first releases the lock
      yield* Scope.close(scope, Exit.void)
      const again = yield* Effect.scoped(Effect.map(Layer.build(storeOn(url)), (ctx) => Context.get(ctx, RuntimeStore)))
      expect(again.kind).toBe("postgres")
    }))
})

// --- configurations that cannot work ------------------------------------------------

/** Why opening the store fails (the test fails if it opens). */
const openFailure = (options: PostgresStoreOptions) =>
  Effect.flip(Effect.scoped(Layer.build(PostgresStoreLive(options))))

/** One line, no stack trace, the password never shown. */
const readable = (error: StoreError, secret?: string) => {
  expect(error).toBeInstanceOf(StoreError)
  expect(error.message).not.toContain("\n")
  expect(error.message).not.toMatch(/\bat .*:\d+:\d+/)
  if (secret !== undefined) expect(error.message).not.toContain(secret)
}

describe("postgres store: start failures are one readable line", () => {
  const server = new URL(serverUrl)
  const withUrl = (patch: (url: URL) => void) => {
    const url = new URL(serverUrl)
    patch(url)
    return url.toString()
  }

  it.live("a malformed URL, an unreachable server, wrong credentials, a missing database", () =>
    Effect.gen(function*() {
      const malformed = yield* openFailure({ url: "postgres://user:s3cret@[nope/db" })
      readable(malformed, "s3cret")
      expect(malformed.message).toContain("not a URL")
      expect(malformed.message).toContain("postgres://user:***@")
      readable(yield* openFailure({ url: "postgres://127.0.0.1:5432" }))

      const started = performance.now()
      const unreachable = yield* openFailure({
        url: `postgres://someone:s3cret@127.0.0.1:${yield* Effect.promise(unusedPort)}/db`,
        connectTimeoutMs: 1500
      })
      readable(unreachable, "s3cret")
      expect(unreachable.message).toContain("no PostgreSQL server answers at 127.0.0.1:")
      expect(unreachable.message).toContain("someone:***@")
      // it waited for the server, boundedly
      expect(performance.now() - started).toBeGreaterThan(1000)
      expect(performance.now() - started).toBeLessThan(10_000)

      yield* Effect.promise(() =>
        withAdmin((admin) => admin.query("CREATE ROLE password_user LOGIN PASSWORD 'right-one'"))
      )
      const wrong = yield* openFailure({
        url: withUrl((url) => {
          url.username = "password_user"
          url.password = "wrong-one"
        })
      })
      readable(wrong, "wrong-one")
      expect(wrong.message).toContain("wrong password for user \"password_user\"")
      // PGPASSWORD is used when the URL has none
      yield* Effect.promise(() =>
        withAdmin((admin) => admin.query("CREATE SCHEMA password_place AUTHORIZATION password_user"))
      )
      const fromEnv = yield* Effect.acquireUseRelease(
        Effect.sync(() => {
          process.env["PGPASSWORD"] = "right-one"
        }),
        () =>
          Effect.scoped(Effect.map(
            Layer.build(PostgresStoreLive({
              url: withUrl((url) => {
                url.username = "password_user"
                url.searchParams.set("options", "-c search_path=password_place")
              })
            })),
            (built) => Context.get(built, RuntimeStore).kind
          )),
        () => Effect.sync(() => delete process.env["PGPASSWORD"])
      )
      expect(fromEnv).toBe("postgres")

      const missing = yield* openFailure({ url: withUrl((url) => (url.pathname = "/no_such_database")) })
      readable(missing)
      expect(missing.message).toContain("database \"no_such_database\" does not exist")
      expect(server.host).not.toBe("")
    }))

  it.live("a schema of something else, and one a newer version wrote", () =>
    Effect.gen(function*() {
      const foreign = freshUrl()
      yield* Effect.promise(() =>
        withAdmin(async (admin) => {
          await admin.query(`CREATE SCHEMA ${schemaOf(foreign)}`)
          await admin.query(`CREATE TABLE ${schemaOf(foreign)}.invoices (id int)`)
        })
      )
      const other = yield* Effect.flip(Effect.scoped(Layer.build(storeOn(foreign))))
      readable(other)
      expect(other.message).toContain("tables of something else (invoices)")

      const newer = freshUrl()
      yield* Effect.scoped(Layer.build(storeOn(newer)))
      yield* Effect.promise(() =>
        withAdmin((admin) =>
          admin.query(`INSERT INTO ${schemaOf(newer)}.effect_sql_migrations (migration_id, name) VALUES (99, 'future')`)
        )
      )
      const tooNew = yield* Effect.flip(Effect.scoped(Layer.build(storeOn(newer))))
      readable(tooNew)
      expect(tooNew.message).toContain("schema is version 99, written by a newer worker-runtime")
    }))
})

/** A port nothing listens on. */
const unusedPort = () =>
  new Promise<number>((resolve) => {
    const probe = createServer()
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address()
      probe.close(() => resolve(typeof address === "object" && address !== null ? address.port : 1))
    })
  })

// --- through the bin ---------------------------------------------------------------------

/** A fresh place's URL with a password in it (the test server trusts 127.0.0.1, so any password passes). */
const withPassword = (url: string) => {
  const parsed = new URL(url)
  parsed.password = "hunter2"
  return parsed.toString()
}

describe("postgres store: the bin", () => {
  it.scopedLive("--store postgres://…: reports the store, masks the password, refuses a second runtime and bad URLs", () =>
    Effect.gen(function*() {
      const url = withPassword(freshUrl())
      yield* createSchema(url)
      const bin = yield* startBin(["--store", url])
      const info = yield* Effect.promise(() => fetch(`${bin.url}/v1/runtime`).then((res) => res.json()))
      expect(info).toMatchObject({ store: "postgres", status: "running" })
      expect((yield* Effect.promise(() => fetch(`${bin.url}/readyz`))).status).toBe(200)

      const second = yield* runBin(["--store", url, "--port", "0"])
      expect(second.code).toBe(1)
      expect(second.output).toContain("in use by runtime")
      expect(second.output).toContain(":***@")
      for (const output of [second.output, bin.output()]) {
        expect(output).not.toContain("hunter2")
        expect(output).not.toMatch(/\n\s+at /)
      }

      const malformed = yield* runBin(["--store", "postgres://someone:hunter2@[nope/db"])
      expect(malformed.code).toBe(1)
      expect(malformed.output).toContain("someone:***@")
      expect(malformed.output).not.toContain("hunter2")
      // one line says why (the store's close is logged besides), no stack trace
      expect(malformed.output.split("\n").filter((line) => line.startsWith("worker-runtime:"))).toHaveLength(1)
      expect(malformed.output).not.toMatch(/\n\s+at /)
    }))

  it.scopedLive("--store-pool-size 3: at most 3 connections however many requests wait, and every one answered", () =>
    Effect.gen(function*() {
      const url = freshUrl()
      yield* createSchema(url)
      const bin = yield* startBin(["--store", url, "--store-pool-size", "3"])
      // The runtime's connections, by the name it gives them (src/postgres/PostgresStore.ts).
      const name = `worker-runtime on host ${hostname()} pid ${bin.child.pid}`.slice(0, 63)
      const connections = Effect.promise(() =>
        withAdmin((admin) =>
          admin.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1", [
            name
          ])
        )
      ).pipe(Effect.map((result) => result.rows[0]?.n ?? 0))
      const workers = yield* Effect.forEach(
        Array.from({ length: 8 }),
        () =>
          Effect.map(raw(bin.url, "/v1/workers", { method: "POST", body: {} }), (r) => (r.json as { id: string }).id),
        { concurrency: 4 }
      )
      const statuses = new Set<number>()
      let stop = false
      // Reads and writes, 48 at a time: far more than 2 statement connections can serve at once.
      const load = yield* Effect.fork(Effect.forEach(
        Array.from({ length: 48 }, (_, i) => i),
        (i) =>
          Effect.gen(function*() {
            const id = workers[i % workers.length]!
            while (!stop) {
              const response = i % 3 === 0
                ? yield* raw(bin.url, `/v1/workers/${id}/input`, {
                  method: "POST",
                  body: { content: `c${i}`, ifBusy: "enqueue" }
                })
                : i % 3 === 1
                ? yield* raw(bin.url, `/v1/workers/${id}/transcript?limit=100`)
                : yield* raw(bin.url, "/v1/workers?limit=100")
              statuses.add(response.status)
            }
          }),
        { concurrency: "unbounded", discard: true }
      ))
      let most = 0
      let samples = 0
      // Sampled while the load runs: it reaches the limit, and 50 samples later it has never passed it.
      yield* eventuallyLive(
        connections,
        (count) => {
          most = Math.max(most, count)
          if (most >= 3) samples++
          return samples >= 50
        },
        "50 samples of the connections once the pool is full",
        { everyMs: 5 }
      )
      stop = true
      yield* Fiber.join(load)
      expect(most).toBe(3)
      expect([...statuses].filter((status) => status >= 300)).toEqual([])
    }))
})

// --- the server going away ------------------------------------------------------------
// Last in the file: it stops the one server the file shares.

const server = (command: "halt" | "resume") => pgScript(command, inject("postgresDir"))

describe("postgres store: the server stopped and started under a running runtime", () => {
  it.live("answers Unavailable meanwhile, and serves again without a restart", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        RuntimeFromStore({ profiles: suiteProfiles }).pipe(Layer.provide(storeOn(freshUrl()))),
        scope
      )
      const runtime = Context.get(context, Runtime)
      const before = yield* runtime.create({})
      yield* runtime.input(before.id, { content: "hello" })
      yield* eventuallyLive(runtime.get(before.id), (w) => w.status === "idle", "the first turn ended")

      yield* server("halt")
      const refused = yield* Effect.flip(runtime.create({}))
      expect(refused).toBeInstanceOf(Unavailable)
      expect(refused.message).toContain("store failure")
      expect(refused instanceof Unavailable && refused.retryAfterMs !== undefined && refused.retryAfterMs > 0).toBe(
        true
      )
      // info (what /readyz answers from) fails too: not ready
      expect(yield* Effect.flip(runtime.info)).toBeInstanceOf(Unavailable)

      yield* server("resume")
      const after = yield* eventuallyLive(
        Effect.either(runtime.create({})),
        (result) => result._tag === "Right",
        "a create once the server is back"
      )
      expect(after._tag).toBe("Right")
      yield* runtime.input(before.id, { content: "again" })
      yield* eventuallyLive(runtime.get(before.id), (w) => w.status === "idle" && w.turn === 2, "the second turn ended")
      expect((yield* runtime.info).workers.total).toBe(2)
      yield* Scope.close(scope, Exit.void)
    }).pipe(Effect.ensuring(Effect.ignore(server("resume")))))

  it.scopedLive("over HTTP: 503 with Retry-After and /readyz 503 meanwhile, 2xx once it is back", () =>
    Effect.gen(function*() {
      const url = freshUrl()
      yield* createSchema(url)
      const bin = yield* startBin(["--store", url])
      const create = () =>
        fetch(`${bin.url}/v1/workers`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: "{}"
        })
      const readyz = () => fetch(`${bin.url}/readyz`).then((res) => res.status)
      expect((yield* Effect.promise(create)).status).toBe(201)

      yield* server("halt")
      const refused = yield* Effect.promise(create)
      expect(refused.status).toBe(503)
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0)
      expect(yield* Effect.promise(readyz)).toBe(503)
      yield* eventuallyLive(
        Effect.sync(bin.output),
        (output) => /ERROR.*store failure/.test(output),
        "the store failure logged"
      )

      yield* server("resume")
      yield* eventuallyLive(Effect.promise(readyz), (status) => status === 200, "/readyz 200 once the server is back")
      expect((yield* Effect.promise(create)).status).toBe(201)
    }).pipe(Effect.ensuring(Effect.ignore(server("resume")))))

  it.scopedLive("under load: 503 with Retry-After meanwhile, never a 500, every 2xx kept, serving again unrestarted", () =>
    Effect.gen(function*() {
      const url = freshUrl()
      yield* createSchema(url)
      const bin = yield* startBin(["--store", url])
      const workers = yield* Effect.forEach(
        Array.from({ length: 8 }),
        () =>
          Effect.map(raw(bin.url, "/v1/workers", { method: "POST", body: {} }), (r) => (r.json as { id: string }).id),
        { concurrency: 4 }
      )
      const created = [...workers]
      const acknowledged: Array<{ readonly workerId: string; readonly entry: { readonly seq: number } }> = []
      const statuses = new Map<number, number>()
      let withoutRetryAfter = 0
      let stop = false
      const record = (status: number, headers: Headers) => {
        statuses.set(status, (statuses.get(status) ?? 0) + 1)
        if (status === 503 && !(Number(headers.get("retry-after")) > 0)) withoutRetryAfter++
        // What a Backend does with a 503: come back later (here: soon).
        return status === 503 ? Effect.sleep("20 millis") : Effect.void
      }
      const inputs = Effect.forEach(workers, (workerId) =>
        Effect.gen(function*() {
          for (let round = 0; !stop; round++) {
            const response = yield* raw(bin.url, `/v1/workers/${workerId}/input`, {
              method: "POST",
              body: { content: `${workerId} ${round}` }
            })
            if (response.status === 202) {
              acknowledged.push({ workerId, entry: (response.json as { entry: { seq: number } }).entry })
            }
            yield* record(response.status, response.headers)
          }
        }), { concurrency: "unbounded", discard: true })
      const creates = Effect.gen(function*() {
        while (!stop) {
          const response = yield* raw(bin.url, "/v1/workers", { method: "POST", body: {} })
          if (response.status === 201) created.push((response.json as { id: string }).id)
          yield* record(response.status, response.headers)
        }
      })
      const load = yield* Effect.fork(Effect.all([inputs, creates], { concurrency: "unbounded", discard: true }))
      const count = (status: number) => Effect.sync(() => statuses.get(status) ?? 0)
      yield* eventuallyLive(Effect.sync(() => acknowledged.length), (n) => n >= 100, "100 inputs acknowledged")

      yield* pgScriptAsync("halt", inject("postgresDir"))
      yield* eventuallyLive(count(503), (n) => n >= 20, "20 answers 503 while the server is down")
      expect((yield* raw(bin.url, "/readyz")).status).toBe(503)
      yield* pgScriptAsync("resume", inject("postgresDir"))
      const before = acknowledged.length
      yield* eventuallyLive(
        Effect.sync(() => acknowledged.length),
        (n) => n >= before + 100,
        "100 more inputs acknowledged once the server is back"
      )
      stop = true
      yield* Fiber.join(load)

      expect([...statuses.keys()].filter((status) => status >= 500 && status !== 503)).toEqual([])
      expect([...statuses.keys()].filter((status) => ![201, 202, 409, 503].includes(status))).toEqual([])
      expect(withoutRetryAfter).toBe(0)
      expect((yield* raw(bin.url, "/readyz")).status).toBe(200)

      // Every 2xx is in the store: read by a new process.
      bin.child.kill("SIGTERM")
      expect(yield* exitOf(bin)).toBe(0)
      const next = yield* startBin(["--store", url])
      const listed = (yield* raw(next.url, "/v1/workers?limit=1000")).json as { workers: Array<{ id: string }> }
      expect(listed.workers.map((worker) => worker.id).sort()).toEqual([...created].sort())
      const transcripts = new Map<string, Array<{ seq: number }>>()
      for (const workerId of workers) {
        const page = (yield* raw(next.url, `/v1/workers/${workerId}/transcript?limit=1000`)).json as {
          entries: Array<{ seq: number }>
        }
        expect(page.entries.map((entry) => entry.seq)).toEqual(page.entries.map((_, i) => i + 1))
        transcripts.set(workerId, page.entries)
      }
      for (const { entry, workerId } of acknowledged) {
        expect(transcripts.get(workerId)?.[entry.seq - 1], `${workerId} seq ${entry.seq}`).toEqual(entry)
      }
    }).pipe(Effect.ensuring(Effect.ignore(server("resume")))))
})

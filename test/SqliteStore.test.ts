/**
 * The SQLite store: the store contract and the behavioural suite over a real
 * file, then what only a file can do wrong: restarts, files that are not a
 * usable store, a second process, and query plans that stay O(limit).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { pathToFileURL } from "node:url"

import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer, Scope } from "effect"

import {
  Runtime,
  RuntimeFromStore,
  type RuntimeOptions,
  type RuntimeService,
  RuntimeStore,
  StoreError,
  type Turn,
  type Worker,
  type WorkerId
} from "../src/index.js"
import { SqliteStoreLive } from "../src/sqlite/index.js"
import { migrations, MIGRATIONS_TABLE } from "../src/sqlite/Migrations.js"
import { makeSqliteStore, readStatements } from "../src/sqlite/SqliteStore.js"
import { busySuite } from "./support/busySuite.js"
import { suiteProfiles } from "./support/engines.js"
import { eventually } from "./support/eventually.js"
import { followSuite } from "./support/followSuite.js"
import { lifecycleSuite } from "./support/lifecycleSuite.js"
import { projectRoot } from "./support/packed.js"
import { runtimeSuite } from "./support/runtimeSuite.js"
import { entry, queuedInput, queuedRef, storeSuite, turnRecord, wid, worker } from "./support/storeSuite.js"

const root = mkdtempSync(join(tmpdir(), "worker-runtime-sqlite-"))
afterAll(() => rmSync(root, { recursive: true, force: true }))

let files = 0
/** A path in a directory that does not exist yet: the store creates it. */
const freshFile = () => join(root, `place-${++files}`, "runtime.db")

storeSuite("sqlite store", () => {
  const filename = freshFile()
  return () => SqliteStoreLive({ filename })
}, { commitsCanFail: true })

runtimeSuite(
  "Runtime (embedded, sqlite store)",
  (options) => RuntimeFromStore(options).pipe(Layer.provide(SqliteStoreLive({ filename: freshFile() })))
)

followSuite(
  "Following (embedded, sqlite store)",
  (options) => RuntimeFromStore(options).pipe(Layer.provide(SqliteStoreLive({ filename: freshFile() })))
)

busySuite(
  "Busy policy (embedded, sqlite store)",
  (options) => RuntimeFromStore(options).pipe(Layer.provide(SqliteStoreLive({ filename: freshFile() })))
)

lifecycleSuite(
  "Lifecycle (embedded, sqlite store)",
  (options) => RuntimeFromStore(options).pipe(Layer.provide(SqliteStoreLive({ filename: freshFile() })))
)

// --- helpers -------------------------------------------------------------------

/** Opens a Runtime on `filename` in a scope the test closes itself. */
const openRuntime = (filename: string, options: RuntimeOptions = {}) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(
      RuntimeFromStore({ profiles: suiteProfiles, ...options }).pipe(Layer.provide(SqliteStoreLive({ filename }))),
      scope
    ).pipe(Effect.tapErrorCause((cause) => Scope.close(scope, Exit.failCause(cause))))
    return { scope, runtime: Context.get(context, Runtime) }
  })

/** Why opening the store on `filename` fails (the test fails if it opens). */
const openFailure = (filename: string) => Effect.flip(Effect.scoped(Layer.build(SqliteStoreLive({ filename }))))

const awaitIdle = (runtime: RuntimeService, workerId: WorkerId) =>
  eventually(runtime.get(workerId), (worker) => worker.status === "idle", `Worker ${workerId} idle`)

/** Everything a client can read about the Runtime's Workers. */
const everything = (runtime: RuntimeService) =>
  Effect.gen(function*() {
    const list = yield* runtime.list({ limit: 1000 })
    const details = yield* Effect.forEach(list.workers, (worker) =>
      Effect.all({
        worker: runtime.get(worker.id),
        transcript: runtime.transcript(worker.id, { limit: 1000 }),
        page: runtime.transcript(worker.id, { after: 1, limit: 1 })
      }))
    const stopped = yield* runtime.list({ status: "stopped" })
    return { list, details, stopped, runtimeId: (yield* runtime.info).runtimeId }
  })

/** The bytes of the file and of its WAL, to show a failed open changed nothing. */
const contentOf = (filename: string) => ({
  main: existsSync(filename) ? readFileSync(filename) : undefined,
  wal: existsSync(`${filename}-wal`) ? readFileSync(`${filename}-wal`) : undefined
})

const freshPlace = (filename: string) => {
  mkdirSync(dirname(filename), { recursive: true })
  return filename
}

// --- restart -----------------------------------------------------------------

describe("sqlite store: restart", () => {
  it.effect("brings back every Worker, transcript and the runtime id", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      expect(existsSync(dirname(filename))).toBe(false)
      const first = yield* openRuntime(filename)
      const rt = first.runtime
      const chatty = yield* rt.create({ profile: "chatty", metadata: { team: "a", "with space": "ü €" } })
      const plain = yield* rt.create({})
      const slow = yield* rt.create({ profile: "slow" })
      const stopped = yield* rt.create({})
      yield* rt.input(chatty.id, { content: "hello", kind: "system" })
      yield* awaitIdle(rt, chatty.id)
      yield* rt.input(plain.id, { content: "line 1\nline 2 \u{1F600}" })
      yield* awaitIdle(rt, plain.id)
      yield* rt.input(slow.id, { content: "long" })
      yield* rt.cancel(slow.id, { reason: "changed my mind" })
      yield* rt.stop(stopped.id, { reason: "bye" })
      const before = yield* everything(rt)
      expect(before.list.workers).toHaveLength(4)
      expect(before.details[0]!.transcript.entries).toHaveLength(5)
      expect(before.stopped.workers.map((w: Worker) => w.id)).toEqual([stopped.id])
      // no shared memory: the exclusive locking mode keeps the WAL index in the heap
      expect(existsSync(`${filename}-shm`)).toBe(false)
      yield* Scope.close(first.scope, Exit.void)
      // a clean close checkpoints the WAL into the file
      expect(existsSync(`${filename}-wal`)).toBe(false)

      const second = yield* openRuntime(filename)
      expect(yield* everything(second.runtime)).toEqual(before)
      const next = yield* second.runtime.create({})
      expect(next.id > stopped.id).toBe(true)
      yield* Scope.close(second.scope, Exit.void)

      const same = yield* openRuntime(filename, { runtimeId: before.runtimeId })
      expect((yield* same.runtime.info).runtimeId).toBe(before.runtimeId)
      yield* Scope.close(same.scope, Exit.void)
    }))

  it.effect("brings back turns, queues, idempotency keys and outcomes", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      const everythingStored = Effect.gen(function*() {
        const store = yield* RuntimeStore
        return {
          loaded: yield* store.loadWorkers,
          transcript: yield* store.transcript(wid("a"), { after: 0, limit: 10 }),
          turns: [yield* store.turn(wid("a"), 1), yield* store.turn(wid("a"), 2)],
          byTeam: yield* store.listWorkers({ limit: 10, metadata: { team: "x" } })
        }
      })
      const written = yield* Effect.gen(function*() {
        const store = yield* RuntimeStore
        yield* store.insertWorker(worker("a", { metadata: { team: "x" } }), "key-a")
        yield* store.insertWorker(worker("b"), undefined)
        yield* store.commit({
          worker: worker("a", { metadata: { team: "x" }, status: "busy", turn: 2, lastSeq: 3, queued: 1 }),
          entries: [
            entry(1, { role: "user" }),
            entry(2, { role: "runtime", content: "failed: boom", outcome: "failed" }),
            entry(3, { role: "user", turn: 2 })
          ],
          turns: [
            turnRecord("a", 1, { status: "failed", lastSeq: 2, endedAt: "2026-01-01T00:00:02.000Z", reason: "boom" }),
            turnRecord("a", 2, { inputSeq: 3, lastSeq: 3 })
          ],
          enqueue: queuedInput(1)
        })
        yield* store.commit({
          worker: worker("a", { metadata: { team: "x" }, status: "busy", turn: 2, lastSeq: 3, queued: 2 }),
          entries: [],
          enqueue: queuedInput(2)
        })
        return yield* everythingStored
      }).pipe(Effect.provide(SqliteStoreLive({ filename })))
      expect(written.loaded.map((w) => [w.worker.id, w.idempotencyKey, w.queue.length, w.worker.queued])).toEqual([
        ["a", "key-a", 2, 2],
        ["b", undefined, 0, 0]
      ])
      expect(written.transcript[1]!.outcome).toBe("failed")
      expect(written.turns.map((turn) => turn?.status)).toEqual(["failed", "running"])
      expect(written.byTeam.map((w) => w.id)).toEqual(["a"])
      const read = yield* Effect.provide(everythingStored, SqliteStoreLive({ filename }))
      expect(read).toEqual(written)
      expect(read.transcript.map((e) => Object.hasOwn(e, "outcome"))).toEqual([false, true, false])
    }))

  it.effect("refuses to start with a runtime id other than the file's", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      const first = yield* openRuntime(filename, { runtimeId: "rt-one" })
      yield* first.runtime.create({})
      yield* Scope.close(first.scope, Exit.void)
      const error = yield* Effect.flip(openRuntime(filename, { runtimeId: "rt-two" }))
      expect(error).toBeInstanceOf(StoreError)
      expect(error.message).toContain(filename)
      expect(error.message).toContain("belongs to runtime \"rt-one\"")
      expect(error.message).toContain("\"rt-two\"")
      expect(error.message).toContain("--runtime-id")
      const again = yield* openRuntime(filename)
      expect((yield* again.runtime.info).runtimeId).toBe("rt-one")
      expect((yield* again.runtime.list({})).workers).toHaveLength(1)
      yield* Scope.close(again.scope, Exit.void)
    }))
})

// --- commit ------------------------------------------------------------------

describe("sqlite store: commit", () => {
  it.effect("is all or nothing", () =>
    Effect.gen(function*() {
      const store = yield* RuntimeStore
      yield* store.insertWorker(worker("a"), undefined)
      yield* store.commit({ worker: worker("a", { lastSeq: 1 }), entries: [entry(1)] })
      // a seq that is already stored: the Worker update is rolled back with it
      const duplicate = yield* Effect.flip(
        store.commit({ worker: worker("a", { lastSeq: 2, status: "busy" }), entries: [entry(1), entry(2)] })
      )
      expect(duplicate).toBeInstanceOf(StoreError)
      expect(duplicate.message).toContain("Worker a")
      // an unknown Worker: its entries are not kept
      const unknown = yield* Effect.flip(store.commit({ worker: worker("zz", { lastSeq: 1 }), entries: [entry(1)] }))
      expect(unknown.message).toContain("no Worker zz")
      // a queued input that is already queued: the turn record and the entry go with it
      yield* store.commit({ worker: worker("a", { lastSeq: 1, queued: 1 }), entries: [], enqueue: queuedInput(1) })
      const queuedTwice = yield* Effect.flip(store.commit({
        worker: worker("a", { lastSeq: 2, queued: 2 }),
        entries: [entry(2)],
        turns: [turnRecord("a", 1)],
        enqueue: queuedInput(1)
      }))
      expect(queuedTwice.message).toContain("Worker a")
      expect(yield* store.turn(wid("a"), 1)).toBeUndefined()
      expect(yield* store.loadWorkers).toEqual([
        { worker: worker("a", { lastSeq: 1, queued: 1 }), idempotencyKey: undefined, queue: [queuedRef(1)] }
      ])
      expect(yield* store.transcript(wid("a"), { after: 0, limit: 10 })).toEqual([entry(1)])
      expect(yield* store.transcript(wid("zz"), { after: 0, limit: 10 })).toEqual([])
      // a key that another Worker has: nothing is stored, the holder is returned
      expect(yield* store.insertWorker(worker("b"), "key")).toEqual({ created: true })
      expect(yield* store.insertWorker(worker("c"), "key")).toEqual({ created: false, existing: worker("b") })
      expect((yield* store.loadWorkers).map((w) => w.worker.id)).toEqual(["a", "b"])
      // more entries than one INSERT takes
      const many = Array.from({ length: 1234 }, (_, i) => entry(i + 2))
      yield* store.commit({ worker: worker("a", { lastSeq: 1235 }), entries: many })
      expect((yield* store.transcript(wid("a"), { after: 1000, limit: 1000 })).map((e) => e.seq)).toEqual(
        Array.from({ length: 235 }, (_, i) => i + 1001)
      )
      expect((yield* store.loadWorkers)[0]!.worker.lastSeq).toBe(1235)
    }).pipe(Effect.provide(SqliteStoreLive({ filename: freshFile() }))))
})

describe("sqlite store: a COMMIT that fails", () => {
  it.scoped("is a StoreError, and the next commit works", () =>
    Effect.gen(function*() {
      const filename = freshPlace(freshFile())
      const context = yield* Layer.build(SqliteClient.layer({ filename, disableWAL: true }))
      const sql = Context.get(context, SqlClient.SqlClient)
      const store = yield* Effect.provide(makeSqliteStore({ filename }), context)
      // A deferred foreign key fails at COMMIT, which SQLite then leaves open.
      yield* sql`PRAGMA foreign_keys = ON`
      yield* sql`CREATE TABLE parent (id TEXT PRIMARY KEY)`
      yield* sql`CREATE TABLE child (parent_id TEXT REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)`
      yield* sql`CREATE TRIGGER fail_commit AFTER INSERT ON entries WHEN NEW.content = 'boom'
                 BEGIN INSERT INTO child VALUES ('nobody'); END`
      yield* store.insertWorker(worker("a"), undefined)
      const error = yield* Effect.flip(
        store.commit({ worker: worker("a", { lastSeq: 1 }), entries: [{ ...entry(1), content: "boom" }] })
      )
      expect(error).toBeInstanceOf(StoreError)
      expect(error.message).toContain("FOREIGN KEY constraint failed")
      expect((yield* store.loadWorkers).map((w) => w.worker)).toEqual([worker("a")])
      yield* store.commit({ worker: worker("a", { lastSeq: 1 }), entries: [entry(1)] })
      expect(yield* store.transcript(wid("a"), { after: 0, limit: 10 })).toEqual([entry(1)])
    }))
})

// --- files that are not a usable store ----------------------------------------

/** How this process can make a file it owns unwritable: root ignores the mode bits. */
const readOnlyMethod = ((): "chmod" | "chattr" | undefined => {
  if (process.getuid?.() !== 0) return "chmod"
  const probe = join(root, "chattr-probe")
  writeFileSync(probe, "")
  try {
    execFileSync("chattr", ["+i", probe], { stdio: "ignore" })
    execFileSync("chattr", ["-i", probe], { stdio: "ignore" })
    return "chattr"
  } catch {
    return undefined
  } finally {
    rmSync(probe, { force: true })
  }
})()
if (readOnlyMethod === undefined) {
  console.warn("skipping the read-only file case: running as root, where chmod does not stop writes, without chattr")
}

const makeReadOnly = (filename: string) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      readOnlyMethod === "chattr" ? execFileSync("chattr", ["+i", filename]) : chmodSync(filename, 0o444)
    ),
    () =>
      Effect.sync(() =>
        readOnlyMethod === "chattr" ? execFileSync("chattr", ["-i", filename]) : chmodSync(filename, 0o644)
      )
  )

describe("sqlite store: files that are not a usable store", () => {
  it.effect("a file of garbage bytes", () =>
    Effect.gen(function*() {
      const filename = freshPlace(freshFile())
      writeFileSync(filename, Buffer.from("this is not a database, ".repeat(400)))
      const before = contentOf(filename)
      const error = yield* openFailure(filename)
      expect(error).toBeInstanceOf(StoreError)
      expect(error.message).toBe(`cannot open the SQLite store ${filename}: the file is not a SQLite database`)
      expect(contentOf(filename)).toEqual(before)
    }))

  it.effect("a short file of garbage", () =>
    Effect.gen(function*() {
      const filename = freshPlace(freshFile())
      writeFileSync(filename, "hello")
      const error = yield* openFailure(filename)
      expect(error.message).toContain(filename)
      expect(error.message).toContain("not a SQLite database")
      expect(readFileSync(filename, "utf8")).toBe("hello")
    }))

  it.effect("a directory", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      mkdirSync(filename, { recursive: true })
      const error = yield* openFailure(filename)
      expect(error.message).toBe(`cannot open the SQLite store ${filename}: it is a directory, not a database file`)
    }))

  it.effect("a path below a regular file", () =>
    Effect.gen(function*() {
      const file = freshPlace(freshFile())
      writeFileSync(file, "")
      const error = yield* openFailure(join(file, "runtime.db"))
      expect(error.message).toContain(`cannot open the SQLite store ${join(file, "runtime.db")}: cannot create`)
    }))

  it.effect("a SQLite database of another program", () =>
    Effect.gen(function*() {
      const filename = freshPlace(freshFile())
      yield* Effect.scoped(Effect.flatMap(
        Layer.build(SqliteClient.layer({ filename })),
        (context) => Context.get(context, SqlClient.SqlClient)`CREATE TABLE invoices (id INTEGER)`
      ))
      const before = contentOf(filename)
      const error = yield* openFailure(filename)
      expect(error.message).toContain(filename)
      expect(error.message).toContain("tables: invoices")
      expect(contentOf(filename)).toEqual(before)
    }))

  it.scoped.skipIf(readOnlyMethod === undefined)(
    `a read-only file (made so with ${readOnlyMethod})`,
    () =>
      Effect.gen(function*() {
        const filename = freshFile()
        yield* Effect.scoped(Layer.build(SqliteStoreLive({ filename })))
        const before = contentOf(filename)
        yield* makeReadOnly(filename)
        const error = yield* openFailure(filename)
        expect(error.message).toContain(`cannot open the SQLite store ${filename}: `)
        expect(error.message).toContain("the store must be writable")
        expect(contentOf(filename)).toEqual(before)
      })
  )
})

// --- a second process ----------------------------------------------------------

/**
 * A child `node` that opens the store through the built package (the global
 * setup builds `dist/`), commits, says "ready" and then holds the file.
 */
const holderProgram = `
import { Effect } from "effect"
import { RuntimeStore } from ${JSON.stringify(pathToFileURL(join(projectRoot, "dist/index.js")).href)}
import { SqliteStoreLive } from ${JSON.stringify(pathToFileURL(join(projectRoot, "dist/sqlite/index.js")).href)}
const worker = { id: "w1", runtimeId: "holder", profile: "default", status: "busy", createdAt: "t", updatedAt: "t", turn: 1, lastSeq: 0, metadata: {}, queued: 0 }
const program = Effect.gen(function* () {
  const store = yield* RuntimeStore
  yield* store.runtimeId("holder", () => "generated")
  yield* store.insertWorker(worker, undefined)
  yield* store.commit({ worker: { ...worker, lastSeq: 1 }, entries: [{ seq: 1, at: "t", role: "user", content: "hi", turn: 1 }] })
  console.log("ready")
  yield* Effect.never
})
Effect.runPromise(program.pipe(Effect.provide(SqliteStoreLive({ filename: process.env.STORE_FILE })))).catch((error) => {
  console.error(String(error))
  process.exit(1)
})
`

const startHolder = (filename: string) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      spawn(process.execPath, ["--input-type=module", "-e", holderProgram], {
        cwd: projectRoot,
        env: { ...process.env, STORE_FILE: filename },
        stdio: ["ignore", "pipe", "pipe"]
      })
    ),
    (child) => Effect.sync(() => child.kill("SIGKILL"))
  )

const awaitReady = (child: ChildProcess) =>
  Effect.async<void, Error>((resume) => {
    let stderr = ""
    child.stderr?.on("data", (chunk) => (stderr += String(chunk)))
    child.stdout?.on("data", (chunk) => {
      if (String(chunk).includes("ready")) resume(Effect.void)
    })
    child.on("exit", (code) => resume(Effect.fail(new Error(`the holder exited (${code}): ${stderr}`))))
  })

const awaitExit = (child: ChildProcess) =>
  Effect.async<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    child.on("exit", () => resume(Effect.void))
  })

describe("sqlite store: a second process", () => {
  it.scoped("is refused while the first holds the file, which then survives kill -9", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      const holder = yield* startHolder(filename)
      yield* awaitReady(holder)
      const before = contentOf(filename)
      const error = yield* openFailure(filename)
      expect(error).toBeInstanceOf(StoreError)
      expect(error.message).toBe(
        `cannot open the SQLite store ${filename}: the database is in use by another process (another runtime has it open)`
      )
      expect(contentOf(filename)).toEqual(before)

      holder.kill("SIGKILL")
      yield* awaitExit(holder)
      // what the holder committed before it said "ready" is all there
      const store = yield* Layer.build(SqliteStoreLive({ filename })).pipe(Effect.map(Context.get(RuntimeStore)))
      expect(yield* store.runtimeId(undefined, () => "new")).toBe("holder")
      expect((yield* store.loadWorkers).map(({ worker: w }) => [w.id, w.status, w.lastSeq])).toEqual([[
        "w1",
        "busy",
        1
      ]])
      expect((yield* store.transcript(wid("w1"), { after: 0, limit: 10 })).map((e) => e.content)).toEqual(["hi"])
    }))

  it.scoped("within one process too, a second open is refused", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      yield* Layer.build(SqliteStoreLive({ filename }))
      const error = yield* openFailure(filename)
      expect(error.message).toContain("in use by another process")
    }))
})

// --- migrating a version-1 file ---------------------------------------------

/** A timestamp per Worker and seq, so that a turn's times can be told apart. */
const at = (worker: number, seq: number) => `2026-01-0${worker}T00:00:${String(seq).padStart(2, "0")}.000Z`

/** Writes a file as version 1 of the store left it: migration 1 only, and its rows. */
const writeVersion1File = (filename: string) =>
  Effect.scoped(Effect.gen(function*() {
    const context = yield* Layer.build(SqliteClient.layer({ filename: freshPlace(filename), disableWAL: true }))
    const sql = Context.get(context, SqlClient.SqlClient)
    yield* Effect.provide(
      Migrator.make({})({
        loader: Migrator.fromRecord({ "1_create_tables": migrations["1_create_tables"]! }),
        table: MIGRATIONS_TABLE
      }),
      context
    )
    yield* sql`INSERT INTO meta (key, value) VALUES ('runtime_id', 'rt')`
    const v1Worker = (n: number, patch: Record<string, string | number | null>) => ({
      id: `w${n}`,
      runtime_id: "rt",
      profile: "default",
      status: "idle",
      created_at: at(n, 0),
      updated_at: at(n, 0),
      turn: 0,
      last_seq: 0,
      metadata: "{}",
      stop_reason: null,
      ...patch
    })
    const workers = [
      v1Worker(1, { turn: 4, last_seq: 8 }),
      v1Worker(2, { status: "stopped", stop_reason: "stopped", turn: 2, last_seq: 5, metadata: "{\"team\":\"x\"}" }),
      v1Worker(3, { status: "busy", turn: 1, last_seq: 2, metadata: "{\"team\":\"x\",\"user\":\"1\"}" }),
      v1Worker(4, { status: "stopped", stop_reason: "later", turn: 1, last_seq: 4, metadata: "{\"user\":\"1\"}" }),
      v1Worker(5, { status: "stopped", stop_reason: "stopped", turn: 0, last_seq: 1 })
    ]
    // [worker, seq, role, content, turn]
    const entries: ReadonlyArray<readonly [number, number, string, string, number]> = [
      [1, 1, "user", "hi", 1],
      [1, 2, "worker", "hello", 1],
      [1, 3, "user", "more", 2],
      [1, 4, "runtime", "cancelled: x", 2],
      [1, 5, "system", "again", 3],
      [1, 6, "runtime", "failed: y", 3],
      [1, 7, "user", "and again", 4],
      [1, 8, "runtime", "interrupted by restart", 4],
      [2, 1, "user", "hi", 1],
      [2, 2, "worker", "hello", 1],
      [2, 3, "user", "long", 2],
      [2, 4, "worker", "working", 2],
      [2, 5, "runtime", "stopped", 2],
      // still running when the file was closed: recovery at start will end it
      [3, 1, "user", "hi", 1],
      [3, 2, "worker", "working", 1],
      // interrupted by a shutdown; stopped later, while idle
      [4, 1, "user", "hi", 1],
      [4, 2, "worker", "working", 1],
      [4, 3, "runtime", "interrupted: the runtime shut down", 1],
      [4, 4, "runtime", "stopped: later", 1],
      // stopped before its first turn
      [5, 1, "runtime", "stopped", 0]
    ]
    for (const row of workers) yield* sql`INSERT INTO workers ${sql.insert(row)}`
    for (const [worker, seq, role, content, turn] of entries) {
      yield* sql`INSERT INTO entries ${
        sql.insert({ worker_id: `w${worker}`, seq, at: at(worker, seq), role, content, turn })
      }`
    }
  }))

describe("sqlite store: migrating a version-1 file", () => {
  it.effect("fills in outcomes, turn records and the metadata index from what version 1 stored", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      yield* writeVersion1File(filename)
      const check = Effect.gen(function*() {
        const store = yield* RuntimeStore
        expect(yield* store.runtimeId(undefined, () => "new")).toBe("rt")
        const loaded = yield* store.loadWorkers
        expect(loaded.map((w) => w.worker.id)).toEqual(["w1", "w2", "w3", "w4", "w5"])
        for (const { idempotencyKey, queue, worker } of loaded) {
          expect(worker.queued).toBe(0)
          expect(idempotencyKey).toBeUndefined()
          expect(queue).toEqual([])
        }
        const outcomes = (id: string) =>
          Effect.map(
            store.transcript(wid(id), { after: 0, limit: 100 }),
            (entries) => entries.map((e) => Object.hasOwn(e, "outcome") ? e.outcome : "-")
          )
        expect(yield* outcomes("w1")).toEqual(["-", "-", "-", "cancelled", "-", "failed", "-", "interrupted"])
        expect(yield* outcomes("w2")).toEqual(["-", "-", "-", "-", "stopped"])
        expect(yield* outcomes("w3")).toEqual(["-", "-"])
        expect(yield* outcomes("w4")).toEqual(["-", "-", "interrupted", "stopped"])
        expect(yield* outcomes("w5")).toEqual(["stopped"])
        const turn = (worker: number, n: number) => store.turn(wid(`w${worker}`), n)
        const ended = (worker: number, n: number, status: Turn["status"], input: number, last: number, end: number) =>
          turnRecord(`w${worker}`, n, {
            status,
            inputSeq: input,
            lastSeq: last,
            startedAt: at(worker, input),
            endedAt: at(worker, end)
          })
        expect(yield* turn(1, 1)).toEqual(ended(1, 1, "completed", 1, 2, 2))
        expect(yield* turn(1, 2)).toEqual({ ...ended(1, 2, "cancelled", 3, 4, 4), reason: "x" })
        expect(yield* turn(1, 3)).toEqual({ ...ended(1, 3, "failed", 5, 6, 6), reason: "y" })
        expect(yield* turn(1, 4)).toEqual(ended(1, 4, "interrupted", 7, 8, 8))
        expect(yield* turn(1, 5)).toBeUndefined()
        expect(yield* turn(2, 1)).toEqual(ended(2, 1, "completed", 1, 2, 2))
        expect(yield* turn(2, 2)).toEqual(ended(2, 2, "stopped", 3, 5, 5))
        expect(yield* turn(3, 1)).toEqual(
          turnRecord("w3", 1, { status: "running", inputSeq: 1, lastSeq: 2, startedAt: at(3, 1) })
        )
        // its turn ended with the first runtime entry; the stop came after
        expect(yield* turn(4, 1)).toEqual({
          ...ended(4, 1, "interrupted", 1, 4, 3),
          reason: "the runtime shut down"
        })
        expect(yield* turn(5, 0)).toBeUndefined()
        expect(yield* turn(5, 1)).toBeUndefined()
        const ids = (metadata: Record<string, string>) =>
          Effect.map(store.listWorkers({ limit: 10, metadata }), (ws) => ws.map((w) => w.id))
        expect(yield* ids({ team: "x" })).toEqual(["w2", "w3"])
        expect(yield* ids({ user: "1" })).toEqual(["w3", "w4"])
        expect(yield* ids({ team: "x", user: "1" })).toEqual(["w3"])
      })
      yield* Effect.provide(check, SqliteStoreLive({ filename }))
      // a second start migrates nothing and finds the same; the file takes v2 writes
      yield* Effect.provide(
        Effect.gen(function*() {
          yield* check
          const store = yield* RuntimeStore
          yield* store.insertWorker(worker("w6"), "key-6")
          const w1 = (yield* store.loadWorkers)[0]!.worker
          yield* store.commit({
            worker: { ...w1, turn: 5, lastSeq: 9, status: "busy" },
            entries: [entry(9, { role: "user", turn: 5 })],
            turns: [turnRecord("w1", 5, { inputSeq: 9, lastSeq: 9 })]
          })
          expect(yield* store.turn(wid("w1"), 5)).toMatchObject({ status: "running", inputSeq: 9 })
          expect((yield* store.loadWorkers)[5]).toMatchObject({ idempotencyKey: "key-6" })
        }),
        SqliteStoreLive({ filename })
      )
    }))
})

// --- migrating a version-2 file ---------------------------------------------

/** Writes a file as version 2 of the store left it: migrations 1 and 2, and Workers of every status. */
const writeVersion2File = (filename: string) =>
  Effect.scoped(Effect.gen(function*() {
    const context = yield* Layer.build(SqliteClient.layer({ filename: freshPlace(filename), disableWAL: true }))
    const sql = Context.get(context, SqlClient.SqlClient)
    yield* Effect.provide(
      Migrator.make({})({
        loader: Migrator.fromRecord({
          "1_create_tables": migrations["1_create_tables"]!,
          "2_v2": migrations["2_v2"]!
        }),
        table: MIGRATIONS_TABLE
      }),
      context
    )
    yield* sql`INSERT INTO meta (key, value) VALUES ('runtime_id', 'rt')`
    // [id, status, updated_at day, idempotency key]
    const rows: ReadonlyArray<readonly [string, string, number, string | null]> = [
      ["w1", "idle", 1, null],
      ["w2", "busy", 2, "key-2"],
      ["w3", "stopped", 6, null],
      ["w4", "failed", 3, null],
      ["w5", "idle", 4, null],
      ["w6", "stopped", 2, "key-6"],
      ["w7", "busy", 5, null],
      ["w8", "idle", 7, null]
    ]
    for (const [id, status, day, key] of rows) {
      yield* sql`INSERT INTO workers ${
        sql.insert({
          id,
          runtime_id: "rt",
          profile: "default",
          status,
          created_at: at(1, 0),
          updated_at: at(day, 0),
          turn: status === "busy" ? 1 : 0,
          last_seq: 0,
          metadata: "{}",
          stop_reason: status === "stopped" ? "x" : null,
          queued: id === "w7" ? 1 : 0,
          idempotency_key: key
        })
      }`
    }
    yield* sql`INSERT INTO queued_inputs ${
      sql.insert({ worker_id: "w7", id: 1, content: "queued 1", kind: "user", at: at(1, 1) })
    }`
    yield* sql`INSERT INTO turns ${
      sql.insert({
        worker_id: "w2",
        turn: 1,
        status: "running",
        input_seq: 1,
        last_seq: 1,
        started_at: at(2, 0),
        ended_at: null,
        reason: null
      })
    }`
  }))

describe("sqlite store: migrating a version-2 file", () => {
  it.effect("counts the Workers it has by status, indexes the ended ones, and keeps counting", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      yield* writeVersion2File(filename)
      const check = Effect.gen(function*() {
        const store = yield* RuntimeStore
        expect(yield* store.counts).toEqual({ idle: 3, busy: 2, stopped: 2, failed: 1 })
        expect(yield* store.busyWorkers).toEqual(["w2", "w7"])
        expect(yield* store.queuedWorkers).toEqual(["w7"])
        expect(yield* store.lastWorkerId).toBe("w8")
        expect(yield* store.expired(at(9, 0), 10)).toEqual(["w6", "w4", "w3"])
        expect((yield* store.workerByKey("key-6"))?.id).toBe("w6")
        expect((yield* store.getWorker(wid("w7")))?.queue).toEqual([{ id: 1, kind: "user", at: at(1, 1), bytes: 8 }])
        // v4: a turn written before usage was kept has none
        expect(yield* store.turn(wid("w2"), 1)).toMatchObject({ status: "running", usage: null })
      })
      yield* Effect.provide(
        Effect.gen(function*() {
          yield* check
          const store = yield* RuntimeStore
          const w1 = (yield* store.getWorker(wid("w1")))!.worker
          // the triggers count what the migrated file is written next
          yield* store.insertWorker(worker("w9"), undefined)
          yield* store.commit({ worker: { ...w1, status: "busy", turn: 1 }, entries: [] })
          yield* store.deleteWorker(wid("w4"))
          expect(yield* store.counts).toEqual({ idle: 3, busy: 3, stopped: 2, failed: 0 })
          yield* store.commit({ worker: { ...w1, status: "idle", turn: 1 }, entries: [] })
          yield* store.deleteWorker(wid("w9"))
          yield* store.insertWorker(worker("w4", { status: "failed", updatedAt: at(3, 0) }), undefined)
        }),
        SqliteStoreLive({ filename })
      )
      // a second start migrates nothing, and the counts are as they were left
      yield* Effect.provide(check, SqliteStoreLive({ filename }))
      const versions = yield* Effect.scoped(Effect.flatMap(
        Layer.build(SqliteClient.layer({ filename })),
        (context) =>
          Context.get(context, SqlClient.SqlClient).unsafe<{ migration_id: number }>(
            `SELECT migration_id FROM ${MIGRATIONS_TABLE} ORDER BY migration_id`
          )
      ))
      expect(versions.map((row) => row.migration_id)).toEqual([1, 2, 3, 4, 5])
    }))
})

// --- deleting a large Worker ---------------------------------------------------

describe("sqlite store: deleting a Worker", () => {
  it.scoped(
    "of 200,000 entries: other Workers' commits go on meanwhile, and its space is reused",
    () =>
      Effect.gen(function*() {
        const filename = freshPlace(freshFile())
        const context = yield* Layer.build(SqliteClient.layer({ filename, disableWAL: true }))
        const sql = Context.get(context, SqlClient.SqlClient)
        const store = yield* Effect.provide(makeSqliteStore({ filename }), context)
        const pragma = (name: string) =>
          Effect.map(sql.unsafe<Record<string, number>>(`PRAGMA ${name}`), (rows) => Object.values(rows[0]!)[0]!)
        /** The database file's size once the WAL is checkpointed into it. */
        const fileSize = Effect.zipRight(
          sql`PRAGMA wal_checkpoint(TRUNCATE)`,
          Effect.sync(() => statSync(filename).size)
        )
        const ENTRIES = 200_000
        const PER_COMMIT = 10_000
        const content = "x".repeat(100)
        /** `id` with ENTRIES entries and a turn record per 10 of them. */
        const fill = (id: string) =>
          Effect.gen(function*() {
            yield* store.insertWorker(worker(id, { metadata: { team: "x" } }), `key-${id}`)
            for (let last = PER_COMMIT; last <= ENTRIES; last += PER_COMMIT) {
              const first = last - PER_COMMIT + 1
              yield* store.commit({
                worker: worker(id, { metadata: { team: "x" }, lastSeq: last, turn: last / 10 }),
                entries: Array.from(
                  { length: PER_COMMIT },
                  (_, i) => entry(first + i, { content, turn: Math.floor((first + i - 1) / 10) + 1 })
                ),
                turns: Array.from(
                  { length: PER_COMMIT / 10 },
                  (_, i) => turnRecord(id, (first - 1) / 10 + i + 1, { status: "completed", inputSeq: first + i * 10 })
                )
              })
            }
          })
        yield* fill("big")
        yield* store.insertWorker(worker("other"), undefined)
        const sizeBefore = yield* fileSize
        expect(yield* pragma("freelist_count")).toBe(0)

        const deleting = yield* Effect.fork(store.deleteWorker(wid("big")))
        // Commit to another Worker, one after the other, until the delete ends.
        let seq = 0
        let whileDeleting = 0
        let sawPartial = false
        while (deleting.unsafePoll() === null) {
          seq++
          yield* store.commit({ worker: worker("other", { lastSeq: seq, turn: 1 }), entries: [entry(seq)] })
          if (deleting.unsafePoll() !== null) break
          whileDeleting++
          // the transcript is deleted from its start, a batch per transaction
          const first = (yield* store.transcript(wid("big"), { after: 0, limit: 1 }))[0]
          if (first !== undefined && first.seq > 1) sawPartial = true
        }
        yield* Fiber.join(deleting)
        // 200,000 entries are 40 transactions: the other Worker committed between them
        expect(whileDeleting).toBeGreaterThanOrEqual(10)
        expect(sawPartial).toBe(true)
        expect(yield* store.transcript(wid("big"), { after: 0, limit: 10 })).toEqual([])
        expect(yield* store.turn(wid("big"), 1)).toBeUndefined()
        expect((yield* store.loadWorkers).map((w) => w.worker.id)).toEqual(["other"])
        expect((yield* store.transcript(wid("other"), { after: 0, limit: 1000 })).map((e) => e.seq)).toEqual(
          Array.from({ length: seq }, (_, i) => i + 1)
        )

        // Its pages are free for reuse, not returned to the file system (a
        // VACUUM, with the runtime stopped, would): nearly the whole file.
        const pages = yield* pragma("page_count")
        expect(yield* pragma("freelist_count")).toBeGreaterThan(pages * 0.9)
        expect(yield* fileSize).toBeLessThanOrEqual(sizeBefore)
        // As many rows again go into the freed pages: the file grows by a few
        // percent (rows inserted before another Worker's fill pages less
        // densely than appended ones), not by their size again.
        yield* fill("again")
        expect(yield* pragma("freelist_count")).toBeLessThan(pages * 0.01)
        expect(yield* fileSize).toBeLessThanOrEqual(sizeBefore * 1.1)
      })
  )
})

// --- query plans ---------------------------------------------------------------

describe("sqlite store: reads are O(limit)", () => {
  it.scoped("transcript and list pages are index range reads, never scans or sorts", () =>
    Effect.gen(function*() {
      const filename = freshPlace(freshFile())
      const context = yield* Layer.build(SqliteClient.layer({ filename, disableWAL: true }))
      const sql = Context.get(context, SqlClient.SqlClient)
      yield* Effect.provide(makeSqliteStore({ filename }), context)
      const reads = readStatements(sql)
      const plan = (statement: ReturnType<typeof reads.allWorkers>) => {
        const [text, params] = statement.compile()
        return Effect.map(
          sql.unsafe<{ detail: string }>(`EXPLAIN QUERY PLAN ${text}`, params),
          (rows) => rows.map((row) => row.detail).join("; ")
        )
      }
      const transcript = yield* plan(reads.transcript("w", 10, 100))
      expect(transcript).toBe("SEARCH entries USING PRIMARY KEY (worker_id=? AND seq>?)")
      const list = yield* plan(reads.listWorkers({ limit: 100 }))
      expect(list).toBe("SEARCH workers USING INDEX sqlite_autoindex_workers_1 (id>?)")
      const byStatus = yield* plan(reads.listWorkers({ limit: 100, status: "idle", after: "x" }))
      expect(byStatus).toBe("SEARCH workers USING INDEX workers_status_id (status=? AND id>?)")
      const all = yield* plan(reads.allWorkers())
      expect(all).not.toContain("TEMP B-TREE")
      const queues = yield* plan(reads.allQueued())
      expect(queues).not.toContain("TEMP B-TREE")
      // a turn is one key lookup
      expect(yield* plan(reads.turn("w", 3))).toBe("SEARCH turns USING PRIMARY KEY (worker_id=? AND turn=?)")
      // whether a delete has batches left
      expect(yield* plan(reads.anyEntry("w"))).toBe("SEARCH entries USING PRIMARY KEY (worker_id=?)")
      expect(yield* plan(reads.anyTurn("w"))).toBe("SEARCH turns USING PRIMARY KEY (worker_id=?)")
      // a metadata-filtered page walks the first pair's index range from the
      // cursor; each Worker and each further pair is one key lookup
      const byPair = yield* plan(reads.listWorkers({ limit: 100, metadata: { team: "x" }, after: "x" }))
      expect(byPair).toBe(
        "SEARCH m USING PRIMARY KEY (key=? AND value=? AND worker_id>?); " +
          "SEARCH w USING INDEX sqlite_autoindex_workers_1 (id=?)"
      )
      for (
        const query of [
          { limit: 100, metadata: { team: "x" }, status: "idle" },
          { limit: 100, metadata: { team: "x", user: "1" } },
          { limit: 100, metadata: { a: "1", b: "2", c: "3", d: "4" }, status: "busy", after: "x" }
        ] as const
      ) {
        const steps = (yield* plan(reads.listWorkers(query))).split("; ")
        expect(steps[0]).toBe("SEARCH m USING PRIMARY KEY (key=? AND value=? AND worker_id>?)")
        // the Worker by id; with a status, by (status, id)
        expect(steps).toContainEqual(
          expect.stringMatching(
            /^SEARCH w USING INDEX (sqlite_autoindex_workers_1 \(id=\?\)|workers_status_id \(status=\? AND id=\?\))$/
          )
        )
        for (let pair = 2; pair <= Object.keys(query.metadata).length; pair++) {
          expect(steps.join("; ")).toMatch(
            new RegExp(`SEARCH m${pair} (EXISTS )?USING PRIMARY KEY \\(key=\\? AND value=\\? AND worker_id=\\?\\)`)
          )
        }
        // every step is a key search or the subquery around one: no scan, no sort
        for (const step of steps) expect(step).toMatch(/^(SEARCH |CORRELATED SCALAR SUBQUERY)/)
        expect(steps.join("; ")).not.toContain("TEMP B-TREE")
      }
    }))

  it.scoped("a Worker, its key, the busy ones, the last id, the expired ones and the counts: index reads, no scan of workers", () =>
    Effect.gen(function*() {
      const filename = freshPlace(freshFile())
      const context = yield* Layer.build(SqliteClient.layer({ filename, disableWAL: true }))
      const sql = Context.get(context, SqlClient.SqlClient)
      const store = yield* Effect.provide(makeSqliteStore({ filename }), context)
      // Rows of every status, so that the planner has something to choose between.
      for (let i = 0; i < 200; i++) {
        const status = (["idle", "busy", "stopped", "failed"] as const)[i % 4]!
        yield* store.insertWorker(
          worker(`w${String(i).padStart(3, "0")}`, {
            status,
            updatedAt: `2026-01-01T00:${String(i % 60).padStart(2, "0")}:00.000Z`,
            ...(status === "stopped" ? { stopReason: "x" } : {})
          }),
          i % 3 === 0 ? `key-${i}` : undefined
        )
      }
      yield* sql`ANALYZE`
      const reads = readStatements(sql)
      const plan = (statement: ReturnType<typeof reads.allWorkers>) => {
        const [text, params] = statement.compile()
        return Effect.map(
          sql.unsafe<{ detail: string }>(`EXPLAIN QUERY PLAN ${text}`, params),
          (rows) => rows.map((row) => row.detail).join("; ")
        )
      }
      // a Worker by id, its queue by its primary key
      expect(yield* plan(reads.workerById("w"))).toBe("SEARCH workers USING INDEX sqlite_autoindex_workers_1 (id=?)")
      expect(yield* plan(reads.queueOf("w"))).toBe("SEARCH queued_inputs USING PRIMARY KEY (worker_id=?)")
      // an input's receipt by its unique key
      expect(yield* plan(reads.inputReceipt("w", "in-1"))).toBe(
        "SEARCH input_receipts USING INDEX input_receipts_input (worker_id=? AND input_id=?)"
      )
      // a key through its partial unique index
      expect(yield* plan(reads.workerByKey("k"))).toBe(
        "SEARCH workers USING INDEX workers_idempotency_key (idempotency_key=?)"
      )
      // the busy ones: the status index's range, covering, in id order
      expect(yield* plan(reads.busyWorkers())).toBe("SEARCH workers USING COVERING INDEX workers_status_id (status=?)")
      // the last id: the primary key's last entry
      expect(yield* plan(reads.lastWorkerId())).toBe("SEARCH workers USING COVERING INDEX sqlite_autoindex_workers_1")
      // the expired ones: the partial index of ended Workers from the oldest, in its order
      expect(yield* plan(reads.expired("2026-01-02T00:00:00.000Z", 100))).toBe(
        "SEARCH workers USING COVERING INDEX workers_ended (updated_at<?)"
      )
      // the counts: four rows of their own table
      expect(yield* plan(reads.counts())).toBe("SCAN worker_counts")
      // the queued ones: the queue table's key, which DISTINCT follows without sorting
      const queued = yield* plan(reads.queuedWorkers())
      expect(queued).not.toContain("TEMP B-TREE")
      expect(queued).not.toContain("workers")
      for (
        const statement of [
          reads.workerById("w"),
          reads.workerByKey("k"),
          reads.busyWorkers(),
          reads.lastWorkerId(),
          reads.expired("x", 1),
          reads.counts()
        ]
      ) {
        const text = yield* plan(statement)
        expect(text).not.toMatch(/SCAN workers/)
        expect(text).not.toContain("TEMP B-TREE")
      }
      // and they answer as the store does
      expect(yield* store.counts).toEqual({ idle: 50, busy: 50, stopped: 50, failed: 50 })
      expect(yield* store.lastWorkerId).toBe("w199")
      expect((yield* store.busyWorkers).length).toBe(50)
      expect(yield* store.expired("2026-01-01T00:04:00.000Z", 10)).toEqual([
        "w002",
        "w062",
        "w122",
        "w182",
        "w003",
        "w063",
        "w123",
        "w183"
      ])
    }))
})

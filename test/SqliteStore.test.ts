/**
 * The SQLite store: the store contract and the behavioural suite over a real
 * file, then what only a file can do wrong: restarts, files that are not a
 * usable store, a second process, and query plans that stay O(limit).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { pathToFileURL } from "node:url"

import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Scope } from "effect"

import {
  Runtime,
  RuntimeFromStore,
  type RuntimeOptions,
  type RuntimeService,
  RuntimeStore,
  StoreError,
  type Worker,
  type WorkerId
} from "../src/index.js"
import { SqliteStoreLive } from "../src/sqlite/index.js"
import { makeSqliteStore, readStatements } from "../src/sqlite/SqliteStore.js"
import { suiteProfiles } from "./support/engines.js"
import { eventually } from "./support/eventually.js"
import { projectRoot } from "./support/packed.js"
import { runtimeSuite } from "./support/runtimeSuite.js"
import { entry, storeSuite, worker } from "./support/storeSuite.js"

const root = mkdtempSync(join(tmpdir(), "worker-runtime-sqlite-"))
afterAll(() => rmSync(root, { recursive: true, force: true }))

let files = 0
/** A path in a directory that does not exist yet: the store creates it. */
const freshFile = () => join(root, `place-${++files}`, "runtime.db")

storeSuite("sqlite store", () => {
  const filename = freshFile()
  return () => SqliteStoreLive({ filename })
})

runtimeSuite(
  "Runtime (embedded, sqlite store)",
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
      expect(before.details[0]!.transcript.entries).toHaveLength(4)
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
      yield* store.insertWorker(worker("a"))
      yield* store.commit(worker("a", { lastSeq: 1 }), [entry(1)])
      // a seq that is already stored: the Worker update is rolled back with it
      const duplicate = yield* Effect.flip(
        store.commit(worker("a", { lastSeq: 2, status: "busy" }), [entry(1), entry(2)])
      )
      expect(duplicate).toBeInstanceOf(StoreError)
      expect(duplicate.message).toContain("Worker a")
      // an unknown Worker: its entries are not kept
      const unknown = yield* Effect.flip(store.commit(worker("zz", { lastSeq: 1 }), [entry(1)]))
      expect(unknown.message).toContain("no Worker zz")
      expect(yield* store.loadWorkers).toEqual([worker("a", { lastSeq: 1 })])
      expect(yield* store.transcript("a", { after: 0, limit: 10 })).toEqual([entry(1)])
      expect(yield* store.transcript("zz", { after: 0, limit: 10 })).toEqual([])
      // more entries than one INSERT takes
      const many = Array.from({ length: 1234 }, (_, i) => entry(i + 2))
      yield* store.commit(worker("a", { lastSeq: 1235 }), many)
      expect((yield* store.transcript("a", { after: 1000, limit: 1000 })).map((e) => e.seq)).toEqual(
        Array.from({ length: 235 }, (_, i) => i + 1001)
      )
      expect((yield* store.loadWorkers)[0]!.lastSeq).toBe(1235)
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
      yield* store.insertWorker(worker("a"))
      const error = yield* Effect.flip(store.commit(worker("a", { lastSeq: 1 }), [{ ...entry(1), content: "boom" }]))
      expect(error).toBeInstanceOf(StoreError)
      expect(error.message).toContain("FOREIGN KEY constraint failed")
      expect(yield* store.loadWorkers).toEqual([worker("a")])
      yield* store.commit(worker("a", { lastSeq: 1 }), [entry(1)])
      expect(yield* store.transcript("a", { after: 0, limit: 10 })).toEqual([entry(1)])
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
const worker = { id: "w1", runtimeId: "holder", profile: "default", status: "busy", createdAt: "t", updatedAt: "t", turn: 1, lastSeq: 0, metadata: {} }
const program = Effect.gen(function* () {
  const store = yield* RuntimeStore
  yield* store.runtimeId("holder", () => "generated")
  yield* store.insertWorker(worker)
  yield* store.commit({ ...worker, lastSeq: 1 }, [{ seq: 1, at: "t", role: "user", content: "hi", turn: 1 }])
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
      expect((yield* store.loadWorkers).map((w) => [w.id, w.status, w.lastSeq])).toEqual([["w1", "busy", 1]])
      expect((yield* store.transcript("w1", { after: 0, limit: 10 })).map((e) => e.content)).toEqual(["hi"])
    }))

  it.scoped("within one process too, a second open is refused", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      yield* Layer.build(SqliteStoreLive({ filename }))
      const error = yield* openFailure(filename)
      expect(error.message).toContain("in use by another process")
    }))
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
    }))
})

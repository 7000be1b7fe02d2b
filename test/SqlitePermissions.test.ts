/**
 * Who can read the SQLite store: what the store creates (its directory, the
 * file, and the -wal / -shm files SQLite creates beside it) is the runtime's
 * user's alone whatever the umask; an existing file others can read is left
 * as it is, with a warning.
 */
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { afterAll, afterEach, beforeEach, describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Logger, LogLevel } from "effect"
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"

import { RuntimeStore } from "../src/index.js"
import { SqliteStoreLive } from "../src/sqlite/index.js"
import { entry, worker } from "./support/storeSuite.js"

const root = mkdtempSync(join(tmpdir(), "worker-runtime-sqlite-modes-"))
afterAll(() => rmSync(root, { recursive: true, force: true }))

let places = 0
/** A database path two directory levels below anything that exists. */
const freshFile = () => join(root, `place-${++places}`, "state", "rt.db")

const modeOf = (path: string) => statSync(path).mode & 0o777

// The umask a careless service runs with (files 644, directories 755); put back after each test.
let savedUmask: number
beforeEach(() => {
  savedUmask = process.umask(0o022)
})
afterEach(() => {
  process.umask(savedUmask)
})

/** The store on `filename` in the current scope, and the warnings it logs. */
const openStore = (filename: string) =>
  Effect.gen(function*() {
    const warnings: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => {
      if (logLevel === LogLevel.Warning) warnings.push(Array.isArray(message) ? message.join(" ") : String(message))
    })
    const context = yield* Layer.build(SqliteStoreLive({ filename })).pipe(
      Effect.provide(Logger.replace(Logger.defaultLogger, logger))
    )
    return { store: Context.get(context, RuntimeStore), warnings }
  })

/** A few commits, so that SQLite has written its WAL. */
const someCommits = (filename: string, workerId = "a") =>
  Effect.scoped(Effect.gen(function*() {
    const { store, warnings } = yield* openStore(filename)
    yield* store.insertWorker(worker(workerId), undefined)
    for (let seq = 1; seq <= 3; seq++) {
      yield* store.commit({ worker: worker(workerId, { lastSeq: seq }), entries: [entry(seq)] })
    }
    // While the store is open: its WAL holds these commits.
    const modes = Object.fromEntries(
      readdirSync(dirname(filename)).map((name) => [name, modeOf(join(dirname(filename), name))])
    )
    return { modes, warnings }
  }))

describe("sqlite store: file modes", () => {
  for (const umask of [0o022, 0o000]) {
    it.effect(`a new store is private under umask ${umask.toString(8).padStart(3, "0")}`, () =>
      Effect.gen(function*() {
        process.umask(umask)
        const filename = freshFile()
        const { modes, warnings } = yield* someCommits(filename)
        // Every level the store created, not only the last.
        expect(modeOf(dirname(filename)).toString(8)).toBe("700")
        expect(modeOf(dirname(dirname(filename))).toString(8)).toBe("700")
        expect(Object.keys(modes)).toContain("rt.db-wal")
        for (const [name, mode] of Object.entries(modes)) expect([name, mode.toString(8)]).toEqual([name, "600"])
        expect(warnings).toEqual([])
        // Reopened: still private, nothing to warn about.
        expect((yield* someCommits(filename, "b")).warnings).toEqual([])
        expect(modeOf(filename).toString(8)).toBe("600")
      }))
  }

  it.scoped("the -wal and -shm files another SQLite client creates beside it are private too", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      yield* someCommits(filename)
      // As `sqlite3` or a backup tool would open it: WAL with shared memory (a -shm file).
      const sql = Context.get(yield* Layer.build(SqliteClient.layer({ filename })), SqlClient.SqlClient)
      yield* sql`INSERT INTO meta (key, value) VALUES ('inspected', 'yes')`
      expect(modeOf(`${filename}-wal`).toString(8)).toBe("600")
      expect(modeOf(`${filename}-shm`).toString(8)).toBe("600")
    }))

  it.effect("an existing file others can read is left as it is, with one warning that says how to fix it", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      mkdirSync(dirname(filename), { recursive: true })
      writeFileSync(filename, "")
      chmodSync(filename, 0o644)
      const { warnings } = yield* someCommits(filename)
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toContain(filename)
      expect(warnings[0]).toContain("mode 644")
      expect(warnings[0]).toContain(`chmod 600 ${filename}`)
      expect(modeOf(filename).toString(8)).toBe("644")
      // An existing directory is not changed either.
      expect(modeOf(dirname(filename)).toString(8)).toBe("755")
    }))
})

// Durable inputs on the SQLite store, against a raw better-sqlite3 loop writing
// the same rows: per input, one transaction for the input entry + Worker, one
// for the output entry + Worker, with the store's pragmas.
import Database from "better-sqlite3"
import { Layer } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { RuntimeFromStore } from "../dist/index.js"
import { SqliteStoreLive } from "../dist/sqlite/index.js"
import { runtimeInputs } from "./inprocess.mjs"

const rawInputs = ({ batch, rounds }, dir) => {
  const db = new Database(join(dir, "raw.db"))
  db.pragma("locking_mode = EXCLUSIVE")
  db.pragma("journal_mode = WAL")
  db.pragma("synchronous = FULL")
  db.exec(`CREATE TABLE workers (id TEXT PRIMARY KEY, status TEXT NOT NULL, turn INTEGER NOT NULL,
             last_seq INTEGER NOT NULL, updated_at TEXT NOT NULL, metadata TEXT NOT NULL);
           CREATE TABLE entries (worker_id TEXT NOT NULL, seq INTEGER NOT NULL, at TEXT NOT NULL, role TEXT NOT NULL,
             content TEXT NOT NULL, turn INTEGER NOT NULL, PRIMARY KEY (worker_id, seq)) WITHOUT ROWID;`)
  const insertWorker = db.prepare(
    "INSERT INTO workers (id, status, turn, last_seq, updated_at, metadata) VALUES (?, 'idle', 0, 0, ?, '{}')"
  )
  const insertEntry = db.prepare("INSERT INTO entries (worker_id, seq, at, role, content, turn) VALUES (?, ?, ?, ?, ?, ?)")
  const updateWorker = db.prepare("UPDATE workers SET status = ?, turn = ?, last_seq = ?, updated_at = ? WHERE id = ?")
  const step = db.transaction((id, status, turn, seq, role, content) => {
    const at = new Date().toISOString()
    insertEntry.run(id, seq, at, role, content, turn)
    updateWorker.run(status, turn, seq, at, id)
  })
  const workers = []
  for (let i = 0; i < batch; i++) {
    const id = `w${String(i).padStart(8, "0")}`
    insertWorker.run(id, new Date().toISOString())
    workers.push({ id, turn: 0, seq: 0 })
  }
  const round = () => {
    for (const worker of workers) {
      worker.turn++
      step(worker.id, "busy", worker.turn, ++worker.seq, "user", "hello from the bench")
    }
    for (const worker of workers) step(worker.id, "idle", worker.turn, ++worker.seq, "worker", "hello from the bench")
  }
  round()
  const start = process.hrtime.bigint()
  for (let r = 0; r < rounds; r++) round()
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  db.close()
  return (batch * rounds) / seconds
}

export const storeInputs = async (options) => {
  const dir = mkdtempSync(join(tmpdir(), "worker-runtime-bench-"))
  try {
    const raw = rawInputs(options, dir)
    const layer = RuntimeFromStore({ maxWorkers: options.batch + 10 }).pipe(
      Layer.provide(SqliteStoreLive({ filename: join(dir, "runtime.db") }))
    )
    const runtime = await runtimeInputs(layer, options)
    return { raw, runtime }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

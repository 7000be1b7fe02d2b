// Durable inputs on the SQLite store, against a raw better-sqlite3 loop writing
// the same rows into the same schema with the same pragmas: per input, one
// transaction for the input entry + Worker row, one for the output entry +
// Worker row.
import Database from "better-sqlite3"
import { Effect, Layer } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { RuntimeFromStore } from "../src/index.js"
import { SqliteStoreLive } from "../src/sqlite/index.js"
import { type InputOptions, runtimeInputs } from "./inprocess.js"

interface RawWorker {
  readonly id: string
  readonly createdAt: string
  readonly metadata: Readonly<Record<string, string>>
  turn: number
  seq: number
}

/** The file's schema comes from the store itself (same tables, same index); then raw statements. */
const rawInputs = async ({ batch, rounds }: InputOptions, dir: string): Promise<number> => {
  const filename = join(dir, "raw.db")
  await Effect.runPromise(Effect.scoped(Layer.build(SqliteStoreLive({ filename }))))
  const db = new Database(filename)
  db.pragma("locking_mode = EXCLUSIVE")
  db.pragma("journal_mode = WAL")
  db.pragma("synchronous = FULL")
  const insertWorker = db.prepare(
    `INSERT INTO workers (id, runtime_id, profile, status, created_at, updated_at, turn, last_seq, metadata, stop_reason)
     VALUES (?, 'bench', 'default', 'idle', ?, ?, 0, 0, '{}', NULL)`
  )
  const insertEntry = db.prepare(
    "INSERT INTO entries (worker_id, seq, at, role, content, turn) VALUES (?, ?, ?, ?, ?, ?)"
  )
  // Every column, as the store writes the whole Worker row.
  const updateWorker = db.prepare(
    `UPDATE workers SET runtime_id = 'bench', profile = 'default', status = ?, created_at = ?, updated_at = ?,
       turn = ?, last_seq = ?, metadata = ?, stop_reason = NULL WHERE id = ?`
  )
  const step = db.transaction((worker: RawWorker, status: string, role: string, content: string) => {
    const at = new Date().toISOString()
    insertEntry.run(worker.id, worker.seq, at, role, content, worker.turn)
    updateWorker.run(status, worker.createdAt, at, worker.turn, worker.seq, JSON.stringify(worker.metadata), worker.id)
  })
  const workers: Array<RawWorker> = []
  for (let i = 0; i < batch; i++) {
    const id = `w${String(i).padStart(8, "0")}`
    const createdAt = new Date().toISOString()
    insertWorker.run(id, createdAt, createdAt)
    workers.push({ id, createdAt, metadata: {}, turn: 0, seq: 0 })
  }
  const round = () => {
    for (const worker of workers) {
      worker.turn++
      worker.seq++
      step(worker, "busy", "user", "hello from the bench")
    }
    for (const worker of workers) {
      worker.seq++
      step(worker, "idle", "worker", "hello from the bench")
    }
  }
  for (let r = 0; r < Math.max(2, rounds / 10); r++) round()
  const start = process.hrtime.bigint()
  for (let r = 0; r < rounds; r++) round()
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  db.close()
  return (batch * rounds) / seconds
}

export const storeInputs = async (
  options: InputOptions
): Promise<{ raw: number; runtime: number; concurrent: number }> => {
  const dir = mkdtempSync(join(tmpdir(), "worker-runtime-bench-"))
  try {
    const raw = await rawInputs(options, dir)
    const layer = RuntimeFromStore({ maxWorkers: options.batch + 10 }).pipe(
      Layer.provide(SqliteStoreLive({ filename: join(dir, "runtime.db") }))
    )
    const runtime = await runtimeInputs(layer, options)
    const concurrentLayer = RuntimeFromStore({ maxWorkers: options.batch + 10 }).pipe(
      Layer.provide(SqliteStoreLive({ filename: join(dir, "concurrent.db") }))
    )
    const concurrent = await runtimeInputs(concurrentLayer, { ...options, concurrent: true })
    return { raw, runtime, concurrent }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

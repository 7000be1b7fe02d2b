// Durable inputs on the SQLite store, against a raw better-sqlite3 loop writing
// the same rows into the same schema with the same pragmas: per input, one
// transaction for the input entry, the Worker row and the turn's record, one
// for the output entry, the `completed` runtime entry, the Worker row and the
// turn's record.
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
  inputSeq: number
  startedAt: string
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
    `INSERT INTO workers (id, runtime_id, profile, status, created_at, updated_at, turn, last_seq, metadata, queued,
       stop_reason, idempotency_key)
     VALUES (?, 'bench', 'default', 'idle', ?, ?, 0, 0, '{}', 0, NULL, NULL)`
  )
  const insertEntry = db.prepare(
    "INSERT INTO entries (worker_id, seq, at, role, content, turn, outcome) VALUES (?, ?, ?, ?, ?, ?, ?)"
  )
  // Every column, as the store writes the whole Worker row.
  const updateWorker = db.prepare(
    `UPDATE workers SET runtime_id = 'bench', profile = 'default', status = ?, created_at = ?, updated_at = ?,
       turn = ?, last_seq = ?, metadata = ?, queued = 0, stop_reason = NULL WHERE id = ?`
  )
  const upsertTurn = db.prepare(
    `INSERT INTO turns (worker_id, turn, status, input_seq, last_seq, started_at, ended_at, reason)
     VALUES (?, ?, ?, ?, ?, ?, ?, NULL)
     ON CONFLICT (worker_id, turn) DO UPDATE SET status = excluded.status, input_seq = excluded.input_seq,
       last_seq = excluded.last_seq, started_at = excluded.started_at, ended_at = excluded.ended_at,
       reason = excluded.reason`
  )
  const start = db.transaction((worker: RawWorker, content: string) => {
    const at = new Date().toISOString()
    worker.turn++
    worker.seq++
    worker.inputSeq = worker.seq
    worker.startedAt = at
    insertEntry.run(worker.id, worker.seq, at, "user", content, worker.turn, null)
    updateWorker.run("busy", worker.createdAt, at, worker.turn, worker.seq, JSON.stringify(worker.metadata), worker.id)
    upsertTurn.run(worker.id, worker.turn, "running", worker.seq, worker.seq, at, null)
  })
  const finish = db.transaction((worker: RawWorker, content: string) => {
    const at = new Date().toISOString()
    insertEntry.run(worker.id, ++worker.seq, at, "worker", content, worker.turn, null)
    insertEntry.run(worker.id, ++worker.seq, at, "runtime", "completed", worker.turn, "completed")
    updateWorker.run("idle", worker.createdAt, at, worker.turn, worker.seq, JSON.stringify(worker.metadata), worker.id)
    upsertTurn.run(worker.id, worker.turn, "completed", worker.inputSeq, worker.seq, worker.startedAt, at)
  })
  const workers: Array<RawWorker> = []
  for (let i = 0; i < batch; i++) {
    const id = `w${String(i).padStart(8, "0")}`
    const createdAt = new Date().toISOString()
    insertWorker.run(id, createdAt, createdAt)
    workers.push({ id, createdAt, metadata: {}, turn: 0, seq: 0, inputSeq: 0, startedAt: createdAt })
  }
  const round = () => {
    for (const worker of workers) start(worker, "hello from the bench")
    for (const worker of workers) finish(worker, "hello from the bench")
  }
  for (let r = 0; r < Math.max(2, rounds / 10); r++) round()
  const started = process.hrtime.bigint()
  for (let r = 0; r < rounds; r++) round()
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
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

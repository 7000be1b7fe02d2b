// Durable inputs on the PostgreSQL store against raw node-postgres (`pg.Pool`)
// writing the same statements, in the same run, on the same server, each in a
// database of its own whose schema the store made. Per input, as the store
// commits an echo turn: one transaction for the Worker row, the input entry
// and the turn's record, then one for the Worker row, the output and
// `completed` entries (one INSERT) and the turn's record.
import { Effect, Layer } from "effect"
import * as Pg from "pg"
import { makeIdGenerator, Runtime, RuntimeFromStore, type WorkerId } from "../src/index.js"
import { PostgresStoreLive } from "../src/postgres/index.js"
import { now, quiet } from "./lib.js"

const CONTENT = "hello from the bench"

// The store's statements as it sends them (src/sql/SqlStore.ts), parameters in the same order.
const INSERT_WORKER = `INSERT INTO workers (id, runtime_id, profile, status, created_at, updated_at, turn, last_seq,
  metadata, queued, stop_reason, idempotency_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`
const UPDATE_WORKER = `UPDATE workers SET runtime_id = $1, profile = $2, status = $3, created_at = $4,
  updated_at = $5, turn = $6, last_seq = $7, metadata = $8, queued = $9, stop_reason = $10 WHERE id = $11`
const INSERT_ENTRY = "INSERT INTO entries (worker_id, seq, at, role, content, turn, outcome) VALUES " +
  "($1, $2, $3, $4, $5, $6, $7)"
const INSERT_TWO_ENTRIES = `${INSERT_ENTRY}, ($8, $9, $10, $11, $12, $13, $14)`
const UPSERT_TURN = `INSERT INTO turns (worker_id, turn, status, input_seq, last_seq, started_at, ended_at, reason,
  input_tokens, output_tokens) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
  ON CONFLICT (worker_id, turn) DO UPDATE SET status = excluded.status, input_seq = excluded.input_seq,
  last_seq = excluded.last_seq, started_at = excluded.started_at, ended_at = excluded.ended_at,
  reason = excluded.reason, input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens`

type Statement = readonly [text: string, params: ReadonlyArray<unknown>]

interface RawWorker {
  readonly id: string
  readonly createdAt: string
  readonly metadata: Readonly<Record<string, string>>
  turn: number
  seq: number
  inputSeq: number
  startedAt: string
}

const RUNTIME_ID = "bench"

/** A raw side: its pool, and how many of its transactions deadlocked and were run again. */
interface RawSide {
  readonly pool: Pg.Pool
  deadlocks: number
}

/** SQLSTATE deadlock_detected. */
const DEADLOCK = "40P01"

/**
 * One transaction on a connection of the pool, as `@effect/sql-pg`'s
 * `withTransaction` runs it; run again when the server broke a deadlock by
 * aborting it (concurrent transactions lock the `worker_counts` rows that
 * the counts trigger updates, in the order of each status change).
 */
const transaction = async (side: RawSide, statements: ReadonlyArray<Statement>): Promise<void> => {
  for (;;) {
    const client = await side.pool.connect()
    try {
      await client.query("BEGIN")
      for (const [text, params] of statements) await client.query(text, [...params])
      await client.query("COMMIT")
      return
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined)
      if (!(error instanceof Error && "code" in error && error.code === DEADLOCK)) throw error
      side.deadlocks++
    } finally {
      client.release()
    }
  }
}

const workerParams = (worker: RawWorker, status: string, at: string): ReadonlyArray<unknown> => [
  RUNTIME_ID,
  "default",
  status,
  worker.createdAt,
  at,
  worker.turn,
  worker.seq,
  JSON.stringify(worker.metadata),
  0,
  null,
  worker.id
]

/** The input's transaction: Worker row, input entry, turn started. */
const startTurn = (pool: RawSide, worker: RawWorker): Promise<void> => {
  const at = new Date().toISOString()
  worker.turn++
  worker.seq++
  worker.inputSeq = worker.seq
  worker.startedAt = at
  return transaction(pool, [
    [UPDATE_WORKER, workerParams(worker, "busy", at)],
    [INSERT_ENTRY, [worker.id, worker.seq, at, "user", Buffer.from(CONTENT), worker.turn, null]],
    [UPSERT_TURN, [worker.id, worker.turn, "running", worker.seq, worker.seq, at, null, null, null, null]]
  ])
}

/** The turn's end: Worker row, output and `completed` entries, turn ended. */
const endTurn = (pool: RawSide, worker: RawWorker): Promise<void> => {
  const at = new Date().toISOString()
  const output = ++worker.seq
  const completed = ++worker.seq
  return transaction(pool, [
    [UPDATE_WORKER, workerParams(worker, "idle", at)],
    [INSERT_TWO_ENTRIES, [
      worker.id,
      output,
      at,
      "worker",
      Buffer.from(CONTENT),
      worker.turn,
      null,
      worker.id,
      completed,
      at,
      "runtime",
      Buffer.from("completed"),
      worker.turn,
      "completed"
    ]],
    [UPSERT_TURN, [
      worker.id,
      worker.turn,
      "completed",
      worker.inputSeq,
      worker.seq,
      worker.startedAt,
      at,
      null,
      null,
      null
    ]]
  ])
}

const rawWorkers = async (pool: RawSide, count: number): Promise<Array<RawWorker>> => {
  const ids = makeIdGenerator()
  const workers: Array<RawWorker> = []
  for (let i = 0; i < count; i++) {
    const createdAt = new Date().toISOString()
    const worker = { id: ids.next(), createdAt, metadata: {}, turn: 0, seq: 0, inputSeq: 0, startedAt: createdAt }
    await transaction(pool, [[INSERT_WORKER, [
      worker.id,
      RUNTIME_ID,
      "default",
      "idle",
      createdAt,
      createdAt,
      0,
      0,
      "{}",
      0,
      null,
      null
    ]]])
    workers.push(worker)
  }
  return workers
}

/** `inputs` inputs per writer, each writer one after another on its own Worker, the writers at once. */
const rawRound = (pool: RawSide, workers: ReadonlyArray<RawWorker>, inputs: number): Promise<unknown> =>
  Promise.all(workers.map(async (worker) => {
    for (let i = 0; i < inputs; i++) {
      await startTurn(pool, worker)
      await endTurn(pool, worker)
    }
  }))

/** The same through the Runtime: each input answered, then its turn awaited to its end. */
const storeRound = (workers: ReadonlyArray<WorkerId>, inputs: number) =>
  Effect.gen(function*() {
    const rt = yield* Runtime
    yield* Effect.forEach(workers, (id) =>
      Effect.gen(function*() {
        for (let i = 0; i < inputs; i++) {
          const accepted = yield* rt.input(id, { content: CONTENT })
          const turn = yield* rt.turn(id, accepted.worker.turn, { waitMs: 60_000 })
          if (turn.status !== "completed") return yield* Effect.die(`turn ${turn.turn} of ${id}: ${turn.status}`)
        }
      }), { concurrency: "unbounded", discard: true })
  })

export interface CommitOptions {
  /** Writers at once (1: one input at a time), each on a Worker of its own. */
  readonly writers: number
  /** Inputs per writer per round. */
  readonly inputs: number
  /** Measured rounds, alternating the sides. */
  readonly rounds: number
  /** Connections in every pool, the store's and the raw ones. */
  readonly poolSize: number
}

/** A raw side's database, and whether its counts trigger stays on (as the store's) or is disabled. */
export interface RawDatabase {
  readonly url: string
  readonly countsTrigger: boolean
}

export interface RawRate {
  /** Inputs per second. */
  readonly rate: number
  /** Transactions that deadlocked and ran again, in the measured rounds. */
  readonly deadlocks: number
}

/**
 * Inputs per second (2 transactions each) of the store and of each raw side,
 * in rounds alternating the sides (the order rotating), after a warm-up round.
 */
export const postgresCommits = async (
  rawDatabases: ReadonlyArray<RawDatabase>,
  storeUrl: string,
  { inputs, poolSize, rounds, writers }: CommitOptions
): Promise<{ store: number; raw: ReadonlyArray<RawRate> }> => {
  const sides: Array<RawSide> = []
  for (const { countsTrigger, url } of rawDatabases) {
    // The raw database's schema is the store's own.
    await Effect.runPromise(quiet(Effect.scoped(Layer.build(PostgresStoreLive({ url })))))
    const pool = new Pg.Pool({ connectionString: url, max: poolSize })
    pool.on("error", () => {})
    if (!countsTrigger) await pool.query("ALTER TABLE workers DISABLE TRIGGER USER")
    sides.push({ pool, deadlocks: 0 })
  }
  const layer = RuntimeFromStore({ maxWorkers: writers + 10 }).pipe(
    Layer.provide(PostgresStoreLive({ url: storeUrl, poolSize }))
  )
  try {
    return await Effect.runPromise(quiet(
      Effect.gen(function*() {
        const rt = yield* Runtime
        const raws: Array<ReadonlyArray<RawWorker>> = []
        for (const side of sides) raws.push(yield* Effect.promise(() => rawWorkers(side, writers)))
        const ids: Array<WorkerId> = []
        for (let i = 0; i < writers; i++) ids.push((yield* rt.create({})).id)
        // Side -1 is the store, then the raw ones by index.
        const order = [-1, ...sides.keys()]
        const seconds = order.map(() => 0)
        const timed = (side: number, measured: boolean) =>
          Effect.gen(function*() {
            const start = now()
            if (side < 0) yield* storeRound(ids, inputs)
            else yield* Effect.promise(() => rawRound(sides[side]!, raws[side]!, inputs))
            if (measured) seconds[side + 1]! += Number(now() - start) / 1e9
          })
        // Round -1 warms every side up; the deadlocks are counted from round 0.
        for (let round = -1; round < rounds; round++) {
          if (round === 0) { for (const side of sides) side.deadlocks = 0 }
          for (let k = 0; k < order.length; k++) {
            yield* timed(order[(k + Math.max(0, round)) % order.length]!, round >= 0)
          }
        }
        const total = writers * inputs * rounds
        return {
          store: total / seconds[0]!,
          raw: sides.map((side, index) => ({ rate: total / seconds[index + 1]!, deadlocks: side.deadlocks }))
        }
      }).pipe(Effect.provide(layer))
    ))
  } finally {
    for (const side of sides) await side.pool.end()
  }
}

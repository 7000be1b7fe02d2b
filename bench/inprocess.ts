// In-process: Runtime.input through the completed echo turn, against a bare
// Map + Promise doing the same bookkeeping.
import { Effect, type Layer } from "effect"
import { Runtime, RuntimeLive, type Worker } from "../src/index.js"

export interface InputOptions {
  readonly batch: number
  readonly rounds: number
  readonly concurrent?: boolean
}

/**
 * Inputs per second through completed turns, `batch` Workers at a time; the
 * inputs go one after the other, or all at once with `concurrent`.
 */
export const runtimeInputs = <E>(
  layer: Layer.Layer<Runtime, E>,
  { batch, concurrent = false, rounds }: InputOptions
): Promise<number> =>
  Effect.runPromise(
    Effect.gen(function*() {
      const rt = yield* Runtime
      const workers: Array<Worker> = []
      for (let i = 0; i < batch; i++) workers.push(yield* rt.create({}))
      const round = Effect.gen(function*() {
        yield* Effect.forEach(workers, (worker) => rt.input(worker.id, { content: "hello from the bench" }), {
          concurrency: concurrent ? "unbounded" : 1,
          discard: true
        })
        while ((yield* rt.info).workers.busy > 0) yield* Effect.yieldNow()
      })
      for (let r = 0; r < Math.max(2, rounds / 10); r++) yield* round
      const start = process.hrtime.bigint()
      for (let r = 0; r < rounds; r++) yield* round
      const seconds = Number(process.hrtime.bigint() - start) / 1e9
      return (batch * rounds) / seconds
    }).pipe(Effect.provide(layer))
  )

interface BareEntry {
  readonly seq: number
  readonly at: string
  readonly role: string
  readonly content: string
  readonly turn: number
}

interface BareWorker {
  readonly id: string
  status: string
  turn: number
  lastSeq: number
  updatedAt: string
  readonly entries: Array<BareEntry>
}

/** The same bookkeeping without Effect: a Map, objects, a Promise per turn. */
export const bareInputs = async ({ batch, rounds }: InputOptions): Promise<number> => {
  const workers = new Map<string, BareWorker>()
  const now = () => new Date().toISOString()
  for (let i = 0; i < batch; i++) {
    const id = `w${String(i).padStart(8, "0")}`
    workers.set(id, { id, status: "idle", turn: 0, lastSeq: 0, updatedAt: now(), entries: [] })
  }
  const input = (id: string, content: string) => {
    const worker = workers.get(id)
    if (worker === undefined) throw new Error("unknown")
    if (worker.status !== "idle") throw new Error("busy")
    const turn = worker.turn + 1
    const entry = { seq: worker.lastSeq + 1, at: now(), role: "user", content, turn }
    worker.entries.push(entry)
    Object.assign(worker, { status: "busy", turn, lastSeq: entry.seq, updatedAt: entry.at })
    const done = Promise.resolve().then(() => {
      // The echo, then the runtime entry that ends every turn.
      const at = now()
      const output = { seq: worker.lastSeq + 1, at, role: "worker", content, turn }
      const completed = { seq: worker.lastSeq + 2, at, role: "runtime", content: "completed", turn }
      worker.entries.push(output, completed)
      Object.assign(worker, { status: "idle", lastSeq: completed.seq, updatedAt: at })
    })
    return { accepted: { worker: { ...worker }, entry }, done }
  }
  const ids = [...workers.keys()]
  const round = async () => {
    const turns: Array<Promise<void>> = []
    for (const id of ids) turns.push(input(id, "hello from the bench").done)
    await Promise.all(turns)
  }
  for (let r = 0; r < Math.max(2, rounds / 10); r++) await round()
  const start = process.hrtime.bigint()
  for (let r = 0; r < rounds; r++) await round()
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  return (batch * rounds) / seconds
}

export const inProcess = async (options: InputOptions): Promise<{ bare: number; runtime: number }> => {
  const bare = await bareInputs(options)
  const runtime = await runtimeInputs(RuntimeLive({ maxWorkers: options.batch + 10 }), options)
  return { bare, runtime }
}

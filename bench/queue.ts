// Busy policy: inputs queued with `ifBusy: "enqueue"` to one Worker, all at
// once, until every turn has ended (the Worker's lastSeq is 3 entries per
// input further: the input, the echo, the `completed` runtime entry), against
// the same Worker fed one input at a time (input, wait until idle, next).
// Both on the memory store and on SQLite, each in the same run.
import { Effect, Layer } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  Runtime,
  RuntimeFromStore,
  RuntimeLive,
  type RuntimeOptions,
  type RuntimeService,
  type WorkerId
} from "../src/index.js"
import { SqliteStoreLive } from "../src/sqlite/index.js"
import { quiet } from "./lib.js"

/** Entries one echo turn records: the input, the echo, `completed`. */
export const ENTRIES_PER_TURN = 3

export interface QueueOptions {
  /** Inputs per round. */
  readonly inputs: number
  readonly rounds: number
}

/** Inputs per second. */
export interface QueueResults {
  readonly oneAtATime: number
  readonly queued: number
}

const CONTENT = "hello from the bench"

/**
 * Until the Worker has recorded `lastSeq` entries and is idle, polling with
 * `yieldNow` as the in-process rows do (measured faster here than waiting on
 * the turn with `waitMs`, whose timeout costs a timer per wait).
 */
const settled = (rt: RuntimeService, id: WorkerId, lastSeq: number) =>
  Effect.gen(function*() {
    for (;;) {
      const worker = yield* rt.get(id)
      if (worker.lastSeq >= lastSeq && worker.status === "idle") return worker
      yield* Effect.yieldNow()
    }
  })

const measure = <E>(layer: Layer.Layer<Runtime, E>, { inputs, rounds }: QueueOptions): Promise<QueueResults> =>
  Effect.runPromise(
    Effect.gen(function*() {
      const rt = yield* Runtime
      const single = yield* rt.create({})
      const queuing = yield* rt.create({})
      // One input, its turn to the end, then the next: the existing row's loop on one Worker.
      const oneAtATime = Effect.gen(function*() {
        for (let i = 0; i < inputs; i++) {
          const { worker } = yield* rt.input(single.id, { content: CONTENT })
          yield* settled(rt, single.id, worker.lastSeq + ENTRIES_PER_TURN - 1)
        }
      })
      // Every input at once: the first starts a turn, the others wait in the queue.
      const queued = Effect.gen(function*() {
        const start = (yield* rt.get(queuing.id)).lastSeq
        for (let i = 0; i < inputs; i++) yield* rt.input(queuing.id, { content: CONTENT, ifBusy: "enqueue" })
        yield* settled(rt, queuing.id, start + ENTRIES_PER_TURN * inputs)
      })
      const timed = (effect: Effect.Effect<void, unknown>) =>
        Effect.gen(function*() {
          const start = process.hrtime.bigint()
          yield* effect
          return inputs / (Number(process.hrtime.bigint() - start) / 1e9)
        })
      // Warm-up, then alternate; each keeps its best round (the machine is shared).
      yield* oneAtATime
      yield* queued
      let best = { oneAtATime: 0, queued: 0 }
      for (let r = 0; r < rounds; r++) {
        const a = yield* timed(oneAtATime)
        const b = yield* timed(queued)
        best = { oneAtATime: Math.max(best.oneAtATime, a), queued: Math.max(best.queued, b) }
      }
      return best
    }).pipe(Effect.provide(layer), quiet)
  )

export const queueInputs = async (
  options: QueueOptions
): Promise<{ readonly memory: QueueResults; readonly sqlite: QueueResults }> => {
  // The queue must hold a whole round.
  const runtimeOptions: RuntimeOptions = { maxQueuedInputs: options.inputs }
  const memory = await measure(RuntimeLive(runtimeOptions), options)
  const dir = mkdtempSync(join(tmpdir(), "worker-runtime-bench-"))
  try {
    const layer = RuntimeFromStore(runtimeOptions).pipe(
      Layer.provide(SqliteStoreLive({ filename: join(dir, "queue.db") }))
    )
    const sqlite = await measure(layer, options)
    return { memory, sqlite }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

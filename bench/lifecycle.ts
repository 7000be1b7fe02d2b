// Lifecycle: a metadata-filtered list page against an unfiltered one at
// 100,000 Workers (SQLite, and the memory store for comparison), and whether
// the memory store gives the heap of deleted Workers back.
import { Context, Effect, Layer, Schema } from "effect"
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  makeIdGenerator,
  makeMemoryStore,
  Runtime,
  RuntimeFromStore,
  RuntimeStore,
  type RuntimeStoreService,
  WorkerId
} from "../src/index.js"
import { SqliteStoreLive } from "../src/sqlite/index.js"
import { benchBuild, quiet } from "./lib.js"
import { insertWorkers, workerRow } from "./scale.js"

export const TEAMS = 20

/** Seconds per list page. */
export interface ListTimings {
  readonly unfiltered: number
  readonly filtered: number
}

/** `count` idle Workers with `{ team: "t<i % 20>" }`, in id order. */
const populate = (store: RuntimeStoreService, count: number) =>
  Effect.gen(function*() {
    const generator = makeIdGenerator()
    const workers = Array.from(
      { length: count },
      (_, i) => workerRow(WorkerId.make(generator.next()), 0, { team: `t${i % TEAMS}` })
    )
    yield* insertWorkers(store, workers)
    return workers.map((worker) => worker.id)
  })

const pages = (storeLayer: Layer.Layer<RuntimeStore>, ids: ReadonlyArray<WorkerId>, count: number) =>
  Effect.gen(function*() {
    const rt = yield* Runtime
    // Cursors spread over the whole id range, the first page among them.
    const cursor = (i: number) => i % 100 === 0 ? undefined : ids[Math.floor((i * 7919) % ids.length)]
    const unfiltered = (i: number) => {
      const after = cursor(i)
      return rt.list(after === undefined ? { limit: 50 } : { after, limit: 50 })
    }
    const filtered = (i: number) => {
      const after = cursor(i)
      return rt.list(
        after === undefined ? { metadata: { team: "t7" }, limit: 50 } : { metadata: { team: "t7" }, after, limit: 50 }
      )
    }
    const time = (page: (i: number) => Effect.Effect<unknown, unknown>, iterations: number) =>
      Effect.gen(function*() {
        for (let i = 0; i < 200; i++) yield* page(i)
        const start = process.hrtime.bigint()
        for (let i = 0; i < iterations; i++) yield* page(i)
        return Number(process.hrtime.bigint() - start) / 1e9 / iterations
      })
    // Alternating halves, so that neither gets the quieter moment of the machine.
    let a = 0
    let b = 0
    for (let round = 0; round < 4; round++) {
      a += yield* time(unfiltered, count / 4)
      b += yield* time(filtered, count / 4)
    }
    return { unfiltered: a / 4, filtered: b / 4 }
  }).pipe(Effect.provide(RuntimeFromStore({ maxWorkers: ids.length + 10 }).pipe(Layer.provide(storeLayer))))

export const listFiltered = async (
  workers: number,
  iterations: number
): Promise<{ readonly memory: ListTimings; readonly sqlite: ListTimings }> => {
  const store = makeMemoryStore()
  const memory = await Effect.runPromise(
    Effect.gen(function*() {
      const ids = yield* populate(store, workers)
      return yield* pages(Layer.succeed(RuntimeStore, store), ids, iterations)
    }).pipe(quiet)
  )
  const dir = mkdtempSync(join(tmpdir(), "worker-runtime-bench-"))
  try {
    const sqlite = await Effect.runPromise(
      Effect.gen(function*() {
        const context = yield* Layer.build(SqliteStoreLive({ filename: join(dir, "lifecycle.db") }))
        const ids = yield* populate(Context.get(context, RuntimeStore), workers)
        return yield* pages(Layer.succeedContext(context), ids, iterations)
      }).pipe(Effect.scoped, quiet)
    )
    return { memory, sqlite }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const Reclaim = Schema.parseJson(Schema.Struct({
  start: Schema.Number,
  created: Schema.Number,
  deleted: Schema.Number,
  again: Schema.Number,
  left: Schema.Number,
  create: Schema.Number,
  stop: Schema.Number,
  delete: Schema.Number
}))
export type Reclaim = typeof Reclaim.Type

/** bench/reclaim.ts in a fresh process. */
export const reclaim = (count: number): Reclaim => {
  const output = execFileSync(process.execPath, ["--expose-gc", join(benchBuild, "reclaim.js"), String(count)], {
    encoding: "utf8"
  })
  return Schema.decodeUnknownSync(Reclaim)(output.trim().split("\n").pop() ?? "")
}

// Scale: heap per idle Worker, transcript pages at 10 vs 1,000,000 entries,
// list pages at 1,000 vs 100,000 Workers; memory and SQLite stores.
import { Context, Effect, Layer } from "effect"
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  makeIdGenerator,
  makeMemoryStore,
  type Metadata,
  Runtime,
  RuntimeFromStore,
  RuntimeId,
  RuntimeStore,
  type RuntimeStoreService,
  type StoreError,
  type TranscriptEntry,
  type Worker,
  WorkerId
} from "../src/index.js"
import { SqliteStoreLive } from "../src/sqlite/index.js"
import { benchBuild } from "./lib.js"

export interface Sizes {
  /** Entries in the short transcript. */
  readonly small: number
  /** Entries in the long transcript. */
  readonly big: number
  /** Idle Workers to list. */
  readonly workers: number
}

/** Seconds per call. */
export interface Timings {
  readonly smallPage: number
  readonly bigPage: number
  readonly listFew: number
  readonly listMany: number
}

export const heapPerWorker = (count: number): number => {
  const output = execFileSync(process.execPath, ["--expose-gc", join(benchBuild, "heap.js"), String(count)], {
    encoding: "utf8"
  })
  const parsed: unknown = JSON.parse(output.trim().split("\n").pop() ?? "")
  if (typeof parsed === "object" && parsed !== null && "perWorker" in parsed && typeof parsed.perWorker === "number") {
    return parsed.perWorker
  }
  throw new Error(`heap.js printed no perWorker: ${output}`)
}

const at = new Date(0).toISOString()
const runtimeId = RuntimeId.make("bench")
/** An idle Worker row as the store keeps it, to fill a store without the Runtime. */
export const workerRow = (id: WorkerId, lastSeq = 0, metadata: Metadata = {}): Worker => ({
  id,
  runtimeId,
  profile: "default",
  status: "idle",
  createdAt: at,
  updatedAt: at,
  turn: lastSeq === 0 ? 0 : 1,
  lastSeq,
  metadata,
  queued: 0
})

/**
 * Inserts idle Workers through the store's own `insertWorker`, many at once:
 * on SQLite they share the group commit's transactions (256 rows each), which
 * is what makes 100,000 inserts take seconds. (A surrounding transaction of the
 * same client would deadlock: the store writes on its own fiber.)
 */
export const insertWorkers = (
  store: RuntimeStoreService,
  workers: ReadonlyArray<Worker>
): Effect.Effect<void, StoreError> =>
  Effect.forEach(workers, (worker) => store.insertWorker(worker, undefined), { concurrency: 1024, discard: true })

interface Populated {
  readonly smallId: WorkerId
  readonly bigId: WorkerId
  readonly listIds: ReadonlyArray<WorkerId>
}

/** Fills a store: one Worker with `small` entries, one with `big`, and `workers` idle Workers. */
const populate = (store: RuntimeStoreService, { big, small, workers }: Sizes): Effect.Effect<Populated, StoreError> =>
  Effect.gen(function*() {
    const generator = makeIdGenerator()
    const ids = { next: () => WorkerId.make(generator.next()) }
    const smallId = ids.next()
    const bigId = ids.next()
    const fill = (id: WorkerId, total: number) =>
      Effect.gen(function*() {
        yield* store.insertWorker(workerRow(id), undefined)
        for (let seq = 0; seq < total;) {
          const entries: Array<TranscriptEntry> = []
          for (let i = 0; i < 5000 && seq < total; i++) {
            seq++
            entries.push({ seq, at, role: seq % 2 === 1 ? "user" : "worker", content: `entry number ${seq}`, turn: 1 })
          }
          yield* store.commit({ worker: workerRow(id, seq), entries })
        }
      })
    yield* fill(smallId, small)
    yield* fill(bigId, big)
    const listIds: Array<WorkerId> = []
    for (let i = 0; i < workers; i++) listIds.push(ids.next())
    yield* insertWorkers(store, listIds.map((id) => workerRow(id)))
    return { smallId, bigId, listIds }
  })

const timeEffect = <E, R>(effect: (i: number) => Effect.Effect<unknown, E, R>, iterations: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < Math.min(200, iterations); i++) yield* effect(i)
    const start = process.hrtime.bigint()
    for (let i = 0; i < iterations; i++) yield* effect(i)
    return Number(process.hrtime.bigint() - start) / 1e9 / iterations
  })

/** Page and list timings on a Runtime over `storeLayer`, after `fill` populated it. */
const measure = <E1, E2>(
  storeLayer: Layer.Layer<RuntimeStore, E1>,
  fill: Effect.Effect<Populated, E2>,
  sizes: Sizes
) =>
  Effect.gen(function*() {
    const populated = yield* fill
    const timings = yield* Effect.gen(function*() {
      const rt = yield* Runtime
      // Pages of the same size (10 entries) at both lengths: what may grow with
      // the transcript is the cost of finding the page, not of reading it.
      const page = (id: WorkerId, total: number) => (i: number) =>
        rt.transcript(id, { after: Math.max(0, total - 10 - (i % 1000)), limit: 10 })
      const smallPage = yield* timeEffect(page(populated.smallId, sizes.small), 2000)
      const bigPage = yield* timeEffect(page(populated.bigId, sizes.big), 2000)
      const few = populated.listIds.slice(0, 1000)
      const list = (ids: ReadonlyArray<string>) => (i: number) => {
        const after = ids[(ids.length / 2 + i) % (ids.length - 100)]
        return rt.list(after === undefined ? { limit: 100 } : { after, limit: 100 })
      }
      const listFew = yield* timeEffect(list(few), 2000)
      const listMany = yield* timeEffect(list(populated.listIds), 2000)
      return { smallPage, bigPage, listFew, listMany }
    }).pipe(Effect.provide(RuntimeFromStore({ maxWorkers: sizes.workers + 10 }).pipe(Layer.provide(storeLayer))))
    return timings
  })

export const scaleMemory = (sizes: Sizes): Promise<Timings> => {
  const store = makeMemoryStore()
  return Effect.runPromise(measure(Layer.succeed(RuntimeStore, store), populate(store, sizes), sizes))
}

export const scaleSqlite = async (sizes: Sizes): Promise<Timings> => {
  const dir = mkdtempSync(join(tmpdir(), "worker-runtime-bench-"))
  const filename = join(dir, "scale.db")
  try {
    // Fill through the store's own statements (and its group commit).
    return await Effect.runPromise(
      Effect.gen(function*() {
        const context = yield* Layer.build(SqliteStoreLive({ filename }))
        const fill = populate(Context.get(context, RuntimeStore), sizes)
        return yield* measure(Layer.succeedContext(context), fill, sizes)
      }).pipe(Effect.scoped)
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

// Scale: heap per idle Worker, transcript pages at 10 vs 1,000,000 entries,
// list pages at 1,000 vs 100,000 Workers; memory and SQLite stores.
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { Context, Effect, Layer } from "effect"
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { makeIdGenerator, makeMemoryStore, Runtime, RuntimeFromStore, RuntimeStore } from "../dist/index.js"
import { makeSqliteStore } from "../dist/sqlite/index.js"
import { root } from "./lib.mjs"

export const heapPerWorker = (count) => {
  const output = execFileSync(process.execPath, ["--expose-gc", join(root, "bench", "heap.mjs"), String(count)], {
    encoding: "utf8"
  })
  return JSON.parse(output.trim().split("\n").pop()).perWorker
}

const at = new Date(0).toISOString()
const workerRow = (id, lastSeq = 0) => ({
  id,
  runtimeId: "bench",
  profile: "default",
  status: "idle",
  createdAt: at,
  updatedAt: at,
  turn: lastSeq === 0 ? 0 : 1,
  lastSeq,
  metadata: {}
})

/**
 * Fills a store: one Worker with `small` entries, one with `big`, and `workers`
 * idle Workers, their inserts wrapped by `batchInserts` (one transaction).
 */
const populate = (store, { big, small, workers }, batchInserts = (effect) => effect) =>
  Effect.gen(function*() {
    const ids = makeIdGenerator()
    const smallId = ids.next()
    const bigId = ids.next()
    const fill = (id, total) =>
      Effect.gen(function*() {
        yield* store.insertWorker(workerRow(id))
        for (let seq = 0; seq < total;) {
          const entries = []
          for (let i = 0; i < 5000 && seq < total; i++) {
            seq++
            entries.push({ seq, at, role: seq % 2 === 1 ? "user" : "worker", content: `entry number ${seq}`, turn: 1 })
          }
          yield* store.commit(workerRow(id, seq), entries)
        }
      })
    yield* fill(smallId, small)
    yield* fill(bigId, big)
    const listIds = []
    for (let i = 0; i < workers; i++) listIds.push(ids.next())
    yield* batchInserts(Effect.forEach(listIds, (id) => store.insertWorker(workerRow(id)), { discard: true }))
    return { smallId, bigId, listIds }
  })

const timeEffect = (effect, iterations) =>
  Effect.gen(function*() {
    for (let i = 0; i < Math.min(200, iterations); i++) yield* effect(i)
    const start = process.hrtime.bigint()
    for (let i = 0; i < iterations; i++) yield* effect(i)
    return Number(process.hrtime.bigint() - start) / 1e9 / iterations
  })

/** Page and list timings on a Runtime over `storeLayer`, after `fill` populated it. */
const measure = (storeLayer, fill, sizes) =>
  Effect.gen(function*() {
    const populated = yield* fill
    const timings = yield* Effect.gen(function*() {
      const rt = yield* Runtime
      // Pages of the same size (10 entries) at both lengths: what may grow with
      // the transcript is the cost of finding the page, not of reading it.
      const page = (id, total) => (i) =>
        rt.transcript(id, { after: Math.max(0, total - 10 - (i % 1000)), limit: 10 })
      const smallPage = yield* timeEffect(page(populated.smallId, sizes.small), 2000)
      const bigPage = yield* timeEffect(page(populated.bigId, sizes.big), 2000)
      const few = populated.listIds.slice(0, 1000)
      const list = (ids) => (i) => rt.list({ after: ids[(ids.length / 2 + i) % (ids.length - 100)], limit: 100 })
      const listFew = yield* timeEffect(list(few), 2000)
      const listMany = yield* timeEffect(list(populated.listIds), 2000)
      return { smallPage, bigPage, listFew, listMany }
    }).pipe(Effect.provide(RuntimeFromStore({ maxWorkers: sizes.workers + 10 }).pipe(Layer.provide(storeLayer))))
    return timings
  })

export const scaleMemory = (sizes) => {
  const store = makeMemoryStore()
  return Effect.runPromise(measure(Layer.succeed(RuntimeStore, store), populate(store, sizes), sizes))
}

export const scaleSqlite = async (sizes) => {
  const dir = mkdtempSync(join(tmpdir(), "worker-runtime-bench-"))
  const filename = join(dir, "scale.db")
  try {
    // Fill through the store's own statements; the 100k Worker inserts share one
    // transaction (commits go through the group commit, never inside one).
    const client = SqliteClient.layer({ filename, disableWAL: true })
    const storeLayer = Layer.effect(RuntimeStore, makeSqliteStore({ filename })).pipe(Layer.provideMerge(client))
    return await Effect.runPromise(
      Effect.gen(function*() {
        const context = yield* Layer.build(storeLayer)
        const store = Context.get(context, RuntimeStore)
        const sql = Context.get(context, SqlClient.SqlClient)
        const fill = populate(store, sizes, sql.withTransaction)
        return yield* measure(Layer.succeedContext(context), fill, sizes)
      }).pipe(Effect.scoped)
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

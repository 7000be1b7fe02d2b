// Heap per idle Worker while active and after passivation, against the heap
// with the Workers only stored (never used): `node --expose-gc passivate.js
// <memory|sqlite> <count> <passivateAfterMs>`, in its own process. Prints one
// JSON line (see `Passivation` in bench/stored.ts).
import { Context, Effect, Layer, Schema } from "effect"
import {
  makeIdGenerator,
  makeMemoryStore,
  Runtime,
  RuntimeControl,
  RuntimeFromStore,
  RuntimeStore,
  type RuntimeStoreService,
  WorkerId
} from "../src/index.js"
import { SqliteStoreLive } from "../src/sqlite/index.js"
import { quiet, settledHeap as settle } from "./lib.js"
import { insertWorkers, workerRow } from "./scale.js"
import { withTempDir } from "./stored.js"

const kind = process.argv[2] === "sqlite" ? "sqlite" : "memory"
const count = Number(process.argv[3] ?? 20_000)
const passivateAfterMs = Number(process.argv[4] ?? 5000)
const WARM = 1000

const generator = makeIdGenerator()
const decodeIds = Schema.decodeUnknownSync(Schema.Array(WorkerId))
/**
 * New flat strings with the same ids. The generator's ids are ropes (V8 cons
 * strings) until first used, larger than the flat string they become then; and
 * the store should hold ids of its own, not share the bench's.
 */
const copies = (ids: ReadonlyArray<WorkerId>): ReadonlyArray<WorkerId> => decodeIds(JSON.parse(JSON.stringify(ids)))
const fresh = (n: number) => copies(Array.from({ length: n }, () => WorkerId.make(generator.next())))

const measure = (store: RuntimeStoreService) =>
  Effect.gen(function*() {
    const warm = fresh(WARM)
    yield* insertWorkers(store, copies(warm).map((id) => workerRow(id)))
    return yield* Effect.gen(function*() {
      const rt = yield* Runtime
      const control = yield* RuntimeControl
      const activate = (ids: ReadonlyArray<WorkerId>) => Effect.forEach(ids, (id) => rt.cancel(id), { discard: true })
      const allPassivated = Effect.gen(function*() {
        while ((yield* control.activeWorkers) > 0) yield* Effect.sleep("20 millis")
      })
      // Every code path once (activation, the sweep, passivation), so that the
      // start holds compiled code and grown tables, not what a Worker costs.
      yield* activate(warm)
      yield* allPassivated
      // The ids are made before the start: their array is the bench's, not the store's.
      const ids = fresh(count)
      const start = settle()
      yield* insertWorkers(store, copies(ids).map((id) => workerRow(id)))
      const stored = settle()
      const activating = process.hrtime.bigint()
      yield* activate(ids)
      const activateUs = Number(process.hrtime.bigint() - activating) / 1e3 / count
      const activeWorkers = yield* control.activeWorkers
      const active = settle()
      const activated = process.hrtime.bigint()
      yield* allPassivated
      const passivatedAfterMs = Number(process.hrtime.bigint() - activated) / 1e6
      const passivated = settle()
      return { start, stored, active, activeWorkers, activateUs, passivated, passivatedAfterMs }
    }).pipe(
      Effect.provide(
        RuntimeFromStore({ maxWorkers: WARM + count + 10, passivateAfterMs }).pipe(
          Layer.provide(Layer.succeed(RuntimeStore, store))
        )
      )
    )
  })

const result = kind === "memory"
  ? await Effect.runPromise(measure(makeMemoryStore()).pipe(quiet))
  : await withTempDir((dir) =>
    Effect.runPromise(
      Effect.gen(function*() {
        const context = yield* Layer.build(SqliteStoreLive({ filename: `${dir}/passivate.db` }))
        return yield* measure(Context.get(context, RuntimeStore))
      }).pipe(Effect.scoped, quiet)
    )
  )
console.log(JSON.stringify(result))

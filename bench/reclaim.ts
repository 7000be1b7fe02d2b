// Whether the memory store gives deleted Workers back: heap after start, with
// `count` Workers created, after they were stopped and deleted, and after a
// second such cycle, each after a full GC. Also the time per create, stop and
// delete. Run with --expose-gc in its own process.
import { Effect } from "effect"
import { Runtime, RuntimeLive, type WorkerId } from "../src/index.js"
import { quiet, settledHeap as settle } from "./lib.js"

const count = Number(process.argv[2] ?? 100_000)
const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9

const result = await Effect.runPromise(
  Effect.gen(function*() {
    const rt = yield* Runtime
    const cycle = (n: number) =>
      Effect.gen(function*() {
        const ids: Array<WorkerId> = []
        let start = process.hrtime.bigint()
        for (let i = 0; i < n; i++) ids.push((yield* rt.create({ metadata: { team: `t${i % 20}` } })).id)
        const create = seconds(start) / n
        const created = settle()
        start = process.hrtime.bigint()
        for (const id of ids) yield* rt.stop(id)
        const stop = seconds(start) / n
        start = process.hrtime.bigint()
        for (const id of ids) yield* rt.delete(id)
        const remove = seconds(start) / n
        return { created, create, stop, delete: remove }
      })
    // Every code path once, so that the start holds compiled code, not what a
    // delete should give back.
    yield* cycle(Math.min(count, 1000))
    const start = settle()
    const first = yield* cycle(count)
    const deleted = settle()
    yield* cycle(count)
    const again = settle()
    return { ...first, start, deleted, again, left: (yield* rt.info).workers.total }
  }).pipe(Effect.provide(RuntimeLive({ maxWorkers: count + 10 })), quiet)
)
console.log(JSON.stringify(result))

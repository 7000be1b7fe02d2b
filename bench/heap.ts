// Heap per idle Worker: run with --expose-gc in its own process.
import { Effect } from "effect"
import { Runtime, RuntimeLive } from "../src/index.js"

const count = Number(process.argv[2] ?? 100_000)
const gc = globalThis.gc
if (gc === undefined) throw new Error("run with --expose-gc")
const settle = () => {
  for (let i = 0; i < 4; i++) gc()
  return process.memoryUsage().heapUsed
}

const perWorker = await Effect.runPromise(
  Effect.gen(function*() {
    const rt = yield* Runtime
    yield* rt.create({}) // warm every code path once
    const before = settle()
    for (let i = 0; i < count; i++) yield* rt.create({ metadata: {} })
    const after = settle()
    return (after - before) / count
  }).pipe(Effect.provide(RuntimeLive({ maxWorkers: count + 10 })))
)
console.log(JSON.stringify({ perWorker }))

// Heap per idle Worker: run with --expose-gc in its own process.
import { Effect } from "effect"
import { Runtime, RuntimeLive } from "../src/index.js"
import { settledHeap as settle } from "./lib.js"

const count = Number(process.argv[2] ?? 100_000)

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

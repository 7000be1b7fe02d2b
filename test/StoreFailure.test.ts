/**
 * A store failure during a request is `Unavailable`, and nothing is half
 * written: memory shows exactly what the store holds.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Logger, Stream, TestClock } from "effect"

import {
  makeEchoEngine,
  makeMemoryStore,
  Runtime,
  RuntimeFromStore,
  RuntimeStore,
  type RuntimeStoreService,
  StoreError,
  Unavailable
} from "../src/index.js"
import { eventually, waitForSleeps } from "./support/eventually.js"

/** The memory store, failing every write while `broken.on` is set. */
const flakyStore = (broken: { on: boolean }): RuntimeStoreService => {
  const store = makeMemoryStore()
  const guard = <A>(effect: Effect.Effect<A, StoreError>) =>
    Effect.suspend(() => (broken.on ? Effect.fail(new StoreError({ message: "disk on fire" })) : effect))
  return {
    ...store,
    insertWorker: (worker, key) => guard(store.insertWorker(worker, key)),
    commit: (change) => guard(store.commit(change)),
    transcript: (id, range) => guard(store.transcript(id, range)),
    listWorkers: (query) => guard(store.listWorkers(query))
  }
}

const withFlakyRuntime = (broken: { on: boolean }) =>
  Effect.provide(
    RuntimeFromStore({ profiles: { default: makeEchoEngine(), slow: makeEchoEngine({ delayMs: 1000 }) } }).pipe(
      Layer.provide(Layer.succeed(RuntimeStore, flakyStore(broken)))
    )
  )

describe("store failures", () => {
  it.effect("create, input, cancel, stop, list and transcript answer Unavailable and change nothing", () => {
    const broken = { on: false }
    return Effect.gen(function*() {
      const rt = yield* Runtime
      const worker = yield* rt.create({})
      const slow = yield* rt.create({ profile: "slow" })
      yield* rt.input(slow.id, { content: "busy" })
      broken.on = true
      expect(yield* Effect.flip(rt.create({}))).toBeInstanceOf(Unavailable)
      expect(yield* Effect.flip(rt.input(worker.id, { content: "x" }))).toBeInstanceOf(Unavailable)
      expect(yield* Effect.flip(rt.stop(worker.id))).toBeInstanceOf(Unavailable)
      expect(yield* Effect.flip(rt.cancel(slow.id))).toBeInstanceOf(Unavailable)
      expect(yield* Effect.flip(rt.list({}))).toBeInstanceOf(Unavailable)
      const error = yield* Effect.flip(rt.transcript(worker.id, {}))
      expect(error).toMatchObject({ _tag: "Unavailable", retryAfterMs: expect.any(Number) })
      expect(yield* rt.get(worker.id)).toEqual(worker)
      expect(yield* rt.get(slow.id)).toMatchObject({ status: "busy", lastSeq: 1 })
      expect((yield* rt.info).workers).toEqual({ total: 2, idle: 1, busy: 1, stopped: 0, failed: 0 })
      broken.on = false
      const accepted = yield* rt.input(worker.id, { content: "after" })
      expect(accepted.entry?.seq).toBe(1)
      const cancelled = yield* rt.cancel(slow.id)
      expect(cancelled).toMatchObject({ cancelled: true, worker: { status: "idle", lastSeq: 2 } })
      expect((yield* rt.list({})).workers).toHaveLength(2)
    }).pipe(withFlakyRuntime(broken))
  })

  it.effect("a follower whose catch-up the store refuses ends Unavailable, and the failure is logged", () => {
    const broken = { on: false }
    const logged: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => {
      logged.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
    })
    return Effect.gen(function*() {
      const rt = yield* Runtime
      const worker = yield* rt.create({})
      yield* rt.input(worker.id, { content: "x" })
      yield* eventually(rt.get(worker.id), (w) => w.status === "idle", "the turn's end")
      broken.on = true
      const error = yield* Effect.flip(Stream.runCollect(rt.events(worker.id, { after: 0 })))
      expect(error).toBeInstanceOf(Unavailable)
      expect(logged).toContainEqual(expect.stringMatching(/^ERROR store failure disk on fire$/))
    }).pipe(withFlakyRuntime(broken), Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
  })

  it.effect("a turn whose end cannot be recorded frees its Worker anyway", () => {
    const broken = { on: false }
    return Effect.gen(function*() {
      const rt = yield* Runtime
      const worker = yield* rt.create({ profile: "slow" })
      yield* rt.input(worker.id, { content: "x" })
      broken.on = true
      yield* waitForSleeps(1)
      yield* TestClock.adjust(1000)
      yield* eventually(rt.get(worker.id), (w) => w.status !== "busy", "the turn's end freeing the Worker")
      expect((yield* rt.get(worker.id)).status).toBe("idle")
      broken.on = false
      expect((yield* rt.input(worker.id, { content: "y" })).entry?.seq).toBe(2)
    }).pipe(withFlakyRuntime(broken))
  })
})

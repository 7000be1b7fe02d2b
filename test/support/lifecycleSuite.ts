/**
 * Worker lifecycle for Backends (docs/rest.md): delete and retention,
 * idempotent create, metadata filters. Runs embedded, over HTTP, on SQLite and
 * on PostgreSQL.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import {
  InvalidInput,
  Runtime,
  type RuntimeOptions,
  UnknownWorker,
  Unsupported,
  type WorkerId
} from "../../src/index.js"
import { suiteProfiles } from "./engines.js"
import { eventually } from "./eventually.js"
import type { MakeRuntimeLayer } from "./followSuite.js"

const rt = Runtime

/** Seconds the retention test moves the clock by at most, waiting for the sweep: 35 of the 40 minutes it has. */
const MAX_STEPS = 35 * 60

const idsOf = (workers: ReadonlyArray<{ readonly id: WorkerId }>) => workers.map((worker) => worker.id)

export const lifecycleSuite = (label: string, make: MakeRuntimeLayer) =>
  describe(label, () => {
    const withRuntime = (options: RuntimeOptions = {}) => <A, E>(effect: Effect.Effect<A, E, Runtime>) =>
      Effect.provide(effect, make({ profiles: suiteProfiles, ...options }))

    describe("delete", () => {
      it.effect("removes a stopped Worker for good; an idle or busy one is Unsupported", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const idle = yield* runtime.create({})
          const busy = yield* runtime.create({ profile: "slow" })
          yield* runtime.input(busy.id, { content: "x" })
          for (const worker of [idle, busy]) {
            const error = yield* Effect.flip(runtime.delete(worker.id))
            expect(error).toBeInstanceOf(Unsupported)
            expect(error).toMatchObject({ operation: "delete", workerId: worker.id })
          }
          yield* runtime.stop(idle.id)
          yield* runtime.delete(idle.id)
          expect(yield* Effect.flip(runtime.get(idle.id))).toBeInstanceOf(UnknownWorker)
          expect(yield* Effect.flip(runtime.transcript(idle.id, {}))).toBeInstanceOf(UnknownWorker)
          expect(yield* Effect.flip(runtime.delete(idle.id))).toBeInstanceOf(UnknownWorker)
          expect(idsOf((yield* runtime.list({})).workers)).toEqual([busy.id])
          expect((yield* runtime.info).workers).toMatchObject({ total: 1, stopped: 0 })
        }).pipe(withRuntime()))

      it.effect("with retainStoppedMs, deletes Workers stopped or failed longer ago than that", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const old = yield* runtime.create({})
          const fresh = yield* runtime.create({})
          const running = yield* runtime.create({})
          yield* runtime.stop(old.id)
          yield* TestClock.adjust("50 minutes")
          yield* runtime.stop(fresh.id)
          // Past the old Worker's retention (60 min), 40 minutes short of the fresh one's.
          yield* TestClock.adjust("20 minutes")
          // On a store with asynchronous I/O (PostgreSQL) the sweep an adjust
          // wakes ends after the adjust and sleeps past it: the clock goes on
          // a second per attempt, each attempt a read of the store, so that
          // the sweep's own reads and writes go on meanwhile; never as far as
          // the fresh Worker's retention.
          let steps = 0
          const listed = yield* eventually(
            Effect.zipRight(
              Effect.sync(() => steps++),
              Effect.zipRight(TestClock.adjust("1 second"), runtime.list({}))
            ),
            (page) => !idsOf(page.workers).includes(old.id) || steps >= MAX_STEPS,
            "the old Worker deleted"
          )
          expect(idsOf(listed.workers)).toEqual([fresh.id, running.id])
          expect(yield* Effect.flip(runtime.get(old.id))).toBeInstanceOf(UnknownWorker)
          expect((yield* runtime.get(fresh.id)).status).toBe("stopped")
          expect((yield* runtime.get(running.id)).status).toBe("idle")
        }).pipe(withRuntime({ retainStoppedMs: 60 * 60 * 1000 })))
    })

    describe("idempotent create", () => {
      it.effect("a known key returns the same Worker when the request is equal, InvalidInput when not", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const first = yield* runtime.create({ idempotencyKey: "chat-1", metadata: { team: "a" } })
          const again = yield* runtime.create({ idempotencyKey: "chat-1", metadata: { team: "a" } })
          expect(again.id).toBe(first.id)
          expect(yield* Effect.flip(runtime.create({ idempotencyKey: "chat-1", metadata: { team: "b" } })))
            .toBeInstanceOf(InvalidInput)
          expect(yield* Effect.flip(runtime.create({ idempotencyKey: "chat-1", profile: "slow" })))
            .toBeInstanceOf(InvalidInput)
          expect(yield* Effect.flip(runtime.create({ idempotencyKey: "no spaces" }))).toBeInstanceOf(InvalidInput)
          expect(yield* Effect.flip(runtime.create({ idempotencyKey: "k".repeat(129) }))).toBeInstanceOf(InvalidInput)
          const other = yield* runtime.create({ idempotencyKey: "chat-2" })
          expect(other.id).not.toBe(first.id)
          expect((yield* runtime.info).workers.total).toBe(2)
          // The key goes with its Worker.
          yield* runtime.stop(first.id)
          yield* runtime.delete(first.id)
          const anew = yield* runtime.create({ idempotencyKey: "chat-1" })
          expect(anew.id).not.toBe(first.id)
        }).pipe(withRuntime()))

      it.effect("50 concurrent creates with one key make exactly one Worker", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const workers = yield* Effect.forEach(
            Array.from({ length: 50 }),
            () => runtime.create({ idempotencyKey: "race", metadata: { n: "1" } }),
            { concurrency: "unbounded" }
          )
          expect(new Set(idsOf(workers)).size).toBe(1)
          expect((yield* runtime.info).workers.total).toBe(1)
        }).pipe(withRuntime()))
    })

    describe("metadata filters", () => {
      it.effect("list matches every pair exactly, with status and the cursor", () =>
        Effect.gen(function*() {
          const runtime = yield* rt
          const a1 = yield* runtime.create({ metadata: { team: "docs", user: "u1" } })
          const a2 = yield* runtime.create({ metadata: { team: "docs", user: "u2" } })
          const b1 = yield* runtime.create({ metadata: { team: "ops", user: "u1" } })
          yield* runtime.create({ metadata: { team: "docsx", user: "u1" } })
          yield* runtime.create({})
          const docs = yield* runtime.list({ metadata: { team: "docs" } })
          expect(idsOf(docs.workers)).toEqual([a1.id, a2.id])
          expect(idsOf((yield* runtime.list({ metadata: { team: "docs", user: "u1" } })).workers)).toEqual([a1.id])
          expect(idsOf((yield* runtime.list({ metadata: { user: "u1" } })).workers)).toEqual([
            a1.id,
            b1.id,
            expect.any(String)
          ])
          const page = yield* runtime.list({ metadata: { team: "docs" }, limit: 1 })
          expect(idsOf(page.workers)).toEqual([a1.id])
          const next = yield* runtime.list({ metadata: { team: "docs" }, limit: 1, after: page.nextAfter! })
          expect(idsOf(next.workers)).toEqual([a2.id])
          expect(next.nextAfter).toBeNull()
          yield* runtime.stop(a2.id)
          expect(idsOf((yield* runtime.list({ metadata: { team: "docs" }, status: "stopped" })).workers)).toEqual([
            a2.id
          ])
          expect((yield* runtime.list({ metadata: { team: "nobody" } })).workers).toEqual([])
          const tooMany = Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`k${i}`, "v"]))
          expect(yield* Effect.flip(runtime.list({ metadata: tooMany }))).toBeInstanceOf(InvalidInput)
        }).pipe(withRuntime()))
    })
  })

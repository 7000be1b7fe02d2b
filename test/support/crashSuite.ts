/**
 * `kill -9` of the runtime process, then a restart on the same store: no
 * acknowledged write is lost, seqs stay contiguous, no Worker is left busy,
 * an events stream goes on without a gap, and queued inputs become turns
 * exactly once. The same tests for every durable store (test/Crash.test.ts,
 * test/PostgresCrash.test.ts).
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Stream } from "effect"

import { freePort } from "../../scripts/postgresServer.js"
import { RuntimeHttpClientLive } from "../../src/http/index.js"
import { Runtime } from "../../src/index.js"
import { exitOf, type RunningBin, startBin } from "./bin.js"
import { eventuallyLive, within } from "./eventually.js"
import { raw } from "./raw.js"

interface Entry {
  readonly seq: number
  readonly role: string
  readonly content: string
  readonly turn: number
}
interface Worker {
  readonly id: string
  readonly status: string
  readonly lastSeq: number
  readonly turn: number
}

export interface CrashStore {
  /** What `RuntimeInfo.store` reports. */
  readonly kind: "sqlite" | "postgres"
  /** A new, empty store's `--store` value; `dir` is the test's own directory. */
  readonly make: (dir: string) => Effect.Effect<string>
}

/** Each 2xx input is an acknowledged entry that must survive. */
type Acknowledged = Array<{ readonly workerId: string; readonly entry: Entry }>

/**
 * Inputs to each of `workers` in a loop, concurrently, until the process is
 * gone; every 202 goes to `acknowledged`.
 */
const loadUntilGone = (bin: RunningBin, workers: ReadonlyArray<Worker>, acknowledged: Acknowledged) => {
  let round = 0
  return Effect.forEach(
    workers,
    (worker) =>
      Effect.gen(function*() {
        for (;;) {
          const content = `w${worker.id.slice(-4)} r${round++}`
          const response = yield* raw(bin.url, `/v1/workers/${worker.id}/input`, {
            method: "POST",
            body: { content }
          }).pipe(Effect.catchAllDefect(() => Effect.succeed(undefined)))
          if (response === undefined) return // the process is gone
          if (response.status === 202) {
            acknowledged.push({ workerId: worker.id, entry: (response.json as { entry: Entry }).entry })
          }
        }
      }),
    { concurrency: "unbounded", discard: true }
  )
}

/** Every Worker's transcript on `bin`, each checked whole: seqs 1..lastSeq, nothing missing. */
const transcriptsOf = (bin: RunningBin, count: number) =>
  Effect.gen(function*() {
    const listed = (yield* raw(bin.url, "/v1/workers?limit=1000")).json as { workers: Array<Worker> }
    expect(listed.workers).toHaveLength(count)
    expect(listed.workers.filter((worker) => worker.status === "busy")).toEqual([])
    const transcripts = new Map<string, Array<Entry>>()
    for (const worker of listed.workers) {
      const page = (yield* raw(bin.url, `/v1/workers/${worker.id}/transcript?limit=1000`)).json as {
        entries: Array<Entry>
        lastSeq: number
      }
      expect(page.entries.map((entry) => entry.seq)).toEqual(page.entries.map((_, i) => i + 1))
      expect(page.lastSeq).toBe(worker.lastSeq)
      expect(page.entries.length).toBe(worker.lastSeq)
      transcripts.set(worker.id, page.entries)
    }
    return transcripts
  })

export const crashSuite = (store: CrashStore, options: { readonly cycles: number }) => {
  const { cycles } = options
  describe(`crash recovery (${store.kind} store)`, () => {
    it.scopedLive(
      `loses no acknowledged write and leaves no Worker busy after kill -9 under load, ${cycles} times`,
      () =>
        Effect.gen(function*() {
          const dir = mkdtempSync(join(tmpdir(), "worker-runtime-crash-"))
          const profiles = join(dir, "profiles.json")
          writeFileSync(
            profiles,
            JSON.stringify({ default: { engine: "echo" }, slow: { engine: "echo", delayMs: 60_000 } })
          )
          const args = ["--store", yield* store.make(dir), "--profiles", profiles, "--shutdown-grace-ms", "200"]
          let bin = yield* startBin(args)
          const runtimeId = ((yield* raw(bin.url, "/v1/runtime")).json as { runtimeId: string }).runtimeId

          const create = (profile: string) =>
            Effect.map(raw(bin.url, "/v1/workers", { method: "POST", body: { profile } }), (r) => r.json as Worker)
          const fast = yield* Effect.forEach(Array.from({ length: 12 }), () => create("default"), { concurrency: 4 })
          const slow = yield* Effect.forEach(Array.from({ length: 4 }), () => create("slow"), { concurrency: 4 })

          const acknowledged: Acknowledged = []
          for (let cycle = 1; cycle <= cycles; cycle++) {
            // A turn in flight on each slow Worker, for the kill to cut.
            for (const worker of slow) {
              const response = yield* raw(bin.url, `/v1/workers/${worker.id}/input`, {
                method: "POST",
                body: { content: `slow ${worker.id} ${cycle}` }
              })
              expect(response.status).toBe(202)
              acknowledged.push({ workerId: worker.id, entry: (response.json as { entry: Entry }).entry })
            }
            const before = acknowledged.length
            const load = yield* Effect.fork(loadUntilGone(bin, fast, acknowledged))
            // Let the load run, then kill the process in the middle of it.
            yield* eventuallyLive(
              Effect.sync(() => acknowledged.length),
              (count) => count >= before + 200,
              `200 acknowledged inputs under load (cycle ${cycle})`,
              { everyMs: 10 }
            )
            bin.child.kill("SIGKILL")
            yield* exitOf(bin)
            yield* Fiber.join(load).pipe(within("the load ending once the process is gone"))

            bin = yield* startBin(args)
            expect((yield* raw(bin.url, "/v1/runtime")).json).toMatchObject({ runtimeId, store: store.kind })
            const transcripts = yield* transcriptsOf(bin, fast.length + slow.length)
            for (const { entry, workerId } of acknowledged) {
              expect(transcripts.get(workerId)?.[entry.seq - 1], `${workerId} seq ${entry.seq}`).toEqual(entry)
            }
            for (const worker of slow) {
              const entries = transcripts.get(worker.id)!
              expect(entries.map((entry) => entry.role)).toEqual(
                Array.from({ length: cycle }, () => ["user", "runtime"]).flat()
              )
              expect(entries.at(-1)!.content).toContain("interrupted by restart")
            }
          }
          expect(acknowledged.length).toBeGreaterThan(cycles * 200)

          // Recovered Workers take new work.
          const again = yield* raw(bin.url, `/v1/workers/${slow[0]!.id}/input`, {
            method: "POST",
            body: { content: "after the crashes" }
          })
          expect(again.status).toBe(202)
          // A clean shutdown past the grace records the turn it interrupts.
          bin.child.kill("SIGTERM")
          expect(yield* exitOf(bin)).toBe(0)
          const last = yield* startBin(args)
          const after = (yield* raw(last.url, `/v1/workers/${slow[0]!.id}/transcript?limit=1000`)).json as {
            entries: Array<Entry>
          }
          expect(after.entries.map((entry) => entry.role)).toEqual(
            Array.from({ length: cycles + 1 }, () => ["user", "runtime"]).flat()
          )
          expect(after.entries.at(-1)!.content).toContain("shut down")
        })
    )
  })

  describe(`a restart under a Backend's feet (${store.kind} store)`, () => {
    it.scopedLive("an events stream survives kill -9 and a restart: no gap, no duplicate", () =>
      Effect.gen(function*() {
        const dir = mkdtempSync(join(tmpdir(), "worker-runtime-follow-"))
        const profiles = join(dir, "profiles.json")
        // One line every 5 ms, for long enough to be cut by the kill.
        const lines =
          "let i = 0; const t = setInterval(() => { console.log('line ' + ++i); if (i === 400) clearInterval(t) }, 5)"
        writeFileSync(
          profiles,
          JSON.stringify({ lines: { engine: "process", command: [process.execPath, "-e", lines] } })
        )
        const port = yield* Effect.promise(freePort)
        const args = ["--port", String(port), "--store", yield* store.make(dir), "--profiles", profiles]
        const first = yield* startBin(args)
        const client = RuntimeHttpClientLive({
          baseUrl: first.url,
          reconnect: { attempts: 100, baseDelay: "50 millis", maxDelay: "200 millis" }
        }).pipe(Layer.provide(FetchHttpClient.layer))
        const runtime = yield* Effect.provide(Runtime, client)
        const worker = yield* runtime.create({ profile: "lines" })
        const seen: Array<number> = []
        const consumer = yield* Effect.fork(
          runtime.events(worker.id).pipe(
            Stream.runForEach((event) => Effect.sync(() => event.type === "entry" && seen.push(event.entry.seq)))
          )
        )
        yield* runtime.input(worker.id, { content: "go" })
        yield* eventuallyLive(Effect.sync(() => seen.length), (count) => count > 50, "entries before the kill")
        first.child.kill("SIGKILL")
        yield* exitOf(first)
        const second = yield* startBin(args)
        yield* runtime.stop(worker.id, { reason: "done" })
        yield* Fiber.join(consumer).pipe(within("the stream's end"))
        const last = (yield* runtime.get(worker.id)).lastSeq
        expect(seen).toEqual(Array.from({ length: last }, (_, i) => i + 1))
        const entries = (yield* runtime.transcript(worker.id, { limit: 1000 })).entries
        expect(entries.some((entry) => entry.outcome === "interrupted")).toBe(true)
        second.child.kill("SIGTERM")
        expect(yield* exitOf(second)).toBe(0)
      }))

    it.scopedLive(
      "every input queued with ifBusy: enqueue before kill -9 becomes a turn exactly once after the restart",
      () =>
        Effect.gen(function*() {
          const dir = mkdtempSync(join(tmpdir(), "worker-runtime-queue-"))
          const profiles = join(dir, "profiles.json")
          writeFileSync(
            profiles,
            JSON.stringify({ slow: { engine: "echo", delayMs: 60_000 }, fast: { engine: "echo", delayMs: 20 } })
          )
          const args = ["--store", yield* store.make(dir), "--profiles", profiles]
          const first = yield* startBin(args)
          const created = yield* raw(first.url, "/v1/workers", { method: "POST", body: { profile: "slow" } })
          const { id } = created.json as { id: string }
          yield* raw(first.url, `/v1/workers/${id}/input`, { method: "POST", body: { content: "first" } })
          const queued: Array<string> = []
          for (let i = 0; i < 10; i++) {
            const response = yield* raw(first.url, `/v1/workers/${id}/input`, {
              method: "POST",
              body: { content: `queued ${i}`, ifBusy: "enqueue" }
            })
            expect(response.status).toBe(202)
            expect(response.json).toMatchObject({ queued: true, position: i + 1 })
            queued.push(`queued ${i}`)
          }
          first.child.kill("SIGKILL")
          yield* exitOf(first)
          // After the restart the queue runs; interrupt each (slow) turn to move on.
          const second = yield* startBin(args)
          for (let i = 0; i < 10; i++) {
            yield* eventuallyLive(
              Effect.map(raw(second.url, `/v1/workers/${id}`), (r) => r.json as Worker),
              (worker) => worker.status === "busy" && worker.turn === i + 2,
              `queued turn ${i + 1} running`
            )
            yield* raw(second.url, `/v1/workers/${id}/cancel`, { method: "POST" })
          }
          const page = (yield* raw(second.url, `/v1/workers/${id}/transcript?limit=1000`)).json as {
            entries: Array<Entry>
          }
          const inputs = page.entries.filter((entry) => entry.role === "user").map((entry) => entry.content)
          expect(inputs).toEqual(["first", ...queued])
          expect((yield* raw(second.url, `/v1/workers/${id}`)).json).toMatchObject({ status: "idle", queued: 0 })
        })
    )
  })
}

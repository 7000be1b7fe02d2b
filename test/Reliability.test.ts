/**
 * Hostile engines with real child processes, on both stores: the calls that
 * end a turn always answer, whatever the turn is doing when they arrive.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

import * as NodeContext from "@effect/platform-node/NodeContext"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"

import {
  makeMemoryStore,
  MemoryStoreLive,
  Runtime,
  RuntimeFromStore,
  RuntimeStore,
  type RuntimeStoreService
} from "../src/index.js"
import { buildEngines, type ProfileConfigs } from "../src/node/Profiles.js"
import { SqliteStoreLive } from "../src/sqlite/index.js"
import { eventuallyLive, HANG_MS } from "./support/eventually.js"

const root = mkdtempSync(join(tmpdir(), "reliability-"))
afterAll(() => rmSync(root, { recursive: true, force: true }))
let files = 0

const stores: ReadonlyArray<readonly [string, () => Layer.Layer<RuntimeStore, unknown>]> = [
  ["memory", () => MemoryStoreLive()],
  ["sqlite", () => SqliteStoreLive({ filename: join(root, `${++files}.db`) })]
]

/** 100-byte lines as fast as the pipe takes them, until the engine stops the child. */
const FLOOD = `const line = "x".repeat(99) + "\\n"
function write() { while (process.stdout.write(line)); process.stdout.once("drain", write) }
write()`

const profiles: ProfileConfigs = {
  flood: { engine: "process", command: [process.execPath, "-e", FLOOD], maxOutputBytes: 200 * 1024 }
}

const runtimeOn = (store: Layer.Layer<RuntimeStore, unknown>, configs: ProfileConfigs = profiles) =>
  Effect.map(
    Layer.build(
      Layer.unwrapEffect(
        Effect.map(buildEngines(configs), (engines) => RuntimeFromStore({ profiles: engines }))
      ).pipe(Layer.provide(store), Layer.provide(NodeContext.layer))
    ),
    Context.get(Runtime)
  )

/** Fails instead of hanging when a call never answers (disconnected: even an uninterruptible one). */
const answers = <A, E>(what: string, call: Effect.Effect<A, E>) =>
  Effect.disconnect(Effect.either(call)).pipe(
    Effect.timeoutFail({ duration: HANG_MS, onTimeout: () => new Error(`never answered: ${what}`) }),
    Effect.orDie
  )

describe("a cancel or stop racing a flood of output", () => {
  for (const [name, store] of stores) {
    it.scopedLive(`always answers, and the Worker ends idle or stopped (${name} store)`, () =>
      Effect.gen(function*() {
        const runtime = yield* runtimeOn(store())
        const rounds = 24
        yield* Effect.forEach(
          Array.from({ length: rounds }, (_, i) => i),
          (round) =>
            Effect.gen(function*() {
              const worker = yield* runtime.create({ profile: "flood" })
              yield* runtime.input(worker.id, { content: "go" })
              // Before, during and after the moment the flood passes maxOutputBytes.
              yield* Effect.sleep(Math.floor(Math.random() * 400))
              const stop = round % 3 === 0
              yield* answers(
                stop ? "stop" : "cancel",
                stop ? Effect.asVoid(runtime.stop(worker.id)) : Effect.asVoid(runtime.cancel(worker.id))
              )
              const after = yield* runtime.get(worker.id)
              expect(after.status).toBe(stop ? "stopped" : "idle")
              if (!stop) {
                // Usable again: a new turn starts.
                yield* answers("input", runtime.input(worker.id, { content: "again" }))
                yield* answers("cancel", runtime.cancel(worker.id))
              }
            }),
          { concurrency: 4, discard: true }
        )
        expect((yield* runtime.info).workers.busy).toBe(0)
      }))
  }
})

describe("a flood of output", () => {
  /** The memory store, counting commits. */
  const countingStore = () => {
    const store = makeMemoryStore()
    const counter = { commits: 0 }
    return {
      counter,
      layer: Layer.succeed(
        RuntimeStore,
        {
          ...store,
          commit: (change) => Effect.suspend(() => (counter.commits++, store.commit(change)))
        } satisfies RuntimeStoreService
      )
    }
  }

  const LINES = `for (let i = 0; i < Number(process.argv[1]); i++) process.stdout.write("line " + i + "\\n")`

  it.scopedLive("is committed in batches: far fewer commits than lines", () =>
    Effect.gen(function*() {
      const { counter, layer } = countingStore()
      const runtime = yield* runtimeOn(layer, {
        lines: { engine: "process", command: [process.execPath, "-e", LINES, "20000"], maxOutputEntries: 100_000 }
      })
      const worker = yield* runtime.create({ profile: "lines" })
      yield* runtime.input(worker.id, { content: "go" })
      const idle = yield* eventuallyLive(runtime.get(worker.id), (w) => w.status === "idle", "the flood's end")
      expect(idle.lastSeq).toBe(1 + 20_000 + 1)
      const page = yield* runtime.transcript(worker.id, { after: 1, limit: 3 })
      expect(page.entries.map((entry) => entry.content)).toEqual(["line 0", "line 1", "line 2"])
      // One commit for the input, one for the end, and batches in between.
      expect(counter.commits).toBeLessThan(20_000 / 20)
    }))

  it.scopedLive("stops a turn past maxOutputEntries, keeping the entries within it", () =>
    Effect.gen(function*() {
      const runtime = yield* runtimeOn(MemoryStoreLive(), {
        lines: { engine: "process", command: [process.execPath, "-e", LINES, "500"], maxOutputEntries: 10 }
      })
      const worker = yield* runtime.create({ profile: "lines" })
      yield* runtime.input(worker.id, { content: "go" })
      yield* eventuallyLive(runtime.get(worker.id), (w) => w.status === "idle", "the turn's end")
      const entries = (yield* runtime.transcript(worker.id, {})).entries
      expect(entries.filter((entry) => entry.role === "worker")).toHaveLength(10)
      expect(entries.at(-1)).toMatchObject({ role: "runtime" })
      expect(entries.at(-1)?.content).toContain("maxOutputEntries (10 entries)")
    }))

  for (const [name, store] of stores) {
    it.scopedLive(`does not hold up a cancel, nor another Worker (${name} store)`, () =>
      Effect.gen(function*() {
        const runtime = yield* runtimeOn(store(), {
          flood: {
            engine: "process",
            // 1 MiB of "x\n": 524,288 entries if nothing stopped it.
            command: [process.execPath, "-e", "process.stdout.write(\"x\\n\".repeat(512 * 1024))"],
            maxOutputBytes: 2 * 1024 * 1024,
            maxOutputEntries: 1_000_000
          },
          echo: { engine: "echo" }
        })
        const flooded = yield* runtime.create({ profile: "flood" })
        const other = yield* runtime.create({ profile: "echo" })
        yield* runtime.input(flooded.id, { content: "go" })
        yield* eventuallyLive(runtime.get(flooded.id), (w) => w.lastSeq > 1000, "the flood under way")
        // Another Worker is served while the flood goes on.
        yield* answers("input", runtime.input(other.id, { content: "hi" }))
        expect((yield* runtime.get(flooded.id)).status).toBe("busy")
        const cancel = yield* answers("cancel", runtime.cancel(flooded.id, { reason: "enough" }))
        expect(cancel._tag).toBe("Right")
        const after = yield* runtime.get(flooded.id)
        expect(after.status).toBe("idle")
        // Answered before the output drained: most of the flood was never recorded.
        expect(after.lastSeq).toBeLessThan(512 * 1024)
        const last = (yield* runtime.transcript(flooded.id, { after: after.lastSeq - 1 })).entries[0]
        expect(last).toMatchObject({ role: "runtime", content: "cancelled: enough" })
      }))
  }
})

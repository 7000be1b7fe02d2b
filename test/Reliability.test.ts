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

import { MemoryStoreLive, Runtime, RuntimeFromStore, type RuntimeStore } from "../src/index.js"
import { buildEngines, type ProfileConfigs } from "../src/node/Profiles.js"
import { SqliteStoreLive } from "../src/sqlite/index.js"

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

const runtimeOn = (store: Layer.Layer<RuntimeStore, unknown>) =>
  Effect.map(
    Layer.build(
      Layer.unwrapEffect(
        Effect.map(buildEngines(profiles), (engines) => RuntimeFromStore({ profiles: engines }))
      ).pipe(Layer.provide(store), Layer.provide(NodeContext.layer))
    ),
    Context.get(Runtime)
  )

/** Fails instead of hanging when a call never answers (disconnected: even an uninterruptible one). */
const answers = <A, E>(what: string, call: Effect.Effect<A, E>) =>
  Effect.disconnect(Effect.either(call)).pipe(
    Effect.timeoutFail({ duration: "15 seconds", onTimeout: () => new Error(`never answered: ${what}`) }),
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
      }), 120_000)
  }
})

/**
 * Queued inputs on a durable store are kept on disk, not in memory: memory
 * holds each one's place and size, and its content is read when its turn
 * starts (docs/rest.md, busy policy).
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"

import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"

import { makeEchoEngine, Runtime, RuntimeFromStore, type TranscriptPage } from "../src/index.js"
import { SqliteStoreLive } from "../src/sqlite/index.js"

setFlagsFromString("--expose-gc")
const gc = runInNewContext("gc") as () => void

const heapUsed = Effect.sync(() => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
})

const MIB = 1024 * 1024
const QUEUED = 32

describe("queued inputs (sqlite store)", () => {
  it.live(`${QUEUED} queued inputs of 1 MiB: their content stays on disk until their turns`, () =>
    Effect.gen(function*() {
      const runtime = yield* Runtime
      const worker = yield* runtime.create({ profile: "held" })
      yield* runtime.input(worker.id, { content: "first" })
      const before = yield* heapUsed
      for (let i = 0; i < QUEUED; i++) {
        yield* runtime.input(worker.id, { content: String(i % 10).repeat(MIB), ifBusy: "enqueue" })
      }
      const grown = ((yield* heapUsed) - before) / MIB
      // Before, every queued content stayed in memory: 32 MiB and more.
      expect(grown, `heap grew ${grown.toFixed(1)} MiB`).toBeLessThan(4)
      // The turns still get their content, in order: each cancel ends one, and the next starts.
      for (let turn = 1; turn <= QUEUED + 1; turn++) yield* runtime.cancel(worker.id)
      const last = yield* runtime.get(worker.id)
      expect(last).toMatchObject({ status: "idle", queued: 0, turn: QUEUED + 1 })
      const contents: Array<string> = []
      // Pages stop at 4 MiB of content: read them all.
      for (let after: number | null = 0; after !== null;) {
        const page: TranscriptPage = yield* runtime.transcript(worker.id, { after, limit: 1000 })
        for (const entry of page.entries) if (entry.role === "user") contents.push(entry.content)
        after = page.nextAfter
      }
      expect(contents.slice(1).map((content) => [content.length, content[0]])).toEqual(
        Array.from({ length: QUEUED }, (_, i) => [MIB, String(i % 10)])
      )
    }).pipe(
      Effect.provide(
        RuntimeFromStore({
          profiles: { held: makeEchoEngine({ delayMs: 60_000 }), default: makeEchoEngine() },
          maxInputBytes: 2 * MIB,
          maxQueuedBytes: 64 * MIB
        }).pipe(Layer.provide(SqliteStoreLive({ filename: join(mkdtempSync(join(tmpdir(), "wr-queue-")), "rt.db") })))
      )
    ))
})

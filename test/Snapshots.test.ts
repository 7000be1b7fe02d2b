/**
 * Answers of immutable snapshots (a Worker, a transcript page, an event's
 * Worker or entry) are encoded once and reused (`http/Snapshots.ts`): each
 * must be, byte for byte, what the schema encoder produces, on generated
 * values and over the real server.
 */
import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Effect, FastCheck as fc, Schema } from "effect"

import { InputAccepted, TranscriptEntry, TranscriptPage, Worker } from "../src/Domain.js"
import { entryJson, inputAcceptedJson, transcriptPageJson, workerJson } from "../src/http/Snapshots.js"
import { Runtime } from "../src/index.js"
import { baseUrl, httpServer } from "./support/httpRuntime.js"
import { raw } from "./support/raw.js"

const bySchema = <A, I>(schema: Schema.Schema<A, I>) => {
  const encode = Schema.encodeSync(schema)
  return (value: A) => JSON.stringify(encode(value))
}

describe("snapshots encoded once", () => {
  const pinned = <A, I>(schema: Schema.Schema<A, I>, cached: (value: A) => string) =>
    fc.assert(
      fc.property(Arbitrary.make(schema), (value) => {
        const expected = bySchema(schema)(value)
        expect(cached(value)).toBe(expected)
        expect(cached(value)).toBe(expected)
      }),
      { numRuns: 300 }
    )

  it("a Worker, an entry, a page and an input's answer: what the schema encodes, on generated values, first and again", () => {
    pinned(Worker, workerJson)
    pinned(TranscriptEntry, entryJson)
    pinned(TranscriptPage, transcriptPageJson)
    pinned(InputAccepted, inputAcceptedJson)
  })

  it("a Worker with metadata and a stop reason, an entry with an outcome: every optional field, written in order", () => {
    const withAll = fc.sample(Arbitrary.make(Worker), 50).map((worker) => ({
      ...worker,
      metadata: { b: "1", a: "2", "10": "x", "é\"": "\u2028" },
      stopReason: "over \"quota\""
    }))
    for (const worker of withAll) expect(workerJson(worker)).toBe(bySchema(Worker)(worker))
    const entry: TranscriptEntry = {
      seq: 3,
      at: "2026-11-24T12:00:00.000Z",
      role: "runtime",
      content: "",
      turn: 1,
      outcome: "stopped"
    }
    expect(entryJson(entry)).toBe(bySchema(TranscriptEntry)(entry))
    const accepted: InputAccepted = { worker: withAll[0]!, queued: true, position: 2 }
    expect(inputAcceptedJson(accepted)).toBe(bySchema(InputAccepted)(accepted))
  })

  it("a value changed after it was encoded is a new object, encoded anew", () => {
    const worker = fc.sample(Arbitrary.make(Worker), 1)[0]!
    expect(workerJson(worker)).toBe(bySchema(Worker)(worker))
    const next = { ...worker, lastSeq: worker.lastSeq + 1 }
    expect(workerJson(next)).toBe(bySchema(Worker)(next))
    expect(workerJson(next)).not.toBe(workerJson(worker))
  })

  it.effect("over the server: GET of a Worker and of a transcript page answer the schema's encoding, as JSON", () =>
    Effect.gen(function*() {
      const runtime = yield* Runtime
      const url = yield* baseUrl
      const worker = yield* runtime.create({ metadata: { team: "docs" } })
      yield* runtime.input(worker.id, { content: "héllo \u2028 \"quoted\"" })
      yield* runtime.turn(worker.id, 1, { waitMs: 60_000 })
      const current = yield* runtime.get(worker.id)
      const got = yield* raw(url, `/v1/workers/${worker.id}`)
      expect(got.status).toBe(200)
      expect(got.headers.get("content-type")).toBe("application/json")
      expect(got.text).toBe(bySchema(Worker)(current))
      const page = yield* runtime.transcript(worker.id, { limit: 1 })
      const pageAnswer = yield* raw(url, `/v1/workers/${worker.id}/transcript?limit=1`)
      expect(pageAnswer.status).toBe(200)
      expect(pageAnswer.headers.get("content-type")).toBe("application/json")
      expect(pageAnswer.text).toBe(bySchema(TranscriptPage)(page))
      // Errors are still the schema's own answers.
      const missing = yield* raw(url, "/v1/workers/nope")
      expect(missing.status).toBe(404)
      expect(missing.json).toMatchObject({ _tag: "UnknownWorker" })
    }).pipe(Effect.provide(httpServer())))
})

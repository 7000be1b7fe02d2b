/**
 * The `openai` and `anthropic` engines through the Runtime, against the model
 * server (test/support/modelServer.ts), which speaks the real streaming wire
 * protocols to the real clients: deltas live to followers, one entry per
 * turn, usage, the prompt as the transcript, cancel closing the connection,
 * retries, failures mid-stream, the timeout, and the key kept out of
 * everything but the request's header.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, Effect, HashMap, Logger, Redacted, Stream, TestClock, Tracer } from "effect"
import { makeAnthropicEngine, makeOpenAiEngine, type ModelEngineOptions } from "../src/ai/index.js"
import {
  Runtime,
  RuntimeLive,
  type RuntimeOptions,
  type TranscriptEntry,
  type WorkerEngine,
  type WorkerEvent,
  type WorkerId
} from "../src/index.js"
import { makePrometheus } from "../src/node/Observability.js"
import { eventually, eventuallyLive } from "./support/eventually.js"
import { baseUrl, httpServer } from "./support/httpRuntime.js"
import {
  httpError,
  makeGate,
  makeModelServer,
  type ModelServerService,
  type RecordedRequest,
  reply
} from "./support/modelServer.js"
import { openEvents, raw } from "./support/raw.js"

const KEY = "sk-test-KEY-4f1c9e7a2b"

interface EngineCase {
  readonly name: "openai" | "anthropic"
  readonly make: (server: ModelServerService, options?: Partial<ModelEngineOptions>) => WorkerEngine
}

const engines: ReadonlyArray<EngineCase> = [
  {
    name: "openai",
    make: (server, options = {}) =>
      makeOpenAiEngine({ model: "gpt-4.1-mini", apiUrl: server.openAiUrl, apiKey: Redacted.make(KEY), ...options })
  },
  {
    name: "anthropic",
    make: (server, options = {}) =>
      makeAnthropicEngine({
        model: "claude-sonnet-4-5",
        apiUrl: server.anthropicUrl,
        apiKey: Redacted.make(KEY),
        ...options
      })
  }
]

const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const textOf = (content: unknown): string =>
  typeof content === "string"
    ? content
    : Array.isArray(content)
    ? content.map((part) => (isRecord(part) && typeof part.text === "string" ? part.text : "")).join("")
    : ""

/** The messages a request carried, as `role:text`, in either protocol (Anthropic's system prompt first). */
const sentMessages = (request: RecordedRequest): ReadonlyArray<string> => {
  const body = request.body
  if (!isRecord(body)) return []
  const system = Array.isArray(body.system) ? body.system.map((block) => `system:${textOf([block])}`) : []
  const messages = Array.isArray(body.input) ? body.input : Array.isArray(body.messages) ? body.messages : []
  return [
    ...system,
    ...messages.map((message) => (isRecord(message) ? `${String(message.role)}:${textOf(message.content)}` : "?"))
  ]
}

const contents = (entries: ReadonlyArray<TranscriptEntry>) => entries.map((entry) => `${entry.role}:${entry.content}`)

/** Follows a Worker in the background, collecting its events (after its first, the Worker, it is registered). */
const follow = (workerId: WorkerId) =>
  Effect.gen(function*() {
    const runtime = yield* Runtime
    const seen: Array<WorkerEvent> = []
    const fiber = yield* runtime.events(workerId).pipe(
      Stream.runForEach((event) => Effect.sync(() => seen.push(event))),
      Effect.fork
    )
    yield* eventually(Effect.sync(() => seen.length), (n) => n >= 1, "the follower registered")
    return { seen, fiber }
  })

const deltasOf = (events: ReadonlyArray<WorkerEvent>) =>
  events.flatMap((event) => (event.type === "delta" ? [event.text] : []))

const runtimeWith = (engine: WorkerEngine, options: RuntimeOptions = {}) =>
  RuntimeLive({ ...options, profiles: { m: engine } })

const endOf = (workerId: WorkerId, turn: number) =>
  Effect.flatMap(Runtime, (runtime) =>
    eventually(
      runtime.turn(workerId, turn),
      (record) => record !== undefined && record.status !== "running",
      `turn ${turn} ended`
    ))

const sample = (text: string, name: string, labels: string): number | undefined => {
  const line = text.split("\n").find((line) => line.startsWith(`${name}{`) && line.includes(labels))
  return line === undefined ? undefined : Number(line.split(" ").at(-1))
}

for (const engine of engines) {
  describe(`the ${engine.name} engine`, () => {
    it.scoped("streams deltas to a follower; the whole text is one entry; usage on the turn and in /metrics", () =>
      Effect.gen(function*() {
        const server = yield* makeModelServer()
        const prometheus = yield* makePrometheus
        const profile = `${engine.name}-usage`
        yield* server.script(
          reply("Hello there, friend.", {
            deltas: ["Hello", " there,", " friend."],
            usage: { inputTokens: 9, outputTokens: 4 }
          })
        )
        yield* Effect.gen(function*() {
          const runtime = yield* Runtime
          const worker = yield* runtime.create({ profile })
          const { seen } = yield* follow(worker.id)
          yield* runtime.input(worker.id, { content: "Say hello." })
          const turn = yield* endOf(worker.id, 1)
          expect(turn).toMatchObject({ status: "completed", usage: { inputTokens: 9, outputTokens: 4 } })
          expect(contents((yield* runtime.transcript(worker.id, {})).entries)).toEqual([
            "user:Say hello.",
            "worker:Hello there, friend.",
            "runtime:completed"
          ])
          yield* eventually(
            Effect.sync(() => seen.length),
            () => seen.some((e) => e.type === "entry" && e.entry.role === "runtime"),
            "the end at the follower"
          )
          expect(deltasOf(seen)).toEqual(["Hello", " there,", " friend."])
          const entryAt = seen.findIndex((event) => event.type === "entry" && event.entry.role === "worker")
          const lastDeltaAt = seen.map((event) => event.type).lastIndexOf("delta")
          expect(lastDeltaAt).toBeLessThan(entryAt)
          const metrics = yield* prometheus.text
          expect(sample(metrics, "worker_runtime_model_tokens_total", `profile="${profile}",direction="input"`)).toBe(9)
          expect(sample(metrics, "worker_runtime_model_tokens_total", `profile="${profile}",direction="output"`)).toBe(
            4
          )
        }).pipe(Effect.provide(RuntimeLive({ profiles: { [profile]: engine.make(server) } })))
      }))

    it.scopedLive("deltas reach an SSE follower as event: delta frames", () =>
      Effect.gen(function*() {
        const server = yield* makeModelServer()
        const gate = makeGate()
        yield* server.script(reply("one two", { deltas: ["one", " two"], gate }))
        yield* Effect.gen(function*() {
          const url = yield* baseUrl
          const created = (yield* raw(url, "/v1/workers", { method: "POST", body: { profile: "m" } })).json as {
            id: string
          }
          const { close, readUntil } = yield* openEvents(url, created.id)
          yield* readUntil((t) => t.includes("event: worker"))
          yield* raw(url, `/v1/workers/${created.id}/input`, { method: "POST", body: { content: "count" } })
          gate.release(1)
          // The first delta arrives while the model server holds the rest.
          const first = yield* readUntil((t) => t.includes("event: delta"))
          expect(first).not.toContain("\"role\":\"worker\"")
          gate.release()
          const all = yield* readUntil((t) => t.includes("\"outcome\":\"completed\""))
          close()
          expect(all.split("\n\n").filter((frame) => frame.includes("event: delta"))).toEqual([
            "event: delta\ndata: {\"turn\":1,\"text\":\"one\"}",
            "event: delta\ndata: {\"turn\":1,\"text\":\" two\"}"
          ])
        }).pipe(Effect.provide(httpServer({ profiles: { m: engine.make(server) } })))
      }))

    it.scoped("sends the transcript: instructions, user inputs, system inputs, the model's replies; no runtime entries", () =>
      Effect.gen(function*() {
        const server = yield* makeModelServer()
        yield* server.script(reply("First answer."), reply("Second answer."))
        yield* Effect.gen(function*() {
          const runtime = yield* Runtime
          const worker = yield* runtime.create({ profile: "m" })
          yield* runtime.input(worker.id, { content: "First question." })
          yield* endOf(worker.id, 1)
          yield* runtime.input(worker.id, { content: "Be brief.", kind: "system" })
          yield* endOf(worker.id, 2)
          const requests = yield* server.awaitCount(2)
          expect(sentMessages(requests[0]!)).toEqual(["system:You are terse.", "user:First question."])
          expect(sentMessages(requests[1]!)).toEqual(
            engine.name === "anthropic"
              ? ["system:You are terse.", "system:Be brief.", "user:First question.", "assistant:First answer."]
              : ["system:You are terse.", "user:First question.", "assistant:First answer.", "system:Be brief."]
          )
          const body = requests[1]!.body
          expect(isRecord(body) && body.model).toBe(engine.name === "openai" ? "gpt-4.1-mini" : "claude-sonnet-4-5")
          expect(isRecord(body) && body.temperature).toBe(0.5)
          expect(isRecord(body) && (engine.name === "openai" ? body.max_output_tokens : body.max_tokens)).toBe(321)
        }).pipe(Effect.provide(runtimeWith(
          engine.make(server, { instructions: "You are terse.", temperature: 0.5, maxOutputTokens: 321 })
        )))
      }))

    it.scoped("cancel mid-stream closes the connection to the model server and keeps the text so far", () =>
      Effect.gen(function*() {
        const server = yield* makeModelServer()
        const gate = makeGate()
        yield* server.script(reply("partial and the rest", { deltas: ["partial", " and the rest"], gate }))
        yield* Effect.gen(function*() {
          const runtime = yield* Runtime
          const worker = yield* runtime.create({ profile: "m" })
          const { seen } = yield* follow(worker.id)
          yield* runtime.input(worker.id, { content: "go" })
          gate.release(1)
          yield* eventually(Effect.sync(() => deltasOf(seen).length), (n) => n === 1, "the first delta")
          yield* runtime.cancel(worker.id, { reason: "user pressed stop" })
          const [request] = yield* server.awaitClosedEarly(1)
          expect(request?.outcome).toBe("closed-early")
          expect(contents((yield* runtime.transcript(worker.id, {})).entries)).toEqual([
            "user:go",
            "worker:partial",
            "runtime:cancelled: user pressed stop"
          ])
          expect((yield* runtime.get(worker.id)).status).toBe("idle")
          expect((yield* runtime.turn(worker.id, 1))?.usage).toBeNull()
        }).pipe(Effect.provide(runtimeWith(engine.make(server))))
      }))

    it.scoped("429 before the first delta is retried after Retry-After, then the turn completes", () =>
      Effect.gen(function*() {
        const server = yield* makeModelServer()
        yield* server.script(httpError(429, { retryAfter: 30 }), reply("Made it."))
        yield* Effect.gen(function*() {
          const runtime = yield* Runtime
          const worker = yield* runtime.create({ profile: "m" })
          const start = yield* TestClock.currentTimeMillis
          yield* runtime.input(worker.id, { content: "hi" })
          yield* server.awaitCount(1)
          // The engine waits on the clock for the 30 seconds the server asked for.
          yield* eventually(
            TestClock.sleeps(),
            (sleeps) => Chunk.some(sleeps, (at) => at === start + 30_000),
            "the engine sleeping for Retry-After"
          )
          yield* TestClock.adjust(29_999)
          expect((yield* server.requests).length).toBe(1)
          expect((yield* runtime.get(worker.id)).status).toBe("busy")
          yield* TestClock.adjust(1)
          yield* server.awaitCount(2)
          expect(yield* endOf(worker.id, 1)).toMatchObject({ status: "completed" })
          expect(contents((yield* runtime.transcript(worker.id, {})).entries)).toEqual([
            "user:hi",
            "worker:Made it.",
            "runtime:completed"
          ])
        }).pipe(Effect.provide(runtimeWith(engine.make(server))))
      }))

    it.scoped("500 three times with maxRetries 2: failed with the status and the server's message; the Worker is idle", () =>
      Effect.gen(function*() {
        const server = yield* makeModelServer()
        const error = httpError(500, { retryAfter: 0, message: "upstream is on fire" })
        yield* server.script(error, error, error, reply("later"))
        yield* Effect.gen(function*() {
          const runtime = yield* Runtime
          const worker = yield* runtime.create({ profile: "m" })
          yield* runtime.input(worker.id, { content: "hi" })
          const turn = yield* endOf(worker.id, 1)
          expect(turn?.status).toBe("failed")
          expect(turn?.reason).toContain("500")
          expect(turn?.reason).toContain("upstream is on fire")
          expect((yield* server.requests).length).toBe(3)
          expect((yield* runtime.get(worker.id)).status).toBe("idle")
          // Usable: the next turn gets the next reply.
          yield* runtime.input(worker.id, { content: "again" })
          expect(yield* endOf(worker.id, 2)).toMatchObject({ status: "completed" })
        }).pipe(Effect.provide(runtimeWith(engine.make(server, { maxRetries: 2 }))))
      }))

    it.scoped("a 400 is not retried: failed at once with the server's message", () =>
      Effect.gen(function*() {
        const server = yield* makeModelServer()
        yield* server.script(httpError(400, { message: "model not found" }))
        yield* Effect.gen(function*() {
          const runtime = yield* Runtime
          const worker = yield* runtime.create({ profile: "m" })
          yield* runtime.input(worker.id, { content: "hi" })
          const turn = yield* endOf(worker.id, 1)
          expect(turn).toMatchObject({ status: "failed" })
          expect(turn?.reason).toContain("400: model not found")
          expect((yield* server.requests).length).toBe(1)
        }).pipe(Effect.provide(runtimeWith(engine.make(server))))
      }))

    for (
      const [ending, what] of [
        ["error", "an error event mid-stream"],
        ["drop", "a dropped connection mid-stream"],
        ...(engine.name === "openai" ? [["failed", "response.failed"] as const] : [])
      ] as const
    ) {
      it.scoped(`${what}: failed, the text so far kept`, () =>
        Effect.gen(function*() {
          const server = yield* makeModelServer()
          yield* server.script(reply("half of it", { deltas: ["half", " of it"], ending }))
          yield* Effect.gen(function*() {
            const runtime = yield* Runtime
            const worker = yield* runtime.create({ profile: "m" })
            yield* runtime.input(worker.id, { content: "hi" })
            const turn = yield* endOf(worker.id, 1)
            expect(turn?.status).toBe("failed")
            const entries = contents((yield* runtime.transcript(worker.id, {})).entries)
            expect(entries.slice(0, 2)).toEqual(["user:hi", "worker:half of it"])
            expect(entries[2]).toMatch(/^runtime:failed: /)
            expect((yield* runtime.get(worker.id)).status).toBe("idle")
            // Not retried: text had arrived.
            expect((yield* server.requests).length).toBe(1)
          }).pipe(Effect.provide(runtimeWith(engine.make(server))))
        }))
    }

    it.scoped("unknown event types are ignored", () =>
      Effect.gen(function*() {
        const server = yield* makeModelServer()
        yield* server.script(reply("all of it", { unknownEvents: true }))
        yield* Effect.gen(function*() {
          const runtime = yield* Runtime
          const worker = yield* runtime.create({ profile: "m" })
          yield* runtime.input(worker.id, { content: "hi" })
          expect(yield* endOf(worker.id, 1)).toMatchObject({ status: "completed" })
          expect(contents((yield* runtime.transcript(worker.id, {})).entries)[1]).toBe("worker:all of it")
        }).pipe(Effect.provide(runtimeWith(engine.make(server))))
      }))

    it.scoped("timeoutMs bounds the call: failed with a reason naming the timeout, text so far kept", () =>
      Effect.gen(function*() {
        const server = yield* makeModelServer()
        yield* server.script(reply("slow reply", { deltas: ["slow", " reply"], ending: "hang" }))
        yield* Effect.gen(function*() {
          const runtime = yield* Runtime
          const worker = yield* runtime.create({ profile: "m" })
          const { seen } = yield* follow(worker.id)
          yield* runtime.input(worker.id, { content: "hi" })
          yield* eventually(Effect.sync(() => deltasOf(seen).length), (n) => n === 2, "both deltas")
          yield* TestClock.adjust(5_000)
          const turn = yield* endOf(worker.id, 1)
          expect(turn?.status).toBe("failed")
          expect(turn?.reason).toContain("timeoutMs (5000 ms)")
          expect(contents((yield* runtime.transcript(worker.id, {})).entries)[1]).toBe("worker:slow reply")
          yield* server.awaitClosedEarly(1)
        }).pipe(Effect.provide(runtimeWith(engine.make(server, { timeoutMs: 5_000 }))))
      }))
  })
}

describe("the key", () => {
  it.scoped("is sent in the request's header, and is in no entry, reason, log line, span or /v1/runtime", () =>
    Effect.gen(function*() {
      const server = yield* makeModelServer()
      const logs: Array<string> = []
      const logger = Logger.make(({ annotations, cause, message }) => {
        logs.push(JSON.stringify({ message, annotations: [...HashMap.toEntries(annotations)] }) + Cause.pretty(cause))
      })
      // Every span made, as the tracer in use makes it; read once they are over.
      const base = yield* Effect.tracer
      const made: Array<Tracer.Span> = []
      const tracer = Tracer.make({
        span: (...args) => {
          const span = base.span(...args)
          made.push(span)
          return span
        },
        context: (f, fiber) => base.context(f, fiber)
      })
      const turns = Effect.forEach(engines, (engine) =>
        Effect.gen(function*() {
          yield* server.script(
            reply("A fine answer."),
            httpError(401, { message: "invalid key" }),
            reply("cut", { ending: "error" }),
            // The clients' error for a dropped stream writes the request out, its key among the headers.
            reply("dropped", { ending: "drop" })
          )
          const seen = yield* Effect.gen(function*() {
            const runtime = yield* Runtime
            const worker = yield* runtime.create({ profile: "m" })
            for (let turn = 1; turn <= 4; turn++) {
              yield* runtime.input(worker.id, { content: `question ${turn}` })
              yield* endOf(worker.id, turn)
            }
            const entries = (yield* runtime.transcript(worker.id, {})).entries
            const records = yield* Effect.forEach([1, 2, 3, 4], (turn) => runtime.turn(worker.id, turn))
            expect(records.map((turn) => turn?.status)).toEqual(["completed", "failed", "failed", "failed"])
            return { entries, records, runtime: yield* runtime.info }
          }).pipe(Effect.provide(runtimeWith(engine.make(server), { tracing: true })))
          const everything = JSON.stringify(seen)
          expect(everything).toContain("invalid key")
          expect(everything).not.toContain(KEY)
        }))
      yield* turns.pipe(Effect.withTracer(tracer), Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      const requests = yield* server.requests
      expect(requests.length).toBe(8)
      // It was sent: as the bearer token (OpenAI), as x-api-key (Anthropic).
      expect(requests.map((request) => request.headers["authorization"] ?? request.headers["x-api-key"])).toEqual([
        `Bearer ${KEY}`,
        `Bearer ${KEY}`,
        `Bearer ${KEY}`,
        `Bearer ${KEY}`,
        KEY,
        KEY,
        KEY,
        KEY
      ])
      const spans = made.map((span) =>
        JSON.stringify({ name: span.name, attributes: [...span.attributes] }) +
        (span.status._tag === "Ended" && span.status.exit._tag === "Failure"
          ? Cause.pretty(span.status.exit.cause)
          : "")
      )
      // One span per model call; the clients' own spans are off (their errors write the request out).
      expect(spans.filter((span) => span.includes("model.call")).length).toBe(8)
      expect(spans.some((span) => span.includes("LanguageModel.streamText") || span.includes("http.client"))).toBe(
        false
      )
      expect(spans.some((span) => span.includes("gen_ai.usage.output_tokens"))).toBe(true)
      expect(spans.some((span) => span.includes("\"turn\""))).toBe(true)
      expect(logs.some((line) => line.includes("turn failed"))).toBe(true)
      for (const text of [...logs, ...spans]) {
        expect(text).not.toContain(KEY)
        // Nor the prompt: spans carry the model and the usage, not the messages.
        expect(text).not.toContain("question 1")
      }
    }))
})

/** Against the real APIs, only when a key is set (never in CI). */
describe("live", () => {
  const live = [
    [
      "openai",
      "OPENAI_API_KEY",
      (key: string) => makeOpenAiEngine({ model: "gpt-4.1-mini", apiKey: Redacted.make(key) })
    ],
    [
      "anthropic",
      "ANTHROPIC_API_KEY",
      (key: string) => makeAnthropicEngine({ model: "claude-sonnet-4-5", apiKey: Redacted.make(key) })
    ]
  ] as const
  for (const [name, variable, make] of live) {
    const key = process.env[variable]
    it.live.skipIf(key === undefined || key === "")(
      `${name}: a real turn streams deltas and reports usage`,
      () =>
        Effect.gen(function*() {
          const runtime = yield* Runtime
          const worker = yield* runtime.create({ profile: "m" })
          yield* runtime.input(worker.id, { content: "Reply with the single word: pong" })
          const turn = yield* eventuallyLive(
            runtime.turn(worker.id, 1),
            (record) => record !== undefined && record.status !== "running",
            "the live turn's end"
          )
          expect(turn).toMatchObject({ status: "completed" })
          expect(turn?.usage?.outputTokens).toBeGreaterThan(0)
          const entries = (yield* runtime.transcript(worker.id, {})).entries
          expect(entries[1]?.content.toLowerCase()).toContain("pong")
        }).pipe(Effect.provide(runtimeWith(make(key ?? ""))))
    )
  }
})

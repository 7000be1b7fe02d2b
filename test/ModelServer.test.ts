/**
 * The model server against the real clients (@effect/ai 0.37 with
 * @effect/ai-openai and @effect/ai-anthropic): the recorded exchanges are what
 * the clients accept, and each scripted hard case does what the model engines
 * are written against (docs/engines.md).
 */
import { LanguageModel, type Response } from "@effect/ai"
import { AnthropicClient, AnthropicLanguageModel } from "@effect/ai-anthropic"
import { OpenAiClient, OpenAiLanguageModel } from "@effect/ai-openai"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, Effect, Exit, Fiber, Layer, Option, Queue, Redacted, Schema, Stream } from "effect"
import { readFileSync } from "node:fs"
import { anthropicPlan, openAiPlan, type Plan } from "../scripts/modelServer/Wire.js"
import { within } from "./support/eventually.js"
import {
  eventsOf,
  httpError,
  makeGate,
  makeModelServer,
  type ModelServerService,
  type Protocol,
  replay,
  reply
} from "./support/modelServer.js"

const fixture = (name: string) => readFileSync(new URL(`./fixtures/model/${name}`, import.meta.url), "utf8")

const KEY = "sk-model-server-test-key"

/** The prompt every case sends: a system message, a turn the assistant answered, and a new user message. */
const prompt = [
  { role: "system", content: "You are a helpful assistant." },
  { role: "user", content: "Hi" },
  { role: "assistant", content: [{ type: "text", text: "Hello." }] },
  { role: "user", content: "Say hello." }
] as const

interface Provider {
  readonly protocol: Protocol
  readonly model: string
  readonly stream: string
  readonly layer: (
    server: ModelServerService
  ) => Layer.Layer<LanguageModel.LanguageModel, never, HttpClient.HttpClient>
}

const providers: ReadonlyArray<Provider> = [
  {
    protocol: "openai",
    model: "gpt-4.1-mini",
    stream: "openai-responses-stream.sse",
    layer: (server) =>
      OpenAiLanguageModel.layer({ model: "gpt-4.1-mini", config: { max_output_tokens: 1024, temperature: 0.2 } }).pipe(
        Layer.provide(OpenAiClient.layer({ apiUrl: server.openAiUrl, apiKey: Redacted.make(KEY) }))
      )
  },
  {
    protocol: "anthropic",
    model: "claude-sonnet-4-5",
    stream: "anthropic-messages-stream.sse",
    layer: (server) =>
      AnthropicLanguageModel.layer({ model: "claude-sonnet-4-5", config: { max_tokens: 1024, temperature: 0.2 } })
        .pipe(Layer.provide(AnthropicClient.layer({ apiUrl: server.anthropicUrl, apiKey: Redacted.make(KEY) })))
  }
]

const httpClients: ReadonlyArray<readonly [string, Layer.Layer<HttpClient.HttpClient>]> = [
  ["fetch", FetchHttpClient.layer],
  ["undici", NodeHttpClient.layerUndici],
  ["node:http", NodeHttpClient.layer]
]

/** streamText's parts, all of them (the stream's failure, if any, in the Exit). */
const stream = (
  provider: Provider,
  server: ModelServerService,
  client: Layer.Layer<HttpClient.HttpClient> = FetchHttpClient.layer
) => LanguageModel.streamText({ prompt }).pipe(Stream.provideLayer(provider.layer(server).pipe(Layer.provide(client))))

const collect = (provider: Provider, server: ModelServerService) =>
  stream(provider, server).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray), within("the reply"))

const deltasOf = (parts: ReadonlyArray<Response.AnyPart>) =>
  parts.flatMap((part) => part.type === "text-delta" ? [part.delta] : [])

const finishOf = (parts: ReadonlyArray<Response.AnyPart>) => parts.filter((part) => part.type === "finish")

const FIXTURE_DELTAS = ["Hello", "!", " How", " can", " I", " help", " you", " today", "?"]
const FIXTURE_TEXT = "Hello! How can I help you today?"

const typeOf = (data: unknown) => typeof data === "object" && data !== null && "type" in data ? data.type : undefined

describe.each(providers)("$protocol", (provider) => {
  it.scopedLive("the recorded exchange: deltas in order, usage as sent, the request as the API documents it", () =>
    Effect.gen(function*() {
      const server = yield* makeModelServer()
      yield* server.script(replay(fixture(provider.stream)))
      const parts = yield* collect(provider, server)
      expect(deltasOf(parts)).toEqual(FIXTURE_DELTAS)
      expect(deltasOf(parts).join("")).toBe(FIXTURE_TEXT)
      const [finish] = finishOf(parts)
      expect(finish?.reason).toBe("stop")
      expect(finish?.usage.inputTokens).toBe(21)
      expect(finish?.usage.outputTokens).toBe(9)
      const [request] = yield* server.requests
      expect(request?.method).toBe("POST")
      expect(request?.protocol).toBe(provider.protocol)
      expect(request?.body).toEqual(JSON.parse(fixture(`${provider.protocol}-request.json`)))
      if (provider.protocol === "openai") {
        expect(request?.path).toBe("/v1/responses")
        expect(request?.headers.authorization).toBe(`Bearer ${KEY}`)
      } else {
        expect(request?.path).toBe("/v1/messages")
        expect(request?.headers["x-api-key"]).toBe(KEY)
        expect(request?.headers["anthropic-version"]).toBe("2023-06-01")
      }
    }))

  it.live("every recorded event decodes with the client's own schema, and the server renders the same events", () =>
    Effect.gen(function*() {
      const events = eventsOf(fixture(provider.stream))
      const decode = (data: unknown) =>
        provider.protocol === "openai"
          ? Effect.asVoid(Schema.decodeUnknown(OpenAiClient.ResponseStreamEvent)(data))
          : Effect.asVoid(Schema.decodeUnknown(AnthropicClient.MessageStreamEvent)(data))
      for (const { data, event } of events) {
        yield* decode(data)
        expect(event).toBe(typeOf(data))
      }
      const context = {
        n: 1,
        createdAt: 1756300000,
        model: provider.model,
        instructions: "You are a helpful assistant.",
        maxOutputTokens: 1024,
        temperature: 0.2
      }
      const plan: Plan = (provider.protocol === "openai" ? openAiPlan : anthropicPlan)(context, {
        deltas: FIXTURE_DELTAS,
        usage: { inputTokens: 21, outputTokens: 9 },
        ending: "finish",
        unknownEvents: false
      })
      const rendered = eventsOf([...plan.head, ...plan.steps.flat(), ...plan.tail].join(""))
      expect(rendered).toEqual(events)
    }))
})

/** The stream's failure (it must fail). */
const failure = (provider: Provider, server: ModelServerService, client?: Layer.Layer<HttpClient.HttpClient>) =>
  stream(provider, server, client).pipe(Stream.runDrain, Effect.flip, within("the reply's failure"))

/** Forks the stream into a queue, so a test can see each part as it arrives. */
const follow = (provider: Provider, server: ModelServerService, client?: Layer.Layer<HttpClient.HttpClient>) =>
  Effect.gen(function*() {
    const parts = yield* Queue.unbounded<Response.AnyPart>()
    const fiber = yield* stream(provider, server, client).pipe(
      Stream.runForEach((part) => Queue.offer(parts, part)),
      Effect.fork
    )
    const nextDelta = Queue.take(parts).pipe(
      Effect.repeat({ until: (part) => part.type === "text-delta" }),
      Effect.map((part) => part.type === "text-delta" ? part.delta : ""),
      within("the next delta")
    )
    return { parts, fiber, nextDelta }
  })

describe.each(providers)("$protocol, scripted", (provider) => {
  it.scopedLive("a reply split into N deltas, with the usage the script gives", () =>
    Effect.gen(function*() {
      const server = yield* makeModelServer()
      yield* server.script(reply("one two three four", { deltas: 2, usage: { inputTokens: 5, outputTokens: 2 } }))
      const parts = yield* collect(provider, server)
      expect(deltasOf(parts)).toEqual(["one two t", "hree four"])
      expect(finishOf(parts).map((finish) => [finish.usage.inputTokens, finish.usage.outputTokens])).toEqual([[5, 2]])
    }))

  it.scopedLive("deltas held by a gate arrive as it is released", () =>
    Effect.gen(function*() {
      const server = yield* makeModelServer()
      const gate = makeGate()
      yield* server.script(reply("one two three", { gate }))
      const { fiber, nextDelta, parts } = yield* follow(provider, server)
      yield* server.awaitCount(1)
      yield* Effect.sync(() => gate.release(1))
      expect(yield* nextDelta).toBe("one")
      yield* Effect.sync(() => gate.release(1))
      expect(yield* nextDelta).toBe(" two")
      yield* Effect.sync(() => gate.release())
      expect(yield* nextDelta).toBe(" three")
      yield* Fiber.join(fiber).pipe(within("the reply's end"))
      expect(finishOf(Chunk.toReadonlyArray(yield* Queue.takeAll(parts)))).toHaveLength(1)
    }))

  it.scopedLive("429 with Retry-After: an HttpResponseError with the status and the header; the client does not retry", () =>
    Effect.gen(function*() {
      const server = yield* makeModelServer()
      yield* server.script(httpError(429, { retryAfter: 7 }), reply("after the wait"))
      const error = yield* failure(provider, server)
      expect(error._tag).toBe("HttpResponseError")
      if (error._tag !== "HttpResponseError") return
      expect(error.reason).toBe("StatusCode")
      expect(error.response.status).toBe(429)
      expect(error.response.headers["retry-after"]).toBe("7")
      expect(error.body).toContain(provider.protocol === "openai" ? "rate_limit_exceeded" : "rate_limit_error")
      // The client's error carries the request's headers, the API key among them, unredacted:
      // an engine must build its own reason and never pass this value on.
      expect(JSON.stringify(error)).toContain(KEY)
      expect(error.message).not.toContain(KEY)
      expect(yield* server.requests).toHaveLength(1)
      expect(deltasOf(yield* collect(provider, server)).join("")).toBe("after the wait")
    }))

  it.scopedLive("500 three times, then the reply: each is an HttpResponseError, one request each", () =>
    Effect.gen(function*() {
      const server = yield* makeModelServer()
      yield* server.script(httpError(500), httpError(500), httpError(500), reply("at last"))
      for (let attempt = 1; attempt <= 3; attempt++) {
        const error = yield* failure(provider, server)
        expect(error._tag === "HttpResponseError" ? error.response.status : error._tag).toBe(500)
        expect(yield* server.requests).toHaveLength(attempt)
      }
      expect(deltasOf(yield* collect(provider, server)).join("")).toBe("at last")
    }))

  it.scopedLive("an error event mid-stream: the deltas so far, an error part, no finish, and the stream ends", () =>
    Effect.gen(function*() {
      const server = yield* makeModelServer()
      yield* server.script(reply("partial answer here", { ending: "error" }))
      const parts = yield* collect(provider, server)
      expect(deltasOf(parts)).toEqual(["partial", " answer", " here"])
      expect(parts.at(-1)?.type).toBe("error")
      expect(finishOf(parts)).toEqual([])
    }))

  it.scopedLive("unknown event types: OpenAI's client skips them, Anthropic's fails with MalformedOutput", () =>
    Effect.gen(function*() {
      const server = yield* makeModelServer()
      yield* server.script(reply("one two three", { unknownEvents: true }))
      if (provider.protocol === "openai") {
        const parts = yield* collect(provider, server)
        expect(deltasOf(parts).join("")).toBe("one two three")
        expect(finishOf(parts)).toHaveLength(1)
      } else {
        expect((yield* failure(provider, server))._tag).toBe("MalformedOutput")
      }
    }))

  it.scopedLive("an SSE comment is ignored by both", () =>
    Effect.gen(function*() {
      const server = yield* makeModelServer()
      const recorded = fixture(provider.stream).split("\n\n")
      yield* server.script(replay([...recorded.slice(0, 4), ": keep-alive", ...recorded.slice(4)].join("\n\n")))
      expect(deltasOf(yield* collect(provider, server)).join("")).toBe(FIXTURE_TEXT)
    }))

  describe.each(httpClients)("over %s", (name, client) => {
    it.scopedLive("interrupting the stream closes the connection to the server", () =>
      Effect.gen(function*() {
        const server = yield* makeModelServer()
        yield* server.script(reply("one two three", { ending: "hang" }))
        const { fiber, nextDelta } = yield* follow(provider, server, client)
        expect(yield* nextDelta).toBe("one")
        expect(yield* server.closedEarly).toBe(0)
        yield* Fiber.interrupt(fiber)
        const [request] = yield* server.awaitClosedEarly(1)
        expect(request?.outcome).toBe("closed-early")
      }))

    it.scopedLive(
      name === "node:http"
        ? "a connection dropped mid-stream: the stream neither fails nor ends (it waits for a timeout)"
        : "a connection dropped mid-stream fails the stream at once: HttpResponseError, reason Decode, status 200",
      () =>
        Effect.gen(function*() {
          const server = yield* makeModelServer()
          yield* server.script(reply("one two three", { ending: "drop" }))
          const { fiber, nextDelta, parts } = yield* follow(provider, server, client)
          yield* server.awaitRequests((requests) => requests[0]?.outcome === "dropped", "the server's drop")
          if (name === "node:http") {
            expect(yield* nextDelta).toBe("one")
            // Not a threshold: fetch and undici fail within milliseconds; node:http still waits a second later.
            const exit = yield* Fiber.await(fiber).pipe(Effect.timeoutOption("1 second"))
            expect(exit._tag).toBe("None")
            return
          }
          const exit = yield* Fiber.await(fiber).pipe(within("the stream's failure"))
          // Everything written before the drop arrives first.
          expect(deltasOf(Chunk.toReadonlyArray(yield* Queue.takeAll(parts)))).toEqual(["one", " two", " three"])
          expect(Exit.isFailure(exit)).toBe(true)
          const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
          expect(Option.map(error, (error) => error._tag)).toEqual(Option.some("HttpResponseError"))
          if (Option.isSome(error) && error.value._tag === "HttpResponseError") {
            expect([error.value.reason, error.value.response.status]).toEqual(["Decode", 200])
            // Its body (and so its message) is the whole request written out, the API key among the headers.
            expect(error.value.message).toContain(KEY)
          }
        })
    )
  })
})

describe("openai, scripted", () => {
  const [openai] = providers
  it.scopedLive("response.failed arrives as a finish part (reason stop, no usage), not as an error", () =>
    Effect.gen(function*() {
      if (openai === undefined) return
      const server = yield* makeModelServer()
      yield* server.script(reply("partial answer", { ending: "failed" }))
      const parts = yield* collect(openai, server)
      expect(deltasOf(parts)).toEqual(["partial", " answer"])
      expect(parts.some((part) => part.type === "error")).toBe(false)
      expect(finishOf(parts).map((finish) => [finish.reason, finish.usage.inputTokens])).toEqual([["stop", undefined]])
    }))
})

describe("the server itself", () => {
  it.scopedLive("records every request, answers an unknown path 404 and a body that is not JSON 400", () =>
    Effect.gen(function*() {
      const server = yield* makeModelServer()
      const unknown = yield* Effect.promise(() => fetch(`${server.url}/v1/chat/completions`, { method: "POST" }))
      expect(unknown.status).toBe(404)
      const bad = yield* Effect.promise(() => fetch(`${server.openAiUrl}/responses`, { method: "POST", body: "{" }))
      expect(bad.status).toBe(400)
      expect(yield* Effect.promise(() => bad.json())).toEqual({
        error: {
          message: "The request body is not a JSON object.",
          type: "invalid_request_error",
          param: null,
          code: null
        }
      })
      const requests = yield* server.awaitCount(2)
      expect(requests.map((request) => [request.protocol, request.path, request.body])).toEqual([
        [undefined, "/v1/chat/completions", undefined],
        ["openai", "/v1/responses", "{"]
      ])
    }))

  it.scopedLive("HTTP errors in each protocol's documented shape", () =>
    Effect.gen(function*() {
      const server = yield* makeModelServer()
      const post = (path: string) =>
        Effect.promise(async () => {
          const response = await fetch(`${server.url}${path}`, { method: "POST", body: "{}" })
          return {
            status: response.status,
            retryAfter: response.headers.get("retry-after"),
            body: await response.json()
          }
        })
      yield* server.script(
        httpError(429, { retryAfter: 20, message: JSON.parse(fixture("openai-error-429.json")).error.message }),
        httpError(429, { message: JSON.parse(fixture("anthropic-error-429.json")).error.message })
      )
      expect(yield* post("/v1/responses")).toEqual({
        status: 429,
        retryAfter: "20",
        body: JSON.parse(fixture("openai-error-429.json"))
      })
      expect(yield* post("/v1/messages")).toEqual({
        status: 429,
        retryAfter: null,
        body: JSON.parse(fixture("anthropic-error-429.json"))
      })
    }))
})

describe("under the TestClock", () => {
  const [openai] = providers
  it.scoped("a gated reply and the close on interrupt need no clock (it.scoped)", () =>
    Effect.gen(function*() {
      if (openai === undefined) return
      const server = yield* makeModelServer()
      const gate = makeGate()
      yield* server.script(reply("one two", { gate, ending: "hang" }))
      const { fiber, nextDelta } = yield* follow(openai, server)
      yield* Effect.sync(() => gate.release(1))
      expect(yield* nextDelta).toBe("one")
      yield* Fiber.interrupt(fiber)
      expect((yield* server.awaitClosedEarly(1)).map((request) => request.outcome)).toEqual(["closed-early"])
    }))
})

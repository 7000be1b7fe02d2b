/**
 * The `anthropic` engine: the Anthropic Messages API (`POST
 * {apiUrl}/v1/messages`, streamed) through `@effect/ai-anthropic`, over
 * `fetch`, which fails at once when a connection drops mid-stream
 * (docs/engines.md).
 */
import * as AnthropicClient from "@effect/ai-anthropic/AnthropicClient"
import * as AnthropicLanguageModel from "@effect/ai-anthropic/AnthropicLanguageModel"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as Headers from "@effect/platform/Headers"
import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"

import type { WorkerEngine } from "../WorkerEngine.js"
import { makeModelEngine, type ModelEngineOptions } from "./ModelEngine.js"

export const ANTHROPIC_API_URL = "https://api.anthropic.com"
/** The Messages API needs `max_tokens`. */
export const DEFAULT_ANTHROPIC_MAX_TOKENS = 4096

const KNOWN_EVENTS: ReadonlySet<string> = new Set(
  AnthropicClient.MessageStreamEvent.members.map((member) => member.fields.type.literals[0])
)

/** An event of a type the client does not know (the API may add some): skipped. A known one must decode. */
const UnknownEvent = Schema.Struct({ type: Schema.String.pipe(Schema.filter((type) => !KNOWN_EVENTS.has(type))) })
const StreamEvent = Schema.Union(AnthropicClient.MessageStreamEvent, UnknownEvent)

const isKnown = (
  event: typeof StreamEvent.Type
): event is AnthropicClient.MessageStreamEvent => KNOWN_EVENTS.has(event.type)

/**
 * The client, with events of unknown types skipped, as the Messages API's
 * versioning asks of clients (the library's own client fails on them).
 */
const client = (options: ModelEngineOptions) =>
  Layer.scoped(
    AnthropicClient.AnthropicClient,
    Effect.map(
      AnthropicClient.make({ apiUrl: options.apiUrl ?? ANTHROPIC_API_URL, apiKey: options.apiKey }),
      (service) =>
        AnthropicClient.AnthropicClient.of({
          ...service,
          createMessageStream: (request) =>
            service.streamRequest(
              HttpClientRequest.post("/v1/messages", {
                headers: Headers.fromInput({ "anthropic-beta": request.params?.["anthropic-beta"] ?? undefined }),
                body: HttpBody.unsafeJson({ ...request.payload, stream: true })
              }),
              StreamEvent
            ).pipe(
              Stream.filter(isKnown),
              Stream.takeUntil((event) => event.type === "message_stop")
            )
        })
    )
  ).pipe(Layer.provide(FetchHttpClient.layer))

export const makeAnthropicEngine = (options: ModelEngineOptions): WorkerEngine =>
  makeModelEngine({
    name: "anthropic",
    server: "the Anthropic server",
    // One system prompt beside the messages.
    systemFirst: true,
    languageModel: AnthropicLanguageModel.layer({
      model: options.model,
      // Never a key set to undefined: it would replace the default, and the API answers 400 without max_tokens.
      config: {
        max_tokens: options.maxOutputTokens ?? DEFAULT_ANTHROPIC_MAX_TOKENS,
        ...(options.temperature === undefined ? {} : { temperature: options.temperature })
      }
    }).pipe(Layer.provide(client(options)))
  }, options)

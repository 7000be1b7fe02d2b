/**
 * The `openai` engine: the OpenAI Responses API (`POST {apiUrl}/responses`,
 * streamed) through `@effect/ai-openai`, over `fetch`, which fails at once
 * when a connection drops mid-stream (docs/engines.md).
 */
import * as OpenAiClient from "@effect/ai-openai/OpenAiClient"
import * as OpenAiLanguageModel from "@effect/ai-openai/OpenAiLanguageModel"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"

import type { WorkerEngine } from "../WorkerEngine.js"
import { makeModelEngine, type ModelEngineOptions } from "./ModelEngine.js"

export const OPENAI_API_URL = "https://api.openai.com/v1"

/**
 * The client, with `response.failed` made an `error` event: the language
 * model would read it as a finished reply, and the stream goes on after it.
 */
const client = (options: ModelEngineOptions) =>
  Layer.scoped(
    OpenAiClient.OpenAiClient,
    Effect.map(
      OpenAiClient.make({ apiUrl: options.apiUrl ?? OPENAI_API_URL, apiKey: options.apiKey }),
      (service) =>
        OpenAiClient.OpenAiClient.of({
          ...service,
          createResponseStream: (request) =>
            service.createResponseStream(request).pipe(
              Stream.map((event) =>
                event.type === "response.failed"
                  ? new OpenAiClient.ResponseErrorEvent({
                    type: "error",
                    sequence_number: event.sequence_number,
                    code: event.response.error?.code ?? null,
                    message: event.response.error?.message ?? "the response failed",
                    param: null
                  })
                  : event
              ),
              Stream.takeUntil((event) => event.type === "error")
            )
        })
    )
  ).pipe(Layer.provide(FetchHttpClient.layer))

export const makeOpenAiEngine = (options: ModelEngineOptions): WorkerEngine =>
  makeModelEngine({
    name: "openai",
    server: "the OpenAI server",
    systemFirst: false,
    languageModel: OpenAiLanguageModel.layer({
      model: options.model,
      config: {
        ...(options.maxOutputTokens === undefined ? {} : { max_output_tokens: options.maxOutputTokens }),
        ...(options.temperature === undefined ? {} : { temperature: options.temperature })
      }
    }).pipe(Layer.provide(client(options)))
  }, options)

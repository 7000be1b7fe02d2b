/**
 * What the model engines share (docs/engines.md): a turn is one streamed call
 * of an `@effect/ai` `LanguageModel` on the Worker's transcript. Its text
 * deltas are the turn's `Delta`s (the runtime records their text as one
 * `worker` entry), its reported tokens the turn's `Usage`. 429 and 5xx
 * answers before the first delta are retried (after `Retry-After` when the
 * server says, capped), up to `maxRetries`; the whole call, retries
 * included, is bounded by `timeoutMs`. Every failure is a `TurnFailed` with a
 * readable reason: the server's status and message, never the key or the
 * request (the key lives in a `Redacted` and a header the clients redact).
 */
import type * as AiError from "@effect/ai/AiError"
import * as LanguageModel from "@effect/ai/LanguageModel"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import type * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"

import { TurnFailed, TurnOutput, type WorkerEngine } from "../WorkerEngine.js"
import { promptOf } from "./Prompt.js"

export const DEFAULT_TIMEOUT_MS = 120_000
export const DEFAULT_MAX_RETRIES = 2
/** The longest `Retry-After` honoured: a server asking for more gets this (within the call's timeout). */
export const MAX_RETRY_AFTER_MS = 60_000
/** Without `Retry-After`: 500 ms, then twice as long each retry, up to 8 s. */
const backoffMs = (attempt: number) => Math.min(8000, 500 * 2 ** attempt)
/** A reason's server message is cut here: it goes into the transcript. */
const MAX_MESSAGE = 500

/** A model profile's options, as docs/engines.md lists them (the key resolved from `apiKeyEnv`). */
export interface ModelEngineOptions {
  readonly model: string
  /** Where the API is served; default the provider's own. */
  readonly apiUrl?: string | undefined
  readonly apiKey?: Redacted.Redacted | undefined
  /** The system prompt, sent first. */
  readonly instructions?: string | undefined
  readonly maxOutputTokens?: number | undefined
  readonly temperature?: number | undefined
  /** Bounds the whole call, retries included (default 120000). */
  readonly timeoutMs?: number | undefined
  /** Retries of a 429 or 5xx answered before the first delta (default 2). */
  readonly maxRetries?: number | undefined
}

/** What one provider brings: its name, its `LanguageModel`, how it takes system messages. */
export interface ModelProvider {
  /** The engine's name (`openai`, `anthropic`). */
  readonly name: string
  /** Who speaks in reasons, e.g. "the OpenAI server". */
  readonly server: string
  readonly languageModel: Layer.Layer<LanguageModel.LanguageModel>
  /** System messages first (an API with one system prompt). */
  readonly systemFirst: boolean
}

const cut = (text: string) => (text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}…` : text)

const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** The message in an error body or event: `{error: {message}}` (both APIs' bodies), `{message}` (events). */
const messageIn = (value: unknown): string | undefined => {
  if (!isRecord(value)) return undefined
  if (typeof value.message === "string") return value.message
  return messageIn(value.error)
}

const messageOfBody = (body: string | undefined): string | undefined => {
  if (body === undefined) return undefined
  try {
    return messageIn(JSON.parse(body)) ?? (body.trim() === "" ? undefined : body.trim())
  } catch {
    return body.trim() === "" ? undefined : body.trim()
  }
}

/** Seconds or an HTTP date, as a delay in ms; undefined when absent or unreadable. */
export const retryAfterMs = (header: string | undefined, now: number): number | undefined => {
  if (header === undefined || header.trim() === "") return undefined
  const seconds = Number(header)
  if (Number.isFinite(seconds)) return Math.max(0, Math.min(MAX_RETRY_AFTER_MS, seconds * 1000))
  const date = Date.parse(header)
  return Number.isNaN(date) ? undefined : Math.max(0, Math.min(MAX_RETRY_AFTER_MS, date - now))
}

const statusOf = (error: AiError.AiError): number | undefined =>
  error._tag === "HttpResponseError" && error.reason === "StatusCode" ? error.response.status : undefined

const isRetryable = (status: number | undefined) => status !== undefined && (status === 429 || status >= 500)

/** A failure's reason, from the server's status and message; never the request (its headers hold the key). */
const reasonOf = (server: string, error: AiError.AiError): string => {
  switch (error._tag) {
    case "HttpResponseError": {
      if (error.reason === "StatusCode") {
        const message = messageOfBody(error.body)
        return `${server} answered ${error.response.status}${message === undefined ? "" : `: ${cut(message)}`}`
      }
      return `${server} sent an answer that could not be read (${error.reason})`
    }
    case "HttpRequestError":
      return `${server} could not be reached or the connection was lost (${error.reason}${
        error.description === undefined ? "" : `: ${cut(error.description)}`
      })`
    case "MalformedOutput":
      return `${server} sent a stream that could not be read`
    case "MalformedInput":
      return `the prompt could not be sent to ${server}`
    case "UnknownError":
      return `${server} call failed`
  }
}

/** The engine for `provider`, configured by a model profile's options. */
export const makeModelEngine = (provider: ModelProvider, options: ModelEngineOptions): WorkerEngine => {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES
  const { server } = provider

  /** One attempt, then the retries it earns. */
  const call = (
    prompt: ReturnType<typeof promptOf>,
    attempt: number
  ): Stream.Stream<TurnOutput, TurnFailed, LanguageModel.LanguageModel> =>
    Stream.suspend(() => {
      let started = false
      let finished = false
      const parts = LanguageModel.streamText({ prompt }).pipe(
        Stream.mapConcatEffect((part): Effect.Effect<ReadonlyArray<TurnOutput>, TurnFailed> => {
          switch (part.type) {
            case "text-delta":
              started = true
              return Effect.succeed(part.delta === "" ? [] : [TurnOutput.delta(part.delta)])
            case "finish": {
              finished = true
              if (part.reason === "error") {
                return Effect.fail(new TurnFailed({ message: `${server} ended the reply with an error` }))
              }
              const { inputTokens, outputTokens } = part.usage
              return Effect.succeed(
                inputTokens === undefined && outputTokens === undefined
                  ? []
                  : [TurnOutput.usage({ inputTokens: inputTokens ?? 0, outputTokens: outputTokens ?? 0 })]
              )
            }
            case "error": {
              const message = messageIn(part.error)
              return Effect.fail(
                new TurnFailed({
                  message: `${server} sent an error mid-stream${message === undefined ? "" : `: ${cut(message)}`}`
                })
              )
            }
            default:
              return Effect.succeed([])
          }
        })
      )
      return Stream.concat(
        parts,
        Stream.suspend(() =>
          finished
            ? Stream.empty
            : Stream.fail(new TurnFailed({ message: `${server} ended the stream before the reply was finished` }))
        )
      ).pipe(
        Stream.catchAll((error): Stream.Stream<TurnOutput, TurnFailed, LanguageModel.LanguageModel> => {
          if (error._tag === "TurnFailed") return Stream.fail(error)
          const status = statusOf(error)
          if (started || attempt >= maxRetries || !isRetryable(status)) {
            return Stream.fail(new TurnFailed({ message: reasonOf(server, error) }))
          }
          const header = error._tag === "HttpResponseError" ? error.response.headers["retry-after"] : undefined
          return Stream.unwrap(Effect.gen(function*() {
            const now = yield* Clock.currentTimeMillis
            yield* Effect.sleep(retryAfterMs(header, now) ?? backoffMs(attempt))
            return call(prompt, attempt + 1)
          }))
        })
      )
    })

  const timedOut = Effect.zipRight(
    Effect.sleep(timeoutMs),
    Effect.fail(new TurnFailed({ message: `${server} did not finish the reply within timeoutMs (${timeoutMs} ms)` }))
  )

  const attributes = { "gen_ai.system": provider.name, "gen_ai.request.model": options.model }

  return {
    name: provider.name,
    run: (context) =>
      Stream.unwrapScoped(Effect.gen(function*() {
        // One span per call, ended with the turn's own failure (a readable reason).
        const span = yield* Effect.makeSpanScoped("model.call", { kind: "client", attributes })
        // The clients' spans are off: they end with the clients' errors, and
        // those write the request out, the key among its headers.
        yield* Effect.locallyScoped(FiberRef.currentTracerEnabled, false)
        const transcript = yield* context.transcript
        const prompt = promptOf(transcript, { instructions: options.instructions, systemFirst: provider.systemFirst })
        return call(prompt, 0).pipe(
          Stream.tap((output) =>
            Effect.sync(() => {
              if (output._tag !== "Usage") return
              span.attribute("gen_ai.usage.input_tokens", output.usage.inputTokens)
              span.attribute("gen_ai.usage.output_tokens", output.usage.outputTokens)
            })
          ),
          Stream.interruptWhen(timedOut),
          Stream.provideLayer(provider.languageModel)
        )
      }))
  }
}

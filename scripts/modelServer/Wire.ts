/**
 * The two wire protocols as the providers document them: the OpenAI Responses
 * API's streaming events and the Anthropic Messages API's, their error events
 * and their HTTP error bodies. Every field the clients' schemas require
 * (@effect/ai-openai, @effect/ai-anthropic) is present; the recorded
 * exchanges in test/fixtures/model/ are what these render.
 */
import type { Ending, Usage } from "./Script.js"

export type Protocol = "openai" | "anthropic"

/** What a rendered reply echoes of its request, and its identity. */
export interface ReplyContext {
  /** The request's number on this server (1, 2, …): ids are made from it. */
  readonly n: number
  /** Unix seconds. */
  readonly createdAt: number
  readonly model: string
  readonly instructions: string | null
  readonly maxOutputTokens: number | null
  readonly temperature: number | null
}

/** A reply's SSE frames: sent at once (`head`), one group per delta (`steps`), and the ending (`tail`). */
export interface Plan {
  readonly head: ReadonlyArray<string>
  readonly steps: ReadonlyArray<ReadonlyArray<string>>
  readonly tail: ReadonlyArray<string>
}

export const frame = (event: string, data: unknown): string => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`

/** An SSE body cut into its frames (each ends with its blank line). */
export const framesOf = (body: string): ReadonlyArray<string> =>
  body.replace(/\r\n/g, "\n").split(/\n\n/).filter((text) => text.trim() !== "").map((text) => `${text}\n\n`)

/** An SSE body's events, their `data` parsed as JSON. */
export const eventsOf = (body: string): ReadonlyArray<{ readonly event: string | undefined; readonly data: unknown }> =>
  framesOf(body).flatMap((text) => {
    let event: string | undefined
    const data: Array<string> = []
    for (const line of text.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim()
      else if (line.startsWith("data:")) data.push(line.slice(5).trimStart())
    }
    return data.length === 0 ? [] : [{ event, data: JSON.parse(data.join("\n")) }]
  })

const pad = (n: number, width: number) => String(n).padStart(width, "0")

// --- OpenAI Responses ------------------------------------------------------

const openAiIds = (n: number) => ({
  response: `resp_68b1c0ffee${pad(n, 22)}`,
  message: `msg_68b1c0ffee${pad(n, 22)}`
})

const outputText = (text: string) => ({ type: "output_text", annotations: [], logprobs: [], text })

const openAiResponse = (
  context: ReplyContext,
  fields: {
    readonly status: "in_progress" | "completed" | "failed"
    readonly output: ReadonlyArray<unknown>
    readonly usage: unknown
    readonly error: unknown
  }
) => ({
  id: openAiIds(context.n).response,
  object: "response",
  created_at: context.createdAt,
  status: fields.status,
  background: false,
  error: fields.error,
  incomplete_details: null,
  instructions: context.instructions,
  max_output_tokens: context.maxOutputTokens,
  max_tool_calls: null,
  model: context.model,
  output: fields.output,
  parallel_tool_calls: true,
  previous_response_id: null,
  prompt_cache_key: null,
  reasoning: { effort: null, summary: null },
  safety_identifier: null,
  service_tier: fields.status === "in_progress" ? "auto" : "default",
  store: true,
  temperature: context.temperature ?? 1,
  text: { format: { type: "text" }, verbosity: "medium" },
  tool_choice: "auto",
  tools: [],
  top_logprobs: 0,
  top_p: 1,
  truncation: "disabled",
  usage: fields.usage,
  user: null,
  metadata: {}
})

const SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"

export const openAiPlan = (
  context: ReplyContext,
  reply: {
    readonly deltas: ReadonlyArray<string>
    readonly usage: Usage
    readonly ending: Ending
    readonly unknownEvents: boolean
  }
): Plan => {
  let sequence = 0
  const event = (type: string, fields: Record<string, unknown>) =>
    frame(type, { type, sequence_number: sequence++, ...fields })
  const ids = openAiIds(context.n)
  const text = reply.deltas.join("")
  const place = { item_id: ids.message, output_index: 0, content_index: 0 }
  const message = (status: string, content: ReadonlyArray<unknown>) => ({
    id: ids.message,
    type: "message",
    status,
    content,
    role: "assistant"
  })
  const inProgress = openAiResponse(context, { status: "in_progress", output: [], usage: null, error: null })
  const head = [
    event("response.created", { response: inProgress }),
    event("response.in_progress", { response: inProgress }),
    event("response.output_item.added", { output_index: 0, item: message("in_progress", []) }),
    event("response.content_part.added", { ...place, part: outputText("") })
  ]
  const steps = reply.deltas.map((delta) => [
    ...(reply.unknownEvents ? [event("keepalive", {})] : []),
    event("response.output_text.delta", { ...place, delta, logprobs: [] })
  ])
  const done = message("completed", [outputText(text)])
  const tail = reply.ending === "finish"
    ? [
      event("response.output_text.done", { ...place, text, logprobs: [] }),
      event("response.content_part.done", { ...place, part: outputText(text) }),
      event("response.output_item.done", { output_index: 0, item: done }),
      event("response.completed", {
        response: openAiResponse(context, {
          status: "completed",
          output: [done],
          error: null,
          usage: {
            input_tokens: reply.usage.inputTokens,
            input_tokens_details: { cached_tokens: 0 },
            output_tokens: reply.usage.outputTokens,
            output_tokens_details: { reasoning_tokens: 0 },
            total_tokens: reply.usage.inputTokens + reply.usage.outputTokens
          }
        })
      })
    ]
    : reply.ending === "error"
    ? [event("error", { code: "server_error", message: SERVER_ERROR, param: null })]
    : reply.ending === "failed"
    ? [
      event("response.failed", {
        response: openAiResponse(context, {
          status: "failed",
          output: [],
          usage: null,
          error: { code: "server_error", message: SERVER_ERROR }
        })
      })
    ]
    : []
  return { head, steps, tail }
}

const openAiErrorKind = (status: number): { readonly type: string; readonly code: string | null } =>
  status === 429
    ? { type: "requests", code: "rate_limit_exceeded" }
    : status === 401
    ? { type: "invalid_request_error", code: "invalid_api_key" }
    : status >= 500
    ? { type: "server_error", code: null }
    : { type: "invalid_request_error", code: null }

/** `{"error":{"message","type","param","code"}}`, as the OpenAI API answers a failed request. */
export const openAiErrorBody = (status: number, message: string) => ({
  error: { message, ...openAiErrorKind(status), param: null }
})

// --- Anthropic Messages ----------------------------------------------------

const anthropicErrorType = (status: number): string =>
  status === 400
    ? "invalid_request_error"
    : status === 401
    ? "authentication_error"
    : status === 403
    ? "permission_error"
    : status === 404
    ? "not_found_error"
    : status === 413
    ? "request_too_large"
    : status === 429
    ? "rate_limit_error"
    : status === 529
    ? "overloaded_error"
    : "api_error"

export const anthropicPlan = (
  context: ReplyContext,
  reply: {
    readonly deltas: ReadonlyArray<string>
    readonly usage: Usage
    readonly ending: Ending
    readonly unknownEvents: boolean
  }
): Plan => {
  const event = (type: string, fields: Record<string, unknown> = {}) => frame(type, { type, ...fields })
  const head = [
    event("message_start", {
      message: {
        id: `msg_01ModelServer${pad(context.n, 12)}`,
        type: "message",
        role: "assistant",
        model: context.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: {
          input_tokens: reply.usage.inputTokens,
          cache_creation_input_tokens: 0,
          cache_read_input_tokens: 0,
          output_tokens: 1,
          service_tier: "standard"
        }
      }
    }),
    event("content_block_start", { index: 0, content_block: { type: "text", text: "" } }),
    event("ping")
  ]
  const steps = reply.deltas.map((text) => [
    ...(reply.unknownEvents ? [event("model_server_unknown", { index: 0 })] : []),
    event("content_block_delta", { index: 0, delta: { type: "text_delta", text } })
  ])
  const tail = reply.ending === "finish"
    ? [
      event("content_block_stop", { index: 0 }),
      event("message_delta", {
        delta: { stop_reason: "end_turn", stop_sequence: null },
        usage: { output_tokens: reply.usage.outputTokens }
      }),
      event("message_stop")
    ]
    : reply.ending === "error" || reply.ending === "failed"
    ? [event("error", { error: { type: "overloaded_error", message: "Overloaded" } })]
    : []
  return { head, steps, tail }
}

/** `{"type":"error","error":{"type","message"}}`, as the Anthropic API answers a failed request. */
export const anthropicErrorBody = (status: number, message: string) => ({
  type: "error",
  error: { type: anthropicErrorType(status), message }
})

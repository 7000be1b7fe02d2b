/**
 * What the model server answers to one request: a streamed reply (paced,
 * ended in one of several ways), an HTTP error, or a recorded exchange played
 * back verbatim. The same script speaks either protocol; the server renders it
 * in the protocol of the request it answers.
 */

/** Tokens the reply reports, as the providers count them. */
export interface Usage {
  readonly inputTokens: number
  readonly outputTokens: number
}

/**
 * How a streamed reply ends after its deltas:
 * - `finish`: the documented end (`response.completed`; `message_delta` + `message_stop`);
 * - `error`: an error event (OpenAI `error`, Anthropic `event: error` overloaded_error), then the stream ends;
 * - `failed`: OpenAI `response.failed` (Anthropic: as `error`);
 * - `drop`: the server destroys the socket (a connection lost mid-stream);
 * - `hang`: nothing more; the response stays open until the client closes it.
 */
export type Ending = "finish" | "error" | "failed" | "drop" | "hang"

/**
 * Permits for a reply's steps (each delta, then the ending): a paced reply
 * waits for one before each. `release()` opens it for good.
 */
export interface Gate {
  readonly release: (count?: number) => void
  /** Resolves when a permit is taken, or with false once `cancelled()` holds at a release. */
  readonly take: (cancelled: () => boolean) => Promise<boolean>
}

export const makeGate = (): Gate => {
  let permits = 0
  let waiters: Array<{ readonly cancelled: () => boolean; readonly resume: (taken: boolean) => void }> = []
  const flush = () => {
    const waiting = waiters
    waiters = []
    for (const waiter of waiting) {
      if (waiter.cancelled()) waiter.resume(false)
      else if (permits > 0) {
        permits--
        waiter.resume(true)
      } else waiters.push(waiter)
    }
  }
  return {
    release: (count = Number.POSITIVE_INFINITY) => {
      permits += count
      flush()
    },
    take: (cancelled) =>
      new Promise((resume) => {
        waiters.push({ cancelled, resume })
        flush()
      })
  }
}

export interface Reply {
  readonly _tag: "Reply"
  readonly deltas: ReadonlyArray<string>
  /** Undefined: counted from the prompt (input) and the deltas (output). */
  readonly usage: Usage | undefined
  readonly ending: Ending
  /** Between the steps (each delta, then the ending). */
  readonly delayMs: number
  readonly gate: Gate | undefined
  /** An event of a type no client knows before every delta. */
  readonly unknownEvents: boolean
}

export interface HttpError {
  readonly _tag: "HttpError"
  readonly status: number
  readonly retryAfter: string | undefined
  readonly message: string
}

/** A recorded SSE body (e.g. a fixture), written frame by frame. */
export interface Replay {
  readonly _tag: "Replay"
  readonly body: string
  readonly delayMs: number
}

export type Script = Reply | HttpError | Replay

export interface ReplyOptions {
  /** A number splits the text into that many pieces; strings are the deltas themselves. Default: word by word. */
  readonly deltas?: number | ReadonlyArray<string>
  readonly usage?: Usage
  readonly ending?: Ending
  readonly delayMs?: number
  readonly gate?: Gate
  readonly unknownEvents?: boolean
}

/** Word by word, each word with the whitespace before it, as models tokenize. */
export const words = (text: string): ReadonlyArray<string> => text.split(/(?=\s+\S)/).filter((word) => word !== "")

const pieces = (text: string, count: number): ReadonlyArray<string> => {
  const size = Math.max(1, Math.ceil(text.length / Math.max(1, count)))
  const out: Array<string> = []
  for (let at = 0; at < text.length; at += size) out.push(text.slice(at, at + size))
  return out
}

export const reply = (text: string, options: ReplyOptions = {}): Reply => ({
  _tag: "Reply",
  deltas: options.deltas === undefined
    ? words(text)
    : typeof options.deltas === "number"
    ? pieces(text, options.deltas)
    : options.deltas,
  usage: options.usage,
  ending: options.ending ?? "finish",
  delayMs: options.delayMs ?? 0,
  gate: options.gate,
  unknownEvents: options.unknownEvents ?? false
})

export const httpError = (
  status: number,
  options: { readonly retryAfter?: number | string; readonly message?: string } = {}
): HttpError => ({
  _tag: "HttpError",
  status,
  retryAfter: options.retryAfter === undefined ? undefined : String(options.retryAfter),
  message: options.message ?? defaultMessage(status)
})

export const replay = (body: string, options: { readonly delayMs?: number } = {}): Replay => ({
  _tag: "Replay",
  body,
  delayMs: options.delayMs ?? 0
})

const defaultMessage = (status: number): string =>
  status === 429
    ? "Rate limit reached. Please try again later."
    : status >= 500
    ? "The server had an error while processing your request. Sorry about that!"
    : `Request failed with status ${status}.`

/** The reply the server gives when no script is queued. */
export const CANNED_TEXT = "Hello! How can I help you today?"

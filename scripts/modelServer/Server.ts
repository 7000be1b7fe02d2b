/**
 * A model server for tests and for trying the model engines by hand: it speaks
 * the OpenAI Responses API (`POST …/responses`) and the Anthropic Messages API
 * (`POST …/messages`), streaming, from scripts queued by the caller (or a
 * fallback reply), and records every request and how its connection ended.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import { performance } from "node:perf_hooks"
import { CANNED_TEXT, type Replay, type Reply, reply, type Script } from "./Script.js"
import {
  anthropicErrorBody,
  anthropicPlan,
  framesOf,
  openAiErrorBody,
  openAiPlan,
  type Plan,
  type Protocol,
  type ReplyContext
} from "./Wire.js"

/**
 * How a request's exchange ended: `open` while it runs; `finished` when the
 * server ended it; `closed-early` when the client closed the connection first
 * (a cancel); `dropped` when the server destroyed the socket (a scripted drop).
 */
export type Outcome = "open" | "finished" | "closed-early" | "dropped"

export interface RecordedRequest {
  /** 1, 2, … in arrival order. */
  readonly n: number
  /** Undefined for a path neither protocol has (answered 404). */
  readonly protocol: Protocol | undefined
  readonly method: string
  readonly path: string
  readonly headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
  /** The parsed JSON body (the raw text when it is not JSON). */
  readonly body: unknown
  readonly outcome: Outcome
  /** performance.now() when the request arrived and when its exchange ended (bench figures, not test thresholds). */
  readonly receivedAt: number
  readonly endedAt: number | undefined
}

export interface ModelServerOptions {
  readonly port?: number
  readonly host?: string
  /** The script for a request when none is queued. Default: the canned reply, word by word. */
  readonly fallback?: (request: RecordedRequest) => Script
}

export interface RunningModelServer {
  /** `http://host:port`: the Anthropic clients' apiUrl; OpenAI's is `${url}/v1`. */
  readonly url: string
  readonly port: number
  /** Scripts for the next requests, in order (either protocol). */
  readonly enqueue: (...scripts: ReadonlyArray<Script>) => void
  readonly requests: () => ReadonlyArray<RecordedRequest>
  /** Calls `then` once `check` holds on the requests (checked now and at every change); returns a cancel. */
  readonly when: (check: (requests: ReadonlyArray<RecordedRequest>) => boolean, then: () => void) => () => void
  /** Ends every open exchange and stops listening. */
  readonly close: () => Promise<void>
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const protocolOf = (method: string, path: string): Protocol | undefined =>
  method !== "POST"
    ? undefined
    : path.endsWith("/responses")
    ? "openai"
    : path.endsWith("/messages")
    ? "anthropic"
    : undefined

/** The text of a message's content, as either protocol writes it (a string, or parts with `text`). */
const contentText = (content: unknown): string =>
  typeof content === "string"
    ? content
    : Array.isArray(content)
    ? content.map((part) => isRecord(part) && typeof part.text === "string" ? part.text : "").join("")
    : ""

const messagesOf = (body: unknown): ReadonlyArray<unknown> =>
  !isRecord(body)
    ? []
    : Array.isArray(body.messages)
    ? body.messages
    : Array.isArray(body.input)
    ? body.input
    : typeof body.input === "string"
    ? [{ role: "user", content: body.input }]
    : []

/** The text of the last user message of either protocol's request ("" when there is none). */
export const lastUserText = (body: unknown): string => {
  const users = messagesOf(body).filter((message) => isRecord(message) && message.role === "user")
  const last = users.at(-1)
  return isRecord(last) ? contentText(last.content) : ""
}

/** A rough count of the prompt's tokens: its words. */
const promptTokens = (body: unknown): number => {
  const text = messagesOf(body).map((message) => isRecord(message) ? contentText(message.content) : "").join(" ")
  return Math.max(1, text.split(/\s+/).filter((word) => word !== "").length)
}

const contextOf = (n: number, body: unknown): ReplyContext => {
  const field = <A>(name: string, is: (value: unknown) => value is A): A | null => {
    const value = isRecord(body) ? body[name] : undefined
    return is(value) ? value : null
  }
  const isString = (value: unknown): value is string => typeof value === "string"
  const isNumber = (value: unknown): value is number => typeof value === "number"
  return {
    n,
    createdAt: Math.floor(Date.now() / 1000),
    model: field("model", isString) ?? "model-server",
    instructions: field("instructions", isString),
    maxOutputTokens: field("max_output_tokens", isNumber),
    temperature: field("temperature", isNumber)
  }
}

const sseHeaders = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  connection: "keep-alive"
}

export const startModelServer = (options: ModelServerOptions = {}): Promise<RunningModelServer> => {
  const queue: Array<Script> = []
  const records: Array<{ -readonly [K in keyof RecordedRequest]: RecordedRequest[K] }> = []
  let watchers: Array<
    { readonly check: (requests: ReadonlyArray<RecordedRequest>) => boolean; readonly then: () => void }
  > = []
  const snapshot = (): ReadonlyArray<RecordedRequest> => records.map((record) => ({ ...record }))
  const changed = () => {
    const requests = snapshot()
    const due = watchers.filter((watcher) => watcher.check(requests))
    watchers = watchers.filter((watcher) => !due.includes(watcher))
    for (const watcher of due) watcher.then()
  }
  const fallback = options.fallback ?? (() => reply(CANNED_TEXT))

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Array<Buffer> = []
    for await (const chunk of request) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)))
    const text = Buffer.concat(chunks).toString("utf8")
    let body: unknown = text
    try {
      body = text === "" ? undefined : JSON.parse(text)
    } catch {
      // kept as text: answered 400 below
    }
    const method = request.method ?? "GET"
    const path = new URL(request.url ?? "/", "http://model-server").pathname
    const protocol = protocolOf(method, path)
    const record: (typeof records)[number] = {
      n: records.length + 1,
      protocol,
      method,
      path,
      headers: { ...request.headers },
      body,
      outcome: "open",
      receivedAt: performance.now(),
      endedAt: undefined
    }
    records.push(record)
    const end = (outcome: Outcome) => {
      if (record.outcome !== "open") return
      record.outcome = outcome
      record.endedAt = performance.now()
      changed()
    }
    response.on("close", () => end(response.writableFinished ? "finished" : "closed-early"))
    changed()

    const json = (status: number, value: unknown, headers: Record<string, string> = {}) => {
      response.writeHead(status, { "content-type": "application/json", ...headers })
      response.end(JSON.stringify(value))
    }
    if (protocol === undefined) return json(404, openAiErrorBody(404, `Unknown request URL: ${method} ${path}.`))
    const errorBody = protocol === "openai" ? openAiErrorBody : anthropicErrorBody
    if (!isRecord(body)) return json(400, errorBody(400, "The request body is not a JSON object."))

    const script = queue.shift() ?? fallback({ ...record })
    if (script._tag === "HttpError") {
      const requestId = protocol === "openai" ? "x-request-id" : "request-id"
      return json(script.status, errorBody(script.status, script.message), {
        [requestId]: `req_model_server_${record.n}`,
        ...(script.retryAfter === undefined ? {} : { "retry-after": script.retryAfter })
      })
    }
    response.writeHead(200, sseHeaders)
    response.flushHeaders()
    const closed = () => response.destroyed || record.outcome !== "open"
    if (script._tag === "Replay") return replayTo(response, script, closed)
    const context = contextOf(record.n, body)
    const usage = script.usage ?? { inputTokens: promptTokens(body), outputTokens: script.deltas.length }
    const plan = (protocol === "openai" ? openAiPlan : anthropicPlan)(context, { ...script, usage })
    await play(response, script, plan, closed, () => {
      end("dropped")
      request.socket.destroy()
    })
  }

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      console.error("model server:", error)
      response.destroy()
    })
  })

  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resolve({
        url: `http://${options.host ?? "127.0.0.1"}:${port}`,
        port,
        enqueue: (...scripts) => {
          queue.push(...scripts)
        },
        requests: snapshot,
        when: (check, then) => {
          const watcher = { check, then }
          if (check(snapshot())) then()
          else watchers.push(watcher)
          return () => {
            watchers = watchers.filter((other) => other !== watcher)
          }
        },
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done())
            server.closeAllConnections()
          })
      })
    })
  })
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Waits before a step: for the gate's permit, or the delay. False when the client has gone meanwhile. */
const pace = async (script: Reply | Replay, closed: () => boolean): Promise<boolean> => {
  if (script._tag === "Reply" && script.gate !== undefined) {
    if (!(await script.gate.take(closed))) return false
  } else if (script.delayMs > 0) await sleep(script.delayMs)
  return !closed()
}

/** Writes and waits until the data is handed to the socket (so a drop after it loses nothing written). */
const write = (response: ServerResponse, text: string) =>
  new Promise<void>((resolve) => {
    if (text === "") resolve()
    else response.write(text, () => resolve())
  })

const play = async (
  response: ServerResponse,
  script: Reply,
  plan: Plan,
  closed: () => boolean,
  drop: () => void
) => {
  // A gate is only consulted at a release: a client gone meanwhile must wake its waiter.
  response.on("close", () => script.gate?.release(0))
  await write(response, plan.head.join(""))
  for (const step of plan.steps) {
    if (!(await pace(script, closed))) return
    await write(response, step.join(""))
  }
  if (!(await pace(script, closed))) return
  if (script.ending === "drop") return drop()
  if (script.ending === "hang") return
  response.end(plan.tail.join(""))
}

const replayTo = async (response: ServerResponse, script: Replay, closed: () => boolean) => {
  for (const frame of framesOf(script.body)) {
    if (!(await pace(script, closed))) return
    await write(response, frame)
  }
  response.end()
}

/**
 * The Node HTTP server the runtime listens with. Node answers requests its
 * parser rejects (oversized headers, a bad Content-Length) on its own with an
 * empty body; the contract wants JSON with `_tag` and `message` on every
 * response >= 400, so those answers are written here.
 *
 * The platform listens before it attaches its request handler, and detaches
 * it before the server has closed. A request that arrives in between would
 * get no answer at all (a client waits for its timeout: 30 s for ours, after
 * a restart on the same port). Until the handler is there, and once it is
 * gone, requests are answered 503 `Unavailable` with `Retry-After`, which
 * clients retry (docs/rest.md).
 *
 * A client that sends nothing, or trickles its headers, or never finishes its
 * body, would hold a connection (and a file descriptor) for ever: Node's
 * `headersTimeout` and `requestTimeout` end such a request with 408, checked
 * every `connectionsCheckingInterval`. They bound receiving a request only,
 * so open event streams and long polls are not cut (docs/operations.md).
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import type * as ServeError from "@effect/platform/HttpServerError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { EventEmitter } from "node:events"
import { IncomingMessage, Server, ServerResponse } from "node:http"
import type { ListenOptions } from "node:net"
import type { Socket } from "node:net"
import { pipeline } from "node:stream"
import type { Duplex } from "node:stream"
import { type FastLane, FastLaneSlot, type LaneAnswer } from "../http/FastLane.js"
import { hostHeaderCount } from "../http/Hosts.js"
import { RETRY_AFTER_MS } from "../RuntimeOptions.js"

const errorResponse = (status: number, reason: string, message: string): string => {
  const body = JSON.stringify({ _tag: "InvalidInput", message })
  return `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${
    Buffer.byteLength(body)
  }\r\nconnection: close\r\n\r\n${body}`
}

/** How long receiving a request may take (its headers, then the whole of it), and how many connections at once. */
export interface ServerLimits {
  /**
   * Connections open at once; one more is answered 503 `Unavailable` with
   * `Retry-After` and closed, never reset. Default 1024.
   */
  readonly maxConnections?: number | undefined
  /** Default 10 s. */
  readonly headersTimeoutMs?: number | undefined
  /** Default 30 s (a 4 MiB body at 150 KiB/s). */
  readonly requestTimeoutMs?: number | undefined
  /** How often open connections are checked against them; default 1 s. */
  readonly checkEveryMs?: number | undefined
}

export const DEFAULT_MAX_CONNECTIONS = 1024
const DEFAULT_HEADERS_TIMEOUT_MS = 10_000
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000

const onClientError = (error: Error & { code?: string }, socket: Duplex) => {
  if (error.code === "ECONNRESET" || !socket.writable) {
    socket.destroy()
    return
  }
  const response = error.code === "HPE_HEADER_OVERFLOW"
    ? errorResponse(400, "Bad Request", "request headers are too large")
    : error.code === "ERR_HTTP_REQUEST_TIMEOUT"
    ? errorResponse(408, "Request Timeout", "the request did not arrive in time")
    : errorResponse(400, "Bad Request", `malformed HTTP request (${error.code ?? "parse error"})`)
  socket.end(response)
}

const notServing = (_request: IncomingMessage, response: ServerResponse) => {
  const body = JSON.stringify({
    _tag: "Unavailable",
    message: "The runtime is starting or stopping; retry shortly.",
    retryAfterMs: RETRY_AFTER_MS
  })
  response.writeHead(503, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    "retry-after": String(Math.max(1, Math.ceil(RETRY_AFTER_MS / 1000))),
    connection: "close"
  })
  response.end(body)
}

const overCapacity = (() => {
  const body = JSON.stringify({
    _tag: "Unavailable",
    message: "The runtime has as many connections open as it takes; retry shortly.",
    retryAfterMs: RETRY_AFTER_MS
  })
  return `HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: ${
    Buffer.byteLength(body)
  }\r\nretry-after: ${Math.max(1, Math.ceil(RETRY_AFTER_MS / 1000))}\r\nconnection: close\r\n\r\n${body}`
})()

/** Whether a request announces a body. */
const hasBody = (request: IncomingMessage) => {
  const length = request.headers["content-length"]
  return (length !== undefined && length !== "0") || request.headers["transfer-encoding"] !== undefined
}

/** Writes a lane's whole answer with the headers the platform writes for it. */
const writeAnswer = (response: ServerResponse, answer: LaneAnswer) => {
  if (response.writableEnded || response.destroyed) return
  if (answer.body === "" && answer.contentType === "") {
    // An empty answer (the platform's to an interrupted request): status only.
    response.writeHead(answer.status, answer.headers ?? {})
    response.end()
    return
  }
  response.writeHead(answer.status, {
    "content-type": answer.contentType,
    "content-length": String(Buffer.byteLength(answer.body)),
    ...answer.headers
  })
  response.end(answer.body)
}

/** The whole body of `request`, then `onBody`; nothing if the client goes first. */
const readBody = (request: IncomingMessage, onBody: (body: Uint8Array) => void) => {
  const chunks: Array<Buffer> = []
  request.on("data", (chunk: Buffer) => chunks.push(chunk))
  request.on("end", () => onBody(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)))
  // An aborted body: the socket and its answer are gone.
  request.on("error", () => {})
}

/**
 * Answers `request` from `lane` if it answers or takes it: a whole answer
 * with the headers the platform writes for a JSON body; a taken request is
 * answered, streamed or, through `fallThrough`, given to the platform's
 * handler.
 */
const answerFromLane = (
  lane: FastLane,
  request: IncomingMessage,
  response: ServerResponse,
  fallThrough: () => void
): boolean => {
  const result = lane({
    method: request.method ?? "",
    url: request.url ?? "",
    header: (name) => {
      const value = request.headers[name]
      return typeof value === "string" ? value : undefined
    },
    hostHeaders: hostHeaderCount(request),
    hasBody: hasBody(request)
  })
  if (result === undefined) return false
  if (result._tag === "Take") {
    result.run({
      stream: (status, headers, body) => {
        response.writeHead(status, headers)
        // A client that goes destroys the body, which closes its follower.
        pipeline(body, response, () => {})
      },
      answer: (answer) => writeAnswer(response, answer),
      readBody: (onBody) => readBody(request, onBody),
      whenGone: (onGone) =>
        response.once("close", () => {
          if (!response.writableEnded) onGone()
        }),
      fallThrough
    })
    return true
  }
  writeAnswer(response, result)
  return true
}

/**
 * A Node server that takes a fast lane (src/http/FastLane.ts): a request
 * event goes to the lane first, and to the platform's handler only when the
 * lane leaves it.
 */
export class RuntimeHttpServer extends Server {
  #lane: FastLane | undefined = undefined

  /** Takes `lane`; gives back its removal. */
  installLane(lane: FastLane): () => void {
    this.#lane = lane
    return () => {
      if (this.#lane === lane) this.#lane = undefined
    }
  }

  override emit(event: string | symbol, ...args: Array<unknown>): boolean {
    const lane = this.#lane
    if (event === "request" && lane !== undefined) {
      const [request, response] = args
      if (
        request instanceof IncomingMessage && response instanceof ServerResponse &&
        answerFromLane(lane, request, response, () => this.#platform(request, response))
      ) return true
    }
    return this.#emit(event, args)
  }

  // Server's own `emit` is typed per event; the emitter's takes any.
  #emit(event: string | symbol, args: ReadonlyArray<unknown>): boolean {
    return EventEmitter.prototype.emit.call(this, event, ...args)
  }

  /** The request to the platform's handler, as if no lane were here. */
  #platform(request: IncomingMessage, response: ServerResponse): void {
    this.#emit("request", [request, response])
  }
}

export const createRuntimeHttpServer = (limits: ServerLimits = {}): RuntimeHttpServer => {
  const server = new RuntimeHttpServer({
    headersTimeout: limits.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS,
    requestTimeout: limits.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    connectionsCheckingInterval: limits.checkEveryMs ?? 1000
  })
  server.on("clientError", onClientError).on("request", notServing)
  // Node's own maxConnections resets the connections past it; these get an answer.
  const maxConnections = limits.maxConnections ?? DEFAULT_MAX_CONNECTIONS
  let open = 0
  server.prependListener("connection", (socket: Socket) => {
    if (open >= maxConnections) {
      socket.on("error", () => {})
      socket.end(overCapacity)
      return
    }
    open++
    socket.once("close", () => open--)
  })
  server.on("newListener", (event, listener) => {
    if (event === "request" && listener !== notServing) server.off("request", notServing)
  })
  server.on("removeListener", (event, listener) => {
    if (event === "request" && listener !== notServing && server.listenerCount("request") === 0) {
      server.on("request", notServing)
    }
  })
  return server
}

/**
 * `NodeHttpServer.layer` over `createRuntimeHttpServer(limits)`, with the
 * slot the HTTP layer installs its fast lane in.
 */
export const RuntimeNodeHttpServerLive = (
  limits: ServerLimits,
  listen: ListenOptions
): Layer.Layer<Layer.Layer.Success<ReturnType<typeof NodeHttpServer.layer>> | FastLaneSlot, ServeError.ServeError> =>
  Layer.unwrapEffect(Effect.sync(() => {
    const server = createRuntimeHttpServer(limits)
    return Layer.merge(
      NodeHttpServer.layer(() => server, listen),
      Layer.succeed(FastLaneSlot, { install: (lane) => server.installLane(lane) })
    )
  }))

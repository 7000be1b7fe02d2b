/**
 * The runtime's Node server answers 503 `Unavailable` with `Retry-After`
 * while no request handler is attached (the platform listens before it
 * attaches its handler, and detaches it before closing): a request in that
 * window must not wait for the client's timeout.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { IncomingMessage, ServerResponse } from "node:http"
import { createConnection, type Socket } from "node:net"
import { createRuntimeHttpServer } from "../src/node/index.js"
import { eventuallyLive, within } from "./support/eventually.js"
import { listenScoped } from "./support/listen.js"

const get = (port: number) =>
  Effect.promise(async () => {
    const response = await fetch(`http://127.0.0.1:${port}/v1/workers`)
    return { status: response.status, retryAfter: response.headers.get("retry-after"), json: await response.json() }
  })

describe("createRuntimeHttpServer", () => {
  it.scopedLive("answers 503 Unavailable before a handler is attached and after it is gone, and only then", () =>
    Effect.gen(function*() {
      const server = createRuntimeHttpServer()
      const port = yield* listenScoped(server)
      const starting = yield* get(port)
      expect(starting.status).toBe(503)
      expect(starting.retryAfter).toBe("1")
      expect(starting.json).toMatchObject({ _tag: "Unavailable", retryAfterMs: 1000 })

      const handler = (_: unknown, response: ServerResponse) => {
        response.writeHead(200, { "content-type": "application/json" })
        response.end(JSON.stringify({ workers: [] }))
      }
      server.on("request", handler)
      expect(server.listenerCount("request")).toBe(1)
      const serving = yield* get(port)
      expect(serving).toMatchObject({ status: 200, json: { workers: [] } })

      server.off("request", handler)
      expect(server.listenerCount("request")).toBe(1)
      expect((yield* get(port)).status).toBe(503)
    }))
})

/** What a raw connection receives until the server closes it (or the test's deadline). */
const rawUntilClosed = (port: number, act: (socket: Socket) => void) =>
  Effect.async<{ readonly text: string; readonly closed: boolean }>((resume) => {
    let text = ""
    const socket = createConnection(port, "127.0.0.1", () => act(socket))
    socket.on("data", (chunk) => (text += chunk.toString()))
    socket.on("error", () => {})
    socket.on("close", () => resume(Effect.succeed({ text, closed: true })))
    return Effect.sync(() => socket.destroy())
  }).pipe(within("the server closing the connection"))

describe("request timeouts", () => {
  const timeouts = { headersTimeoutMs: 300, requestTimeoutMs: 600, checkEveryMs: 50 }

  it.scopedLive("a connection that sends nothing, or trickles its headers, or never finishes its body: 408, closed", () =>
    Effect.gen(function*() {
      const server = createRuntimeHttpServer(timeouts)
      // As the runtime does: the whole body first, then the answer.
      server.on("request", (request: IncomingMessage, response: ServerResponse) => {
        request.resume()
        request.on("end", () => response.end("{}"))
      })
      const port = yield* listenScoped(server)
      const timers: Array<NodeJS.Timeout> = []
      yield* Effect.addFinalizer(() => Effect.sync(() => timers.forEach(clearInterval)))
      const silent = rawUntilClosed(port, () => {})
      const trickling = rawUntilClosed(port, (socket) => {
        socket.write("GET /v1/workers HTTP/1.1\r\nHost: localhost\r\n")
        timers.push(setInterval(() => socket.write("X-Slow: 1\r\n"), 50))
      })
      const halfBody = rawUntilClosed(port, (socket) => {
        socket.write("POST /v1/workers HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\n")
        socket.write("content-length: 100\r\n\r\n{\"a\":")
        timers.push(setInterval(() => socket.write(" "), 50))
      })
      const answers = yield* Effect.all([silent, trickling, halfBody], { concurrency: "unbounded" })
      for (const answer of answers) {
        expect(answer.closed).toBe(true)
        expect(answer.text).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/)
        expect(JSON.parse(answer.text.slice(answer.text.indexOf("\r\n\r\n") + 4))).toMatchObject({
          _tag: "InvalidInput",
          message: "the request did not arrive in time"
        })
      }
    }))

  it.scopedLive("an answer that streams for longer than the timeouts (an events stream, a long poll) is not cut", () =>
    Effect.gen(function*() {
      const server = createRuntimeHttpServer(timeouts)
      server.on("request", (_: unknown, response: ServerResponse) => {
        response.writeHead(200, { "content-type": "text/event-stream" })
        let sent = 0
        const timer = setInterval(() => {
          response.write(`: ping ${++sent}\n\n`)
          if (sent === 20) {
            clearInterval(timer)
            response.end()
          }
        }, 100)
      })
      const port = yield* listenScoped(server)
      // 20 pings, 100 ms apart: well past both timeouts, and every one arrives.
      const text = yield* Effect.promise(async () => (await fetch(`http://127.0.0.1:${port}/events`)).text())
      expect(text.match(/: ping \d+/g)).toHaveLength(20)
    }))
})

describe("connections", () => {
  it.scopedLive("past maxConnections, a connection is answered 503 with Retry-After and closed, never reset", () =>
    Effect.gen(function*() {
      const server = createRuntimeHttpServer({ maxConnections: 3 })
      server.on("request", (_: unknown, response: ServerResponse) => {
        response.writeHead(200, { "content-type": "application/json" })
        response.end(JSON.stringify({ workers: [] }))
      })
      const sockets: Array<Socket> = []
      const port = yield* listenScoped(server, () => sockets.forEach((socket) => socket.destroy()))
      // Three connections held open (each counted once the server has accepted it).
      for (let i = 0; i < 3; i++) {
        const socket = yield* Effect.async<Socket>((resume) => {
          const socket = createConnection(port, "127.0.0.1", () => resume(Effect.succeed(socket)))
        })
        sockets.push(socket)
      }
      yield* eventuallyLive(
        Effect.async<number>((resume) => {
          server.getConnections((_, count) => resume(Effect.succeed(count)))
        }),
        (count) => count === 3,
        "three connections accepted"
      )
      const refused = yield* get(port)
      expect(refused.status).toBe(503)
      expect(refused.retryAfter).toBe("1")
      expect(refused.json).toMatchObject({ _tag: "Unavailable", retryAfterMs: 1000 })
      // One closes: the next is served.
      sockets.pop()!.destroy()
      const served = yield* eventuallyLive(get(port), (answer) => answer.status === 200, "a connection served again")
      expect(served.json).toEqual({ workers: [] })
    }))
})

/**
 * The derived client's error mapping: what a retry may fix is `Unavailable`,
 * what only a configuration change fixes is a loud defect.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer } from "effect"
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http"
import { createServer, type Socket } from "node:net"
import { RuntimeHttpClientLive, RuntimeMisconfigured } from "../src/http/index.js"
import { InvalidInput, Runtime, Unavailable, UnknownWorker, WorkerId } from "../src/index.js"
import { baseUrl, httpServer } from "./support/httpRuntime.js"
import { listenScoped } from "./support/listen.js"

/** A loopback port nothing listens on. */
const closedPort = Effect.promise(() =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
)

/** A server answering every request with `status` and `body`; closed with the scope. */
const fakeRuntime = (handle: (request: IncomingMessage, response: ServerResponse) => void) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<{ url: string; close: () => void }>((resolve) => {
        const server = createHttpServer(handle).listen(0, "127.0.0.1", () => {
          const address = server.address()
          const port = typeof address === "object" && address !== null ? address.port : 0
          resolve({ url: `http://127.0.0.1:${port}`, close: () => server.close() })
        })
      })
    ),
    ({ close }) => Effect.sync(close)
  ).pipe(Effect.map(({ url }) => url))

const answering = (status: number, body: unknown) =>
  fakeRuntime((_request, response) => {
    response.writeHead(status, { "content-type": "application/json" })
    response.end(JSON.stringify(body))
  })

const clientAt = (url: string, options: { token?: string; requestTimeout?: number } = {}) =>
  RuntimeHttpClientLive({ baseUrl: url, ...options }).pipe(Layer.provide(FetchHttpClient.layer))

const getAny = Effect.flatMap(Runtime, (rt) => rt.get(WorkerId.make("any")))

/** The defect a misconfigured call dies with. */
const defectOf = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.map(Effect.exit(effect), (exit) => {
    expect(Exit.isFailure(exit)).toBe(true)
    const defect = Exit.isFailure(exit) ? Cause.dieOption(exit.cause) : undefined
    expect(defect?._tag).toBe("Some")
    return defect?._tag === "Some" ? defect.value : undefined
  })

describe("RuntimeHttpClient", () => {
  it.live("turns a refused connection into Unavailable", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      const error = yield* Effect.flip(getAny.pipe(Effect.provide(clientAt(`http://127.0.0.1:${port}`))))
      expect(error).toBeInstanceOf(Unavailable)
      expect(error.message).toContain("unreachable")
      expect((error as Unavailable).retryAfterMs).toBeGreaterThan(0)
    }))

  it.live("dies with RuntimeMisconfigured on a wrong token, and keeps declared errors", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      const wrong = yield* defectOf(getAny.pipe(Effect.provide(clientAt(url, { token: "wrong" }))))
      expect(wrong).toBeInstanceOf(RuntimeMisconfigured)
      expect(wrong).toMatchObject({ status: 401, message: expect.stringContaining("token") })
      const missing = yield* defectOf(getAny.pipe(Effect.provide(clientAt(url))))
      expect(missing).toMatchObject({ status: 401 })
      const unknown = yield* Effect.flip(getAny.pipe(Effect.provide(clientAt(url, { token: "right" }))))
      expect(unknown, unknown.message).toBeInstanceOf(UnknownWorker)
    }).pipe(Effect.provide(httpServer({}, "right"))))

  it.live("dies with RuntimeMisconfigured on a baseUrl with a path (an unknown route)", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      const defect = yield* defectOf(getAny.pipe(Effect.provide(clientAt(`${url}/v1`, { token: "t" }))))
      expect(defect).toMatchObject({ status: 404, message: expect.stringContaining("baseUrl") })
      const list = yield* defectOf(
        Effect.flatMap(Runtime, (rt) => rt.list({})).pipe(Effect.provide(clientAt(`${url}/v1`, { token: "t" })))
      )
      expect(list).toMatchObject({ status: 404 })
    }).pipe(Effect.provide(httpServer({}, "t"))))

  it.scopedLive("dies on 403, 405 and 415, which no retry fixes", () =>
    Effect.gen(function*() {
      for (
        const [status, tag] of [[403, "Forbidden"], [405, "MethodNotAllowed"], [415, "UnsupportedMediaType"]] as const
      ) {
        const url = yield* answering(status, { _tag: tag, message: "no" })
        const defect = yield* defectOf(getAny.pipe(Effect.provide(clientAt(url))))
        expect(defect).toBeInstanceOf(RuntimeMisconfigured)
        expect(defect).toMatchObject({ status })
      }
    }))

  it.scopedLive("is Unavailable on 503, 500 and an undeclared 5xx", () =>
    Effect.gen(function*() {
      for (
        const [status, body] of [
          [503, { _tag: "Unavailable", message: "draining", retryAfterMs: 5000 }],
          [500, { _tag: "InternalError", message: "bug" }],
          [502, { error: "bad gateway" }]
        ] as const
      ) {
        const url = yield* answering(status, body)
        const error = yield* Effect.flip(getAny.pipe(Effect.provide(clientAt(url))))
        expect(error, String(status)).toBeInstanceOf(Unavailable)
        if (status === 503) expect(error).toMatchObject({ retryAfterMs: 5000 })
      }
    }))

  it.scopedLive("gives up on a server that never answers after requestTimeout, as Unavailable", () =>
    Effect.gen(function*() {
      const sockets: Array<Socket> = []
      // Accepts and reads, never answers.
      const port = yield* listenScoped(
        createServer((socket) => sockets.push(socket)),
        () => sockets.forEach((socket) => socket.destroy())
      )
      const error = yield* Effect.flip(
        getAny.pipe(Effect.provide(clientAt(`http://127.0.0.1:${port}`, { requestTimeout: 300 })))
      )
      expect(error).toBeInstanceOf(Unavailable)
      // Its own timeout, not the default's (30 s).
      expect(error.message).toContain("did not answer within 300ms")
    }))

  it.live("answers InvalidInput, as embedded, for a body over the server's limit", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      const error = yield* Effect.flip(
        Effect.gen(function*() {
          const rt = yield* Runtime
          const worker = yield* rt.create({})
          return yield* rt.input(worker.id, { content: "x".repeat(8 * 1024 + 70 * 1024) })
        }).pipe(Effect.provide(clientAt(url)))
      )
      expect(error).toBeInstanceOf(InvalidInput)
    }).pipe(Effect.provide(httpServer({ maxInputBytes: 1024 }))))
})

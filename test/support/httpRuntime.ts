/** A real server on port 0 over `RuntimeLive`, and the derived client talking to it. */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpServer from "@effect/platform/HttpServer"
import { Effect, Layer, Redacted } from "effect"

import { RuntimeHttpClientLive, type RuntimeHttpOptions, RuntimeHttpServerLive } from "../../src/http/index.js"
import { RuntimeLive, type RuntimeOptions } from "../../src/index.js"
import { RuntimeNodeHttpServerLive } from "../../src/node/index.js"

export const serverUrl = (address: HttpServer.Address) =>
  address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : `http://unix:${address.path}`

/**
 * `RuntimeLive` behind the HTTP server, listening on an ephemeral loopback
 * port; the server's body limit follows the Runtime's `maxInputBytes`.
 */
export const httpServer = (options: RuntimeOptions = {}, token?: string, server: RuntimeHttpOptions = {}) =>
  RuntimeHttpServerLive({
    maxInputBytes: options.maxInputBytes,
    ...server,
    token: token === undefined ? undefined : Redacted.make(token)
  }).pipe(
    Layer.provideMerge(RuntimeNodeHttpServerLive({}, { port: 0, host: "127.0.0.1" })),
    Layer.provideMerge(RuntimeLive(options))
  )

/** The server's base URL, read from the `HttpServer` in context. */
export const baseUrl = Effect.map(HttpServer.HttpServer, (server) => serverUrl(server.address))

/** `RuntimeHttpClient -> real server on port 0 -> RuntimeLive`, as one `Layer<Runtime>`. */
export const httpRuntime = (options: RuntimeOptions = {}, token?: string) =>
  Layer.unwrapEffect(Effect.map(baseUrl, (url) => RuntimeHttpClientLive({ baseUrl: url, token }))).pipe(
    Layer.provide(httpServer(options, token)),
    Layer.provide(FetchHttpClient.layer)
  )

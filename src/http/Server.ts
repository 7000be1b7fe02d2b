/**
 * The HTTP server layer: `RuntimeApi` served over whatever `HttpServer` is
 * provided (e.g. `NodeHttpServer.layer`), delegating to the `Runtime` in
 * context. It refuses browsers: Browser -> Backend -> Runtime, always.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import type * as HttpRouter from "@effect/platform/HttpRouter"
import type * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"
import { identity } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"

import { Runtime } from "../Runtime.js"
import { DEFAULT_MAX_INPUT_BYTES } from "../RuntimeOptions.js"
import { RuntimeApi } from "./Api.js"
import { AuthorizationLive, BodyLimitLive, HealthHandlers, RuntimeHandlers, WorkersHandlers } from "./ApiLive.js"
import { makeGuard } from "./Guard.js"

export interface RuntimeHttpOptions {
  /** Bearer token every path but `/healthz` and `/readyz` requires; none when absent. */
  readonly token?: Redacted.Redacted<string> | undefined
  /** Log one line per request at debug level. */
  readonly logRequests?: boolean | undefined
  /**
   * A tracing span per request. Off by default: nobody exports them unless a
   * tracer is configured, and building them costs a measurable share of a
   * request (docs/benchmarks.md).
   */
  readonly tracing?: boolean | undefined
}

/** The body limit (docs/rest.md): room for JSON-escaped content at its largest, plus the rest of the body. */
export const bodyLimitFor = (maxInputBytes: number) => 4 * maxInputBytes + 64 * 1024

const logRequests = (app: HttpApp.Default): HttpApp.Default =>
  Effect.flatMap(
    HttpServerRequest.HttpServerRequest,
    (request) => Effect.tap(app, (response) => Effect.logDebug(`${request.method} ${request.url} ${response.status}`))
  )

/** Serves `RuntimeApi` on the `HttpServer` in context. */
export const RuntimeHttpServerLive = (
  options: RuntimeHttpOptions = {}
): Layer.Layer<never, never, Runtime | HttpServer.HttpServer | HttpRouter.HttpRouter.DefaultServices> => {
  const token = Option.fromNullable(options.token)
  return Layer.unwrapEffect(
    Effect.gen(function*() {
      const runtime = yield* Runtime
      const maxInputBytes = yield* runtime.info.pipe(
        Effect.map((info) => info.limits.maxInputBytes),
        Effect.orElseSucceed(() => DEFAULT_MAX_INPUT_BYTES)
      )
      const maxBodyBytes = bodyLimitFor(maxInputBytes)
      const api = HttpApiBuilder.api(RuntimeApi).pipe(
        Layer.provide([RuntimeHandlers, WorkersHandlers, HealthHandlers]),
        Layer.provide([AuthorizationLive(token), BodyLimitLive(maxBodyBytes)])
      )
      return HttpApiBuilder.serve(options.logRequests === true ? logRequests : undefined).pipe(
        options.tracing === true ? identity : HttpMiddleware.withTracerDisabledWhen(() => true),
        Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
        Layer.provide(HttpApiBuilder.middleware(RuntimeApi, makeGuard({ token, maxBodyBytes }))),
        Layer.provide(api)
      )
    })
  )
}

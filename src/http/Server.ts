/**
 * The HTTP server layer: `RuntimeApi` served over whatever `HttpServer` is
 * provided (e.g. `NodeHttpServer.layer`), delegating to the `Runtime` in
 * context. It refuses browsers and Hosts it does not know: Browser -> Backend
 * -> Runtime, always.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import type * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { identity } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Metrics from "../Metrics.js"
import { type Runtime } from "../Runtime.js"
import { DEFAULT_MAX_INPUT_BYTES } from "../RuntimeOptions.js"
import { RuntimeApi } from "./Api.js"
import { AuthorizationLive, HealthHandlers, RuntimeHandlers, WorkersHandlers } from "./ApiLive.js"
import { DEFAULT_PING_MS } from "./EventStream.js"
import { makeGuard } from "./Guard.js"
import { allowsAnyHost, makeHostPolicy } from "./Hosts.js"
import { makeRoutes, type Routes, workerIdOf } from "./Routes.js"

export interface RuntimeHttpOptions {
  /** Bearer token every path but `/healthz` and `/readyz` requires; none when absent. */
  readonly token?: Redacted.Redacted<string> | undefined
  /**
   * Host names a request may carry besides the loopback names and the bound
   * address (docs/security.md); `["*"]` allows any, and needs a token.
   */
  readonly allowedHosts?: ReadonlyArray<string> | undefined
  /**
   * The Runtime's `maxInputBytes`, which sets the body limit
   * (`bodyLimitFor`); the core's default (`DEFAULT_MAX_INPUT_BYTES`) when
   * absent. Give the same number as the Runtime's own option.
   */
  readonly maxInputBytes?: number | undefined
  /** How often an idle events stream gets a `: ping` comment (default 15 s; tests shorten it). */
  readonly ssePingMs?: number | undefined
  /** The Prometheus text for `GET /metrics` (same auth as `/v1`); no such route without it. */
  readonly metrics?: Effect.Effect<string> | undefined
  /**
   * A tracing span per request. Off by default: nobody exports them unless a
   * tracer is configured, and building them costs a measurable share of a
   * request (docs/benchmarks.md).
   */
  readonly tracing?: boolean | undefined
}

/** The body limit (docs/rest.md): room for JSON-escaped content at its largest, plus the rest of the body. */
export const bodyLimitFor = (maxInputBytes: number) => 4 * maxInputBytes + 64 * 1024

const OPENAPI_PATH = "/openapi.json"

const METRICS_PATH = "/metrics"

/**
 * Per request: the latency and count metrics, and at debug level one log line
 * with method, route, status, duration and Worker (never the token, never
 * content).
 */
const observeRequests = (routes: Routes) => (app: HttpApp.Default): HttpApp.Default =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    Effect.gen(function*() {
      const path = request.url.split("?")[0]!
      const [took, response] = yield* Effect.timed(app)
      const route = routes.templateOf(request.method, path)
      const seconds = Duration.toSeconds(took)
      const labels = [Metrics.label("route", route), Metrics.label("method", request.method)]
      Metrics.requests.unsafeUpdate(1, [...labels, Metrics.label("status", String(response.status))])
      Metrics.requestDuration.unsafeUpdate(seconds, labels)
      const workerId = workerIdOf(path)
      yield* Effect.logDebug("request").pipe(
        Effect.annotateLogs({
          method: request.method,
          route,
          status: response.status,
          durationMs: Math.round(seconds * 1e6) / 1e3,
          ...(workerId === undefined ? {} : { workerId: decodeURIComponent(workerId) })
        })
      )
      return response
    }))

/** Serves `RuntimeApi` on the `HttpServer` in context. */
export const RuntimeHttpServerLive = (
  options: RuntimeHttpOptions = {}
): Layer.Layer<never, never, Runtime | HttpServer.HttpServer | HttpRouter.HttpRouter.DefaultServices> => {
  const token = Option.fromNullable(options.token)
  const allowedHosts = options.allowedHosts ?? []
  if (allowsAnyHost(allowedHosts) && Option.isNone(token)) {
    // The bin refuses this at start with a message; embedded, it is a programming error.
    return Layer.die(new Error("allowedHosts [\"*\"] needs a token: any web page could read a tokenless Runtime"))
  }
  const maxBodyBytes = bodyLimitFor(options.maxInputBytes ?? DEFAULT_MAX_INPUT_BYTES)
  return Layer.unwrapEffect(
    Effect.gen(function*() {
      const server = yield* HttpServer.HttpServer
      const bound = server.address._tag === "TcpAddress" ? server.address.hostname : undefined
      const api = HttpApiBuilder.api(RuntimeApi).pipe(
        Layer.provide([
          RuntimeHandlers,
          WorkersHandlers({ maxBodyBytes, pingMs: options.ssePingMs ?? DEFAULT_PING_MS }),
          HealthHandlers
        ]),
        Layer.provide(AuthorizationLive(token))
      )
      const metrics = options.metrics
      const routes = makeRoutes([
        { method: "GET", path: OPENAPI_PATH },
        ...(metrics === undefined ? [] : [{ method: "GET", path: METRICS_PATH }])
      ])
      const guard = makeGuard({
        token,
        maxBodyBytes,
        hosts: makeHostPolicy(allowedHosts, bound),
        methodsOf: routes.methodsOf
      })
      const metricsRoute = metrics === undefined
        ? Layer.empty
        : HttpApiBuilder.Router.use((router) =>
          router.get(
            METRICS_PATH,
            Effect.map(metrics, (text) =>
              HttpServerResponse.text(text, { contentType: "text/plain; version=0.0.4; charset=utf-8" }))
          )
        )
      return HttpApiBuilder.serve(observeRequests(routes)).pipe(
        options.tracing === true ? identity : HttpMiddleware.withTracerDisabledWhen(() => true),
        Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: OPENAPI_PATH })),
        Layer.provide(metricsRoute),
        Layer.provide(HttpApiBuilder.middleware(RuntimeApi, guard)),
        Layer.provide(api)
      )
    })
  )
}

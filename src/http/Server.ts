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
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as HttpTraceContext from "@effect/platform/HttpTraceContext"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as LogLevel from "effect/LogLevel"
import type * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Metrics from "../Metrics.js"
import { Runtime } from "../Runtime.js"
import { RuntimeControl } from "../RuntimeControl.js"
import { DEFAULT_MAX_INPUT_BYTES } from "../RuntimeOptions.js"
import { headerAttributes, withoutQuery } from "../Tracing.js"
import { RuntimeApi } from "./Api.js"
import { AuthorizationLive, HealthHandlers, RuntimeHandlers, WorkersHandlers } from "./ApiLive.js"
import { makeEventsLane } from "./EventsLane.js"
import { DEFAULT_PING_MS } from "./EventStream.js"
import { FastLaneSlot, firstOf, makeWorkerLane } from "./FastLane.js"
import { makeGuard, makeRefusalOf } from "./Guard.js"
import { type HeldRequests, makeHeldRequests } from "./HeldRequests.js"
import { allowsAnyHost, makeHostPolicy } from "./Hosts.js"
import { makeInputLane } from "./InputLane.js"
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
  /**
   * Requests held open at once across the server: events streams and long
   * polls (`turns/{turn}?waitMs=` on a running turn); one more is answered
   * 503 `Unavailable` with `Retry-After`. An integer >= 1; default
   * `DEFAULT_MAX_STREAMS`.
   */
  readonly maxStreams?: number | undefined
  /** The Prometheus text for `GET /metrics` (same auth as `/v1`); no such route without it. */
  readonly metrics?: Effect.Effect<string> | undefined
  /**
   * A tracing span per request. Off by default: nobody exports them unless a
   * tracer is configured, and building them costs a measurable share of a
   * request (docs/benchmarks.md).
   */
  readonly tracing?: boolean | undefined
}

/** Events streams and long polls held open at once, without `maxStreams`. */
export const DEFAULT_MAX_STREAMS = 512

/** The body limit (docs/rest.md): room for JSON-escaped content at its largest, plus the rest of the body. */
export const bodyLimitFor = (maxInputBytes: number) => 4 * maxInputBytes + 64 * 1024

const OPENAPI_PATH = "/openapi.json"

const METRICS_PATH = "/metrics"

/**
 * With tracing, the request's span (continuing a W3C `traceparent`), in
 * place of the platform's, which records every header but a few and the
 * query string with its values. This one records the method, the path and
 * its route, the client's address, the status and the headers in
 * `RECORDED_HEADERS`: never a credential, never a query (docs/security.md).
 */
const requestSpan =
  (request: HttpServerRequest.HttpServerRequest, path: string, route: string) =>
  <A extends HttpServerResponse.HttpServerResponse, E, R>(
    handled: Effect.Effect<A, E, R>
  ): Effect.Effect<A, E, R> =>
    Effect.useSpan(
      `http.server ${request.method}`,
      {
        parent: Option.getOrUndefined(HttpTraceContext.fromHeaders(request.headers)),
        kind: "server",
        captureStackTrace: false,
        attributes: {
          "http.request.method": request.method,
          "url.path": path,
          "http.route": route,
          ...headerAttributes("request", request.headers),
          ...Option.match(request.remoteAddress, {
            onNone: () => ({}),
            onSome: (address) => ({ "client.address": address })
          })
        }
      },
      (span) =>
        Effect.onExit(Effect.withParentSpan(handled, span), (exit) =>
          Effect.sync(() => {
            const response = HttpServerError.exitResponse(exit)
            span.attribute("http.response.status_code", response.status)
            for (const [name, value] of Object.entries(headerAttributes("response", response.headers))) {
              span.attribute(name, value)
            }
          }))
    )

/** Label sets kept at most, per kind: methods are the client's to choose. */
const MAX_LABEL_SETS = 1024

/**
 * The same label set, as the same array, for the same key: Effect caches a
 * metric's hook by its label array, and a fresh array per request builds and
 * hashes a new metric key each time.
 */
const labelSets = () => {
  const sets = new Map<string, ReadonlyArray<MetricLabel.MetricLabel>>()
  return (key: string, make: () => ReadonlyArray<MetricLabel.MetricLabel>) => {
    const known = sets.get(key)
    if (known !== undefined) return known
    const made = make()
    if (sets.size < MAX_LABEL_SETS) sets.set(key, made)
    return made
  }
}

/**
 * The latency and count metrics of one answer: the same label set, as the
 * same array, per method, route and status.
 */
const makeRecord = () => {
  const counted = labelSets()
  const timed = labelSets()
  return (method: string, route: string, status: number, ms: number) => {
    Metrics.requests.unsafeUpdate(
      1,
      counted(`${method} ${status} ${route}`, () => [
        Metrics.label("route", route),
        Metrics.label("method", method),
        Metrics.label("status", String(status))
      ])
    )
    Metrics.requestDuration.unsafeUpdate(
      ms / 1000,
      timed(`${method} ${route}`, () => [Metrics.label("route", route), Metrics.label("method", method)])
    )
  }
}

/**
 * Per request: the latency and count metrics (`record`), and at debug level
 * (decided once, when the server is built) one log line with method, route,
 * status, duration and Worker (never the token, never content); with
 * tracing, inside the request's span. One clock read at each end.
 */
const observeRequests = (
  routes: Routes,
  record: ReturnType<typeof makeRecord>,
  tracing: boolean,
  debug: boolean
) =>
(app: HttpApp.Default): HttpApp.Default =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    const started = performance.now()
    const path = withoutQuery(request.url)
    const route = routes.templateOf(request.method, path)
    const observed = Effect.flatMap(app, (response) => {
      const ms = performance.now() - started
      const { method } = request
      const { status } = response
      record(method, route, status, ms)
      if (!debug) return Effect.succeed(response)
      const workerId = workerIdOf(path)
      return Effect.as(
        Effect.logDebug("request").pipe(
          Effect.annotateLogs({
            method,
            route,
            status,
            durationMs: Math.round(ms * 1e3) / 1e3,
            ...(workerId === undefined ? {} : { workerId: decodeURIComponent(workerId) })
          })
        ),
        response
      )
    })
    return tracing ? requestSpan(request, path, route)(observed) : observed
  })

/**
 * Installs the fast lane (FastLane.ts) where the server takes one, for as
 * long as the layer lives; not with tracing or debug logs, which need the
 * request's fiber, nor over a Runtime that cannot answer a read at once.
 */
const installLane = (options: {
  readonly refusalOf: ReturnType<typeof makeRefusalOf>
  readonly record: ReturnType<typeof makeRecord>
  readonly observed: boolean
  readonly heldRequests: HeldRequests
  readonly pingMs: number
  readonly maxBodyBytes: number
}) =>
  Effect.gen(function*() {
    const slot = yield* Effect.serviceOption(FastLaneSlot)
    const control = yield* Effect.serviceOption(RuntimeControl)
    const peek = Option.flatMapNullable(control, (control) => control.peek)
    if (options.observed || Option.isNone(slot) || Option.isNone(peek)) return
    const { heldRequests, maxBodyBytes, pingMs, record, refusalOf } = options
    const follow = Option.getOrUndefined(Option.flatMapNullable(control, (control) => control.follow))
    const runtime = yield* Effect.runtime<never>()
    const { input } = yield* Runtime
    const lanes = [
      makeWorkerLane({ refusalOf, peek: peek.value, record }),
      makeInputLane({ refusalOf, record, input, maxBodyBytes, runtime }),
      follow === undefined
        ? undefined
        : makeEventsLane({ refusalOf, peek: peek.value, record, follow, heldRequests, pingMs, runtime })
    ].filter((lane) => lane !== undefined)
    if (lanes.length === 0) return
    const uninstall = slot.value.install(firstOf(lanes))
    yield* Effect.addFinalizer(() => Effect.sync(uninstall))
  })

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
  const maxStreams = options.maxStreams ?? DEFAULT_MAX_STREAMS
  if (!Number.isInteger(maxStreams) || maxStreams < 1) {
    return Layer.die(new Error(`maxStreams must be an integer >= 1, got ${maxStreams}`))
  }
  const maxBodyBytes = bodyLimitFor(options.maxInputBytes ?? DEFAULT_MAX_INPUT_BYTES)
  const pingMs = options.ssePingMs ?? DEFAULT_PING_MS
  return Layer.unwrapScoped(
    Effect.gen(function*() {
      // One count per server (the layer is built once per server), for the handlers and the lane.
      const heldRequests = makeHeldRequests(maxStreams)
      const server = yield* HttpServer.HttpServer
      const bound = server.address._tag === "TcpAddress" ? server.address.hostname : undefined
      const api = HttpApiBuilder.api(RuntimeApi).pipe(
        Layer.provide([
          RuntimeHandlers,
          WorkersHandlers({ maxBodyBytes, heldRequests, pingMs }),
          HealthHandlers
        ]),
        Layer.provide(AuthorizationLive)
      )
      const metrics = options.metrics
      const routes = makeRoutes([
        { method: "GET", path: OPENAPI_PATH },
        ...(metrics === undefined ? [] : [{ method: "GET", path: METRICS_PATH }])
      ])
      const guardOptions = {
        token,
        maxBodyBytes,
        hosts: makeHostPolicy(allowedHosts, bound),
        methodsOf: routes.methodsOf
      }
      const guard = makeGuard(guardOptions)
      const metricsRoute = metrics === undefined
        ? Layer.empty
        : HttpApiBuilder.Router.use((router) =>
          router.get(
            METRICS_PATH,
            Effect.map(metrics, (text) =>
              HttpServerResponse.text(text, { contentType: "text/plain; version=0.0.4; charset=utf-8" }))
          )
        )
      const debug = LogLevel.lessThanEqual(yield* FiberRef.get(FiberRef.currentMinimumLogLevel), LogLevel.Debug)
      const tracing = options.tracing === true
      const record = makeRecord()
      yield* installLane({
        refusalOf: makeRefusalOf(guardOptions),
        record,
        observed: tracing || debug,
        heldRequests,
        pingMs,
        maxBodyBytes
      })
      return HttpApiBuilder.serve(observeRequests(routes, record, tracing, debug)).pipe(
        // The platform's request span is never made: `requestSpan` is ours.
        HttpMiddleware.withTracerDisabledWhen(() => true),
        Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: OPENAPI_PATH })),
        Layer.provide(metricsRoute),
        Layer.provide(HttpApiBuilder.middleware(RuntimeApi, guard)),
        Layer.provide(api)
      )
    })
  )
}

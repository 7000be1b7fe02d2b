/**
 * The HTTP server layer: `RuntimeApi` served over whatever `HttpServer` is
 * provided (e.g. `NodeHttpServer.layer`), delegating to the `Runtime` in
 * context. It refuses browsers and Hosts it does not know: Browser -> Backend
 * -> Runtime, always.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import type * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"
import { identity } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import { Runtime } from "../Runtime.js"
import { DEFAULT_MAX_INPUT_BYTES } from "../RuntimeOptions.js"
import { RuntimeApi } from "./Api.js"
import { AuthorizationLive, HealthHandlers, RuntimeHandlers, WorkersHandlers } from "./ApiLive.js"
import { DEFAULT_PING_MS } from "./EventStream.js"
import { makeGuard } from "./Guard.js"
import { makeHostPolicy } from "./Hosts.js"

export interface RuntimeHttpOptions {
  /** Bearer token every path but `/healthz` and `/readyz` requires; none when absent. */
  readonly token?: Redacted.Redacted<string> | undefined
  /**
   * Host names a request may carry besides the loopback names and the bound
   * address (docs/security.md); `["*"]` allows any, and needs a token.
   */
  readonly allowedHosts?: ReadonlyArray<string> | undefined
  /** How often an idle events stream gets a `: ping` comment (default 15 s; tests shorten it). */
  readonly ssePingMs?: number | undefined
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

const OPENAPI_PATH = "/openapi.json"

/** The methods each path of `RuntimeApi` takes, for 405 and `Allow`. */
const routeMethods = (): (path: string) => ReadonlyArray<string> => {
  const routes: Array<{ readonly pattern: RegExp; readonly method: string }> = [
    { pattern: /^\/openapi\.json$/, method: "GET" }
  ]
  HttpApi.reflect(RuntimeApi, {
    onGroup: () => {},
    onEndpoint: ({ endpoint }) => {
      const source = endpoint.path.split("/").map((segment) =>
        segment.startsWith(":") ? "[^/]+" : segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
      ).join("/")
      routes.push({ pattern: new RegExp(`^${source}$`), method: endpoint.method })
    }
  })
  return (path) => routes.filter((route) => route.pattern.test(path)).map((route) => route.method)
}

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
  const allowedHosts = options.allowedHosts ?? []
  if (allowedHosts.some((host) => host.trim() === "*") && Option.isNone(token)) {
    // The bin refuses this at start with a message; embedded, it is a programming error.
    return Layer.die(new Error("allowedHosts [\"*\"] needs a token: any web page could read a tokenless Runtime"))
  }
  return Layer.unwrapEffect(
    Effect.gen(function*() {
      const runtime = yield* Runtime
      const server = yield* HttpServer.HttpServer
      const maxInputBytes = yield* runtime.info.pipe(
        Effect.map((info) => info.limits.maxInputBytes),
        Effect.orElseSucceed(() => DEFAULT_MAX_INPUT_BYTES)
      )
      const maxBodyBytes = bodyLimitFor(maxInputBytes)
      const bound = server.address._tag === "TcpAddress" ? server.address.hostname : undefined
      const api = HttpApiBuilder.api(RuntimeApi).pipe(
        Layer.provide([
          RuntimeHandlers,
          WorkersHandlers({ maxBodyBytes, pingMs: options.ssePingMs ?? DEFAULT_PING_MS }),
          HealthHandlers
        ]),
        Layer.provide(AuthorizationLive(token))
      )
      const guard = makeGuard({
        token,
        maxBodyBytes,
        hosts: makeHostPolicy(allowedHosts, bound),
        methodsOf: routeMethods()
      })
      return HttpApiBuilder.serve(options.logRequests === true ? logRequests : undefined).pipe(
        options.tracing === true ? identity : HttpMiddleware.withTracerDisabledWhen(() => true),
        Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: OPENAPI_PATH })),
        Layer.provide(HttpApiBuilder.middleware(RuntimeApi, guard)),
        Layer.provide(api)
      )
    })
  )
}

/**
 * The global middleware in front of every route. It runs before routing, so
 * docs/rest.md's precedence holds: InvalidInput for a request with more than
 * one Host (malformed), then Forbidden (a Host that is not allowed, or a
 * browser), then Unauthorized (unknown paths included), then RouteNotFound
 * and MethodNotAllowed, then what the endpoint itself answers. It also turns
 * whatever the platform would answer on its own (`HttpApiDecodeError`, a bare
 * 404, a 500) into typed JSON bodies.
 */
import { HttpApiDecodeError } from "@effect/platform/HttpApiError"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { createHash, timingSafeEqual } from "node:crypto"
import { InvalidInput, Unavailable } from "../Errors.js"
import { RETRY_AFTER_MS } from "../RuntimeOptions.js"
import { invalidInputOf, toValidationIssues } from "../Validation.js"
import { Forbidden, InternalError, MethodNotAllowed, RouteNotFound, Unauthorized } from "./Errors.js"
import { wasHandled } from "./Handled.js"
import { hostAllowed, hostHeaderCount, type HostPolicy } from "./Hosts.js"

export interface GuardOptions {
  /** When set, every path but the probes needs `Authorization: Bearer <token>`. */
  readonly token: Option.Option<Redacted.Redacted<string>>
  readonly maxBodyBytes: number
  readonly hosts: HostPolicy
  /** The methods each known path takes, for 405 and `Allow`. */
  readonly methodsOf: (path: string) => ReadonlyArray<string>
}

const PUBLIC_PATHS = new Set(["/healthz", "/readyz"])
const BEARER = /^bearer +/i

const sha256 = (text: string): Buffer => createHash("sha256").update(text, "utf8").digest()

/**
 * Compares the SHA-256 digests of both sides with `timingSafeEqual`: equal
 * lengths always, so the time tells neither where they differ nor how long
 * the token is.
 */
export const constantTimeEquals = (given: string, expected: string): boolean =>
  timingSafeEqual(sha256(given), sha256(expected))

/** The bearer token of an `Authorization` header, or "" (missing or another scheme). */
export const bearerOf = (header: string | undefined): string =>
  header !== undefined && BEARER.test(header) ? header.replace(BEARER, "").trim() : ""

export const tokenMatches = (given: string, token: Redacted.Redacted<string>): boolean =>
  given !== "" && constantTimeEquals(given, Redacted.value(token))

export const pathOf = (url: string) => {
  const query = url.indexOf("?")
  return query === -1 ? url : url.slice(0, query)
}

/** `Retry-After` in whole seconds, at least 1. */
export const retryAfterSeconds = (error: Unavailable) =>
  String(Math.max(1, Math.ceil((error.retryAfterMs ?? RETRY_AFTER_MS) / 1000)))

// The guard's own answers are written here, not by the API's error encoder:
// unknown paths and methods are not operations of the API.
const GuardError = Schema.Union(Forbidden, Unauthorized, RouteNotFound, MethodNotAllowed, InternalError)
const encodeGuardError = Schema.encodeSync(GuardError)

const answer = (
  error: typeof GuardError.Type,
  status: number,
  headers: Record<string, string> = {}
): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  Effect.succeed(HttpServerResponse.unsafeJson(encodeGuardError(error), { status, headers }))

const unauthorized = () =>
  answer(new Unauthorized({ message: "The bearer token is missing or wrong." }), 401, {
    "www-authenticate": "Bearer"
  })

const routeNotFound = (method: string, path: string) =>
  answer(new RouteNotFound({ message: `There is no route for ${method} ${path}.`, method, path }), 404)

/** What a request needs for the guard's checks: its path (no query), its headers, and its count of Host headers if known. */
export interface GuardView {
  readonly path: string
  readonly header: (name: string) => string | undefined
  readonly hostHeaders: number | undefined
}

/** Why the guard refuses a request, in docs/rest.md's order of precedence. */
export type Refusal =
  | { readonly _tag: "HostHeaders"; readonly count: number }
  | { readonly _tag: "Host" }
  | { readonly _tag: "Browser" }
  | { readonly _tag: "Token" }
  | { readonly _tag: "TrailingSlash" }

/**
 * The guard's checks as a plain function: undefined when the request goes
 * on to routing. The Effect guard answers each refusal; the fast lane
 * (FastLane.ts) answers only what this lets through.
 */
export const makeRefusalOf = (
  options: Pick<GuardOptions, "token" | "hosts">
): (view: GuardView) => Refusal | undefined => {
  const token = Option.getOrUndefined(options.token)
  return ({ header, hostHeaders, path }) => {
    // Node keeps the first of several Host headers: the check would read one, a proxy another.
    if (hostHeaders !== undefined && hostHeaders > 1) return { _tag: "HostHeaders", count: hostHeaders }
    if (!hostAllowed(options.hosts, header("host"))) return { _tag: "Host" }
    if (
      header("origin") !== undefined || header("sec-fetch-site") !== undefined ||
      header("sec-fetch-dest") !== undefined
    ) return { _tag: "Browser" }
    if (token !== undefined && !PUBLIC_PATHS.has(path) && !tokenMatches(bearerOf(header("authorization")), token)) {
      return { _tag: "Token" }
    }
    // Paths are exact: the router would take "/healthz/" for "/healthz".
    if (path.length > 1 && path.endsWith("/")) return { _tag: "TrailingSlash" }
    return undefined
  }
}

export const makeGuard = (options: GuardOptions) => {
  const bodyLimit = Option.some(options.maxBodyBytes)

  const notFound = (method: string, path: string) => {
    const allow = options.methodsOf(path)
    return allow.length === 0
      ? routeNotFound(method, path)
      : answer(
        new MethodNotAllowed({
          message: `${path} does not take ${method}; it takes ${allow.join(", ")}.`,
          method,
          path,
          allow
        }),
        405,
        { allow: allow.join(", ") }
      )
  }

  const translate = (request: HttpServerRequest.HttpServerRequest) =>
  (
    cause: Cause.Cause<never>
  ): Effect.Effect<HttpServerResponse.HttpServerResponse, InvalidInput> => {
    if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
    const error = Cause.squash(cause)
    if (error instanceof HttpServerError.RouteNotFound) return notFound(request.method, pathOf(request.url))
    if (error instanceof HttpApiDecodeError) {
      // After the handler started, the answer did not encode: the server's failure, not the client's.
      if (wasHandled(request)) {
        return Effect.zipRight(
          Effect.logError("an answer could not be encoded", error.message),
          answer(new InternalError({ message: "Internal error; the runtime logged it." }), 500)
        )
      }
      return Effect.fail(invalidInputOf(toValidationIssues(error.issues), "request"))
    }
    if (error instanceof Unauthorized) return unauthorized()
    if (Option.isSome(Cause.failureOption(cause))) {
      // A typed error of the API: encoded by the API's error schema.
      if (error instanceof Unavailable) {
        return Effect.zipRight(
          HttpApp.appendPreResponseHandler((_request, response) =>
            Effect.succeed(
              response.status === 503
                ? HttpServerResponse.setHeader(response, "retry-after", retryAfterSeconds(error))
                : response
            )
          ),
          Effect.failCause(cause)
        )
      }
      return Effect.failCause(cause)
    }
    return Effect.zipRight(
      Effect.logError("defect while serving a request", cause),
      answer(new InternalError({ message: "Internal error; the runtime logged it." }), 500)
    )
  }

  const refusalOf = makeRefusalOf(options)

  return (app: HttpApp.Default): HttpApp.Default<InvalidInput> =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const headers = request.headers
      const path = pathOf(request.url)
      const refusal = refusalOf({
        path,
        header: (name) => headers[name],
        hostHeaders: hostHeaderCount(request.source)
      })
      if (refusal === undefined) {
        return app.pipe(
          HttpIncomingMessage.withMaxBodySize(bodyLimit),
          Effect.catchAllCause(translate(request))
        )
      }
      switch (refusal._tag) {
        case "HostHeaders":
          return Effect.fail(
            new InvalidInput({
              message: `The request has ${refusal.count} Host headers; it must have exactly one.`
            })
          )
        case "Host":
          return answer(
            new Forbidden({
              message: `The Host ${JSON.stringify(headers["host"] ?? "")} is not allowed; see --allowed-hosts.`
            }),
            403
          )
        case "Browser":
          return answer(
            new Forbidden({ message: "Browsers cannot reach a Runtime; call it from your Backend." }),
            403
          )
        case "Token":
          return unauthorized()
        case "TrailingSlash":
          return routeNotFound(request.method, path)
      }
    })
}

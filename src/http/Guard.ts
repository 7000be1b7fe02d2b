/**
 * The global middleware in front of every route. It runs before routing, so
 * docs/rest.md's precedence holds: Forbidden, then Unauthorized (unknown paths
 * included), then RouteNotFound, then PayloadTooLarge, then InvalidInput.
 * It also turns whatever the platform would answer on its own (an empty 400
 * for bad JSON, `HttpApiDecodeError`, a bare 404, a 500) into typed bodies.
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

import { InvalidInput, Unavailable } from "../Errors.js"
import { RETRY_AFTER_MS } from "../RuntimeOptions.js"
import { toValidationIssue } from "../Validation.js"
import { Forbidden, InternalError, PayloadTooLarge, RouteNotFound, Unauthorized } from "./Errors.js"

export interface GuardOptions {
  /** When set, every path but the probes needs `Authorization: Bearer <token>`. */
  readonly token: Option.Option<Redacted.Redacted<string>>
  readonly maxBodyBytes: number
}

const PUBLIC_PATHS = new Set(["/healthz", "/readyz"])
const BEARER = /^bearer +/i

/** Compares in time that depends on the lengths only, never on where they differ. */
export const constantTimeEquals = (given: string, expected: string): boolean => {
  let difference = given.length ^ expected.length
  for (let i = 0; i < expected.length; i++) {
    difference |= (given.charCodeAt(i % Math.max(given.length, 1)) || 0) ^ expected.charCodeAt(i)
  }
  return difference === 0
}

/** The bearer token of an `Authorization` header, or "" (missing or another scheme). */
export const bearerOf = (header: string | undefined): string =>
  header !== undefined && BEARER.test(header) ? header.replace(BEARER, "").trim() : ""

export const tokenMatches = (given: string, token: Redacted.Redacted<string>): boolean =>
  given !== "" && constantTimeEquals(given, Redacted.value(token))

const pathOf = (url: string) => {
  const query = url.indexOf("?")
  return query === -1 ? url : url.slice(0, query)
}

const isBrowser = (headers: Readonly<Record<string, string | undefined>>) =>
  headers["origin"] !== undefined || headers["sec-fetch-site"] !== undefined ||
  headers["sec-fetch-dest"] !== undefined

const retryAfter = (error: Unavailable) =>
  HttpServerResponse.setHeader(
    "retry-after",
    String(Math.max(1, Math.ceil((error.retryAfterMs ?? RETRY_AFTER_MS) / 1000)))
  )

type GuardError = Forbidden | Unauthorized | RouteNotFound | PayloadTooLarge | InvalidInput | InternalError

export const makeGuard = (options: GuardOptions) => {
  const bodyLimit = Option.some(options.maxBodyBytes)

  const translate = (request: HttpServerRequest.HttpServerRequest) =>
  (
    cause: Cause.Cause<never>
  ): Effect.Effect<HttpServerResponse.HttpServerResponse, GuardError> => {
    if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
    const error = Cause.squash(cause)
    if (error instanceof HttpServerError.RouteNotFound) {
      const path = pathOf(request.url)
      return Effect.fail(
        new RouteNotFound({ message: `no route for ${request.method} ${path}`, method: request.method, path })
      )
    }
    if (error instanceof HttpApiDecodeError) {
      const issues = error.issues.map(toValidationIssue)
      return Effect.fail(new InvalidInput({ message: `invalid request: ${error.message}`, issues }))
    }
    if (error instanceof HttpServerError.RequestError) {
      // The body reader stops at the limit with this message (platform-node).
      const tooLarge = error.cause instanceof Error && error.cause.message.includes("maxBytes")
      return Effect.fail(
        tooLarge
          ? new PayloadTooLarge({
            message: `request body exceeds ${options.maxBodyBytes} bytes`,
            limitBytes: options.maxBodyBytes
          })
          : new InvalidInput({ message: "request body is not valid JSON" })
      )
    }
    if (Option.isSome(Cause.failureOption(cause))) {
      // A typed error of the API: encoded by the API's error schema.
      if (error instanceof Unavailable) {
        return Effect.zipRight(
          HttpApp.appendPreResponseHandler((_request, response) =>
            Effect.succeed(response.status === 503 ? retryAfter(error)(response) : response)
          ),
          Effect.failCause(cause)
        )
      }
      return Effect.failCause(cause)
    }
    return Effect.zipRight(
      Effect.logError("defect while serving a request", cause),
      Effect.fail(new InternalError({ message: "internal error; the runtime logged it" }))
    )
  }

  return (app: HttpApp.Default): HttpApp.Default<GuardError> =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const headers = request.headers
      if (isBrowser(headers)) {
        return Effect.fail(
          new Forbidden({ message: "browsers cannot reach a Runtime; call it from your Backend" })
        )
      }
      if (
        Option.isSome(options.token) && !PUBLIC_PATHS.has(pathOf(request.url)) &&
        !tokenMatches(bearerOf(headers["authorization"]), options.token.value)
      ) {
        return Effect.fail(new Unauthorized({ message: "missing or wrong bearer token" }))
      }
      return app.pipe(
        HttpIncomingMessage.withMaxBodySize(bodyLimit),
        Effect.catchAllCause(translate(request))
      )
    })
}

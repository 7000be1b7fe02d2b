/**
 * Several URLs of one Runtime (the runners of a cluster) behind one
 * `HttpClient` (docs/configuration.md, "Several URLs"). A request goes to
 * the URL that last answered; on a refused connection or a 503 it goes on
 * to the next, and once every URL has been tried, again after the shortest
 * `Retry-After` of that round (bounded). A request that may have reached a
 * runtime before its connection broke is sent again only when it reads
 * (GET): an input sent twice would be recorded twice. With one URL a
 * request is sent once, as it always was.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import type * as Arr from "effect/Array"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Predicate from "effect/Predicate"
import { RETRY_AFTER_MS } from "../RuntimeOptions.js"

export interface FailoverOptions {
  /** How many times one request may go round every URL (default 3; with one URL, always 1). */
  readonly rounds?: number | undefined
  /** The longest wait between two rounds, whatever a `Retry-After` asks (default 2 seconds). */
  readonly maxWait?: Duration.DurationInput | undefined
}

const DEFAULT_ROUNDS = 3
const DEFAULT_MAX_WAIT = Duration.seconds(2)
/** The wait after a round in which no runtime answered (every connection refused or broken). */
const NO_ANSWER_WAIT_MS = 250
const liveClock = Clock.make()

/**
 * Codes of a connection that never opened: the request cannot have reached a
 * runtime. A reset or a socket closed after the request was written may have.
 */
const NOT_CONNECTED = new Set([
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
  "ENOTFOUND",
  "EAI_AGAIN",
  "UND_ERR_CONNECT_TIMEOUT"
])

/** The `code`s of an error, its causes and its aggregated errors (fetch wraps the socket's error). */
const codesOf = (error: unknown, depth = 0): ReadonlyArray<string> => {
  if (depth > 4 || !Predicate.isObject(error)) return []
  const own = Predicate.hasProperty(error, "code") && typeof error.code === "string" ? [error.code] : []
  const aggregated = Predicate.hasProperty(error, "errors") && Array.isArray(error.errors)
    ? error.errors.flatMap((inner: unknown) => codesOf(inner, depth + 1))
    : []
  const cause = Predicate.hasProperty(error, "cause") ? codesOf(error.cause, depth + 1) : []
  return [...own, ...aggregated, ...cause]
}

const isTransport = (error: HttpClientError.HttpClientError) =>
  error._tag === "RequestError" && error.reason === "Transport"

/** No connection was made: sending the request elsewhere cannot make it happen twice. */
const notConnected = (error: HttpClientError.HttpClientError) =>
  isTransport(error) && codesOf(error.cause).some((code) => NOT_CONNECTED.has(code))

/** Sent again after a broken connection only if it changes nothing. */
const repeatable = (request: HttpClientRequest.HttpClientRequest) =>
  request.method === "GET" || request.method === "HEAD"

/** `Retry-After` (seconds or an HTTP date) in ms; undefined when absent or unreadable. */
const retryAfterMs = (header: string | undefined, now: number): number | undefined => {
  if (header === undefined || header.trim() === "") return undefined
  const seconds = Number(header)
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000)
  const date = Date.parse(header)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

export interface Failover {
  /** The URLs, in the order given. */
  readonly urls: Arr.NonEmptyReadonlyArray<string>
  /** `http` sending each request, whose URL is a path (`/v1/...`), to the URLs in turn. */
  readonly client: (http: HttpClient.HttpClient) => HttpClient.HttpClient
}

export const makeFailover = (urls: Arr.NonEmptyReadonlyArray<string>, options: FailoverOptions = {}): Failover => {
  const attempts = Math.max(1, Math.floor(options.rounds ?? DEFAULT_ROUNDS)) * urls.length
  const maxWaitMs = Duration.toMillis(options.maxWait ?? DEFAULT_MAX_WAIT)
  const urlAt = (index: number) => urls[index % urls.length] ?? urls[0]
  // Where the next request starts: the URL that last answered, or the one after a URL that broke.
  let preferred = 0

  const send = (
    http: HttpClient.HttpClient,
    request: HttpClientRequest.HttpClientRequest
  ): Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError> =>
    Effect.gen(function*() {
      const start = preferred
      // The shortest wait any URL of this round asked for.
      let waitMs = Infinity
      for (let attempt = 0;; attempt++) {
        const index = (start + attempt) % urls.length
        const result = yield* Effect.either(http.execute(HttpClientRequest.prependUrl(request, urlAt(index))))
        if (Either.isRight(result) && result.right.status !== 503) {
          preferred = index
          return result.right
        }
        if (Either.isLeft(result) && !notConnected(result.left) && !(isTransport(result.left) && repeatable(request))) {
          // Not sent twice; the next request starts at the next URL.
          if (isTransport(result.left)) preferred = (index + 1) % urls.length
          return yield* result
        }
        // Out of attempts: the last answer (a 503) or connection error is the caller's.
        if (attempt + 1 === attempts) return yield* result
        if (Either.isRight(result)) {
          // Read now (the response keeps it) so that its connection is free.
          yield* Effect.ignore(result.right.arrayBuffer)
          const now = yield* Clock.currentTimeMillis
          waitMs = Math.min(waitMs, retryAfterMs(result.right.headers["retry-after"], now) ?? RETRY_AFTER_MS)
        } else {
          waitMs = Math.min(waitMs, NO_ANSWER_WAIT_MS)
        }
        if ((attempt + 1) % urls.length === 0) {
          yield* Effect.sleep(Duration.millis(Math.min(waitMs, maxWaitMs)))
          waitMs = Infinity
        }
      }
    }).pipe(
      // The network runs in real time, also under a test clock.
      Effect.withClock(liveClock)
    )

  const client = (http: HttpClient.HttpClient): HttpClient.HttpClient =>
    urls.length === 1
      ? HttpClient.mapRequest(http, HttpClientRequest.prependUrl(urls[0]))
      : HttpClient.makeWith(
        (preprocessed: Effect.Effect<HttpClientRequest.HttpClientRequest, HttpClientError.HttpClientError>) =>
          Effect.flatMap(preprocessed, (request) => send(http, request)),
        Effect.succeed
      )

  return { urls, client }
}

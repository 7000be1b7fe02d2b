/**
 * The `Runtime` service over HTTP, derived from `RuntimeApi`. A Backend swaps
 * `RuntimeLive()` for `RuntimeHttpClientLive(...)` without changing code.
 * Declared errors come back as the same classes. What a retry may fix (a
 * refused connection, a timeout, 503, an undeclared 5xx) is `Unavailable`;
 * what it cannot (a wrong token, baseUrl or Host: 401, 403, an unknown
 * route, 405, 415) is a defect, `RuntimeMisconfigured`, so that it is loud.
 * Given several URLs it fails over between them (ClientFailover.ts).
 */
import * as HttpApiClient from "@effect/platform/HttpApiClient"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpTraceContext from "@effect/platform/HttpTraceContext"
import * as Arr from "effect/Array"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { Busy, InvalidInput, Unavailable, UnknownWorker, Unsupported } from "../Errors.js"
import { Runtime, type RuntimeService } from "../Runtime.js"
import { RETRY_AFTER_MS } from "../RuntimeOptions.js"
import { headerAttributes, withoutQuery } from "../Tracing.js"
import { cancelOf, reasonOf, validate } from "../Validation.js"
import { RuntimeApi } from "./Api.js"
import { followOverHttp, type ReconnectOptions } from "./ClientEvents.js"
import { type FailoverOptions, makeFailover } from "./ClientFailover.js"
import { PayloadTooLarge, RuntimeMisconfigured } from "./Errors.js"

export interface RuntimeHttpClientOptions {
  /**
   * Where the Runtime listens: its root, e.g. `http://127.0.0.1:8787` (no
   * `/v1`); or several roots (the runners of a cluster), tried in turn on a
   * refused connection or a 503, the one that last answered first.
   */
  readonly baseUrl: string | URL | Arr.NonEmptyReadonlyArray<string | URL>
  /** The Runtime's bearer token, when it has one. */
  readonly token?: Redacted.Redacted<string> | string | undefined
  /** How long one request may take before it is `Unavailable` (default 30 seconds). */
  readonly requestTimeout?: Duration.DurationInput | undefined
  /** How `events` reconnects after a dropped connection, a 503 or a refused connection. */
  readonly reconnect?: ReconnectOptions | undefined
  /** With several URLs: how often a call goes round them, and the longest wait between rounds. */
  readonly failover?: FailoverOptions | undefined
  /**
   * How often `create` is sent again after `Unavailable` (a lost answer, a
   * timeout), with the same idempotency key so that it makes one Worker
   * (default 3).
   */
  readonly createRetries?: number | undefined
}

const DEFAULT_TIMEOUT = Duration.seconds(30)

/** A fresh idempotency key (the pattern's characters only). */
const randomKey = () => `client-${globalThis.crypto.randomUUID()}`
const liveClock = Clock.make()

const describe = (error: unknown): string =>
  Predicate.hasProperty(error, "message") && typeof error.message === "string"
    ? error.message
    : String(error)

const unavailable = (error: unknown) =>
  new Unavailable({
    message: `The runtime is unreachable or answered unexpectedly: ${describe(error)}`,
    retryAfterMs: RETRY_AFTER_MS
  })

/** What to check for each answer that only a configuration change fixes. */
const misconfiguration = (
  response: HttpClientResponse.HttpClientResponse,
  tag: string | undefined,
  urls: ReadonlyArray<string>
): RuntimeMisconfigured | undefined => {
  const baseUrl = urls.find((url) => response.request.url.startsWith(url)) ?? urls.join(", ")
  const where = `${response.request.method} ${response.request.url}`
  const at = `The runtime at ${baseUrl} answered ${response.status} to ${where}`
  switch (response.status) {
    case 401:
      return new RuntimeMisconfigured({
        status: 401,
        message: `${at}: the token is missing or wrong. Check the client's token against the runtime's --token-file.`
      })
    case 403:
      return new RuntimeMisconfigured({
        status: 403,
        message: `${at}: it refused the request's Host or browser headers. Check the runtime's --allowed-hosts ` +
          "for the name in baseUrl, and call it from a Backend, never a browser."
      })
    case 404:
      return tag === "RouteNotFound"
        ? new RuntimeMisconfigured({
          status: 404,
          message: `${at}: no such route. Check baseUrl: it is the runtime's root (e.g. http://host:8787), ` +
            "without a path such as /v1."
        })
        : undefined
    case 405:
    case 415:
      return new RuntimeMisconfigured({
        status: response.status,
        message: `${at}: the runtime does not serve this operation as sent. Check that the client and the ` +
          "runtime are the same version of worker-runtime."
      })
    default:
      return undefined
  }
}

/**
 * The `_tag` of a JSON error body, if it has one. Read through `arrayBuffer`,
 * which the response caches and the client's decoder reads too.
 */
const tagOf = (response: HttpClientResponse.HttpClientResponse) =>
  response.arrayBuffer.pipe(
    Effect.map((bytes) => {
      try {
        const body: unknown = JSON.parse(new TextDecoder().decode(bytes))
        return Predicate.hasProperty(body, "_tag") && typeof body._tag === "string" ? body._tag : undefined
      } catch {
        return undefined
      }
    }),
    Effect.orElseSucceed(() => undefined)
  )

/** The body limit is the transport's side of maxInputBytes: the answer embedded callers get. */
const bodyLimitAsInvalidInput = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.catchIf(
    effect,
    (error): error is Extract<E, PayloadTooLarge> => error instanceof PayloadTooLarge,
    (error) => Effect.fail(new InvalidInput({ message: error.message }))
  )

/**
 * A span per call, in place of the platform client's, which records the
 * query string with its values (`url.full`, `url.query`) and every header
 * but a few (the token as `<redacted>`). This one records the method, the
 * server, the URL without its query, the status and the headers in
 * `RECORDED_HEADERS` (docs/security.md), and sends the W3C `traceparent` as
 * the platform's does; `HttpClient.withTracerDisabledWhen` and
 * `withTracerPropagation` still apply.
 */
const traceRequests = (http: HttpClient.HttpClient): HttpClient.HttpClient => {
  const untraced = HttpClient.withTracerDisabledWhen(http, () => true)
  return HttpClient.makeWith(
    (preprocessed: Effect.Effect<HttpClientRequest.HttpClientRequest, HttpClientError.HttpClientError>) =>
      Effect.flatMap(preprocessed, (request) =>
        Effect.flatMap(
          Effect.all([
            FiberRef.get(FiberRef.currentTracerEnabled),
            FiberRef.get(HttpClient.currentTracerDisabledWhen),
            FiberRef.get(HttpClient.currentTracerPropagation)
          ]),
          ([enabled, disabledWhen, propagate]) => {
            if (!enabled || disabledWhen(request)) return untraced.execute(request)
            const url = URL.canParse(request.url) ? new URL(withoutQuery(request.url)) : undefined
            return Effect.useSpan(`http.client ${request.method}`, {
              kind: "client",
              captureStackTrace: false,
              attributes: {
                "http.request.method": request.method,
                ...(url === undefined ? { "url.path": withoutQuery(request.url) } : {
                  "server.address": url.hostname,
                  ...(url.port === "" ? {} : { "server.port": Number(url.port) }),
                  "url.full": `${url.origin}${url.pathname}`,
                  "url.path": url.pathname,
                  "url.scheme": url.protocol.slice(0, -1)
                }),
                ...headerAttributes("request", request.headers)
              }
            }, (span) =>
              untraced.execute(
                propagate ? HttpClientRequest.setHeaders(request, HttpTraceContext.toHeaders(span)) : request
              ).pipe(
                Effect.withParentSpan(span),
                Effect.tap((response) =>
                  Effect.sync(() => {
                    span.attribute("http.response.status_code", response.status)
                    for (const [name, value] of Object.entries(headerAttributes("response", response.headers))) {
                      span.attribute(name, value)
                    }
                  })
                )
              ))
          }
        )),
    (request: HttpClientRequest.HttpClientRequest) => Effect.succeed(request)
  )
}

export const makeRuntimeHttpClient = (
  options: RuntimeHttpClientOptions
): Effect.Effect<RuntimeService, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const token = options.token === undefined
      ? undefined
      : typeof options.token === "string"
      ? options.token
      : Redacted.value(options.token)
    const failover = makeFailover(
      typeof options.baseUrl === "string" || options.baseUrl instanceof URL
        ? [String(options.baseUrl)]
        : Arr.map(options.baseUrl, (url) => String(url)),
      options.failover
    )
    const notAnswered = (within: Duration.Duration) =>
      failover.urls.length === 1
        ? `The runtime at ${failover.urls[0]} did not answer within ${Duration.format(within)}.`
        : `No runtime at ${failover.urls.join(", ")} answered within ${Duration.format(within)}.`
    const timeout = Duration.decode(options.requestTimeout ?? DEFAULT_TIMEOUT)

    const checkConfiguration = HttpClient.transformResponse(
      Effect.tap((response: HttpClientResponse.HttpClientResponse) =>
        response.status < 400 || response.status >= 500
          ? Effect.void
          : Effect.flatMap(response.status === 404 ? tagOf(response) : Effect.succeed(undefined), (tag) => {
            const problem = misconfiguration(response, tag, failover.urls)
            return problem === undefined ? Effect.void : Effect.die(problem)
          })
      )
    )
    const transformClient = (http: HttpClient.HttpClient) =>
      checkConfiguration(
        failover.client(
          token === undefined
            ? traceRequests(http)
            : HttpClient.mapRequest(traceRequests(http), HttpClientRequest.bearerToken(token))
        )
      )
    // Requests name a path only; the failover client puts a URL in front of it.
    const client = yield* HttpApiClient.make(RuntimeApi, { transformClient })
    const follow = followOverHttp(transformClient(yield* HttpClient.HttpClient), "", timeout, options.reconnect)
    const createRetries = options.createRetries ?? 3

    /** Bounds the call in time and keeps the errors it declares; the rest is `Unavailable`. */
    const onlyWithin = <const Allowed extends ReadonlyArray<new(...args: never) => unknown>>(
      within: Duration.Duration,
      ...allowed: Allowed
    ) =>
    <A, E, R>(
      effect: Effect.Effect<A, E, R>
    ): Effect.Effect<A, InstanceType<Allowed[number]> | Unavailable, R> => {
      const isAllowed = (error: unknown): error is InstanceType<Allowed[number]> =>
        allowed.some((constructor) => error instanceof constructor)
      return effect.pipe(
        Effect.timeoutFail({
          duration: within,
          onTimeout: () =>
            new Unavailable({
              message: notAnswered(within),
              retryAfterMs: RETRY_AFTER_MS
            })
        }),
        // The network runs in real time, also under a test clock.
        Effect.withClock(liveClock),
        Effect.catchAll((error) =>
          Effect.fail(isAllowed(error) ? error : error instanceof Unavailable ? error : unavailable(error))
        )
      )
    }

    const only = <const Allowed extends ReadonlyArray<new(...args: never) => unknown>>(...allowed: Allowed) =>
      onlyWithin(timeout, ...allowed)

    const runtime: RuntimeService = {
      info: client.runtime.info().pipe(only()),
      // Requests are checked here first, with the server's own schemas, so a
      // malformed one is InvalidInput (as embedded) rather than an encode failure.
      list: (query) =>
        validate.list(query).pipe(
          Effect.flatMap(({ metadata, ...rest }) =>
            client.workers.list({
              urlParams: {
                ...rest,
                ...Object.fromEntries(
                  Object.entries(metadata ?? {}).map(([key, value]): [`metadata.${string}`, string] => [
                    `metadata.${key}`,
                    value
                  ])
                )
              }
            })
          ),
          only(InvalidInput)
        ),
      get: (workerId) => client.workers.get({ path: { workerId } }).pipe(only(UnknownWorker)),
      create: (request) =>
        validate.create(request).pipe(
          // A key of our own when the caller gave none: a create sent again
          // after a lost answer then makes no second Worker.
          Effect.map((payload) =>
            payload.idempotencyKey === undefined ? { ...payload, idempotencyKey: randomKey() } : payload
          ),
          Effect.flatMap((payload) =>
            client.workers.create({ payload, headers: {} }).pipe(
              bodyLimitAsInvalidInput,
              only(InvalidInput),
              Effect.retry({
                schedule: Schedule.exponential("100 millis").pipe(Schedule.intersect(Schedule.recurs(createRetries))),
                while: (error) => error instanceof Unavailable
              }),
              Effect.withClock(liveClock)
            )
          )
        ),
      input: (workerId, input) =>
        validate.input(input).pipe(
          Effect.flatMap((payload) => client.workers.input({ path: { workerId }, payload })),
          bodyLimitAsInvalidInput,
          only(UnknownWorker, Busy, InvalidInput, Unsupported)
        ),
      cancel: (workerId, request) =>
        cancelOf(request).pipe(
          Effect.flatMap(({ clearQueue, reason }) =>
            client.workers.cancel({
              path: { workerId },
              payload: { ...(reason === undefined ? {} : { reason }), ...(clearQueue ? { clearQueue } : {}) }
            })
          ),
          only(UnknownWorker, Unsupported)
        ),
      stop: (workerId, request) =>
        reasonOf(request).pipe(
          Effect.flatMap((reason) =>
            client.workers.stop({ path: { workerId }, payload: reason === undefined ? {} : { reason } })
          ),
          only(UnknownWorker)
        ),
      transcript: (workerId, query) =>
        validate.transcript(query).pipe(
          Effect.flatMap((urlParams) => client.workers.transcript({ path: { workerId }, urlParams })),
          only(UnknownWorker, InvalidInput)
        ),
      turn: (workerId, turn, query) =>
        validate.turn(query ?? {}).pipe(
          Effect.flatMap((urlParams) =>
            Number.isInteger(turn) && turn >= 1
              ? client.workers.turn({ path: { workerId, turn }, urlParams }).pipe(
                // The long poll takes its wait on top of the request's own time.
                onlyWithin(Duration.sum(timeout, Duration.millis(urlParams.waitMs ?? 0)), UnknownWorker, InvalidInput)
              )
              : Effect.fail(new InvalidInput({ message: `There is no turn ${turn}; turns are numbered from 1.` }))
          )
        ),
      events: (workerId, query) =>
        Stream.unwrap(Effect.map(validate.events(query ?? {}), ({ after = 0 }) => follow(workerId, after))),
      delete: (workerId) => client.workers.delete({ path: { workerId } }).pipe(only(UnknownWorker, Unsupported))
    }
    return runtime
  })

/** The `Runtime` service over HTTP; needs an `HttpClient` (e.g. `FetchHttpClient.layer`). */
export const RuntimeHttpClientLive = (
  options: RuntimeHttpClientOptions
): Layer.Layer<Runtime, never, HttpClient.HttpClient> => Layer.effect(Runtime, makeRuntimeHttpClient(options))

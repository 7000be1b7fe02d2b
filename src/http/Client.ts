/**
 * `RuntimeHttpClient`: the `Runtime` service over HTTP, derived from
 * `RuntimeApi`. A Backend swaps `RuntimeLive()` for this layer without
 * changing code. Declared errors come back as the same classes; connection
 * failures and undeclared responses become `Unavailable`.
 */
import * as HttpApiClient from "@effect/platform/HttpApiClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"

import { Busy, InvalidInput, Unavailable, UnknownWorker, Unsupported } from "../Errors.js"
import { Runtime, type RuntimeService } from "../Runtime.js"
import { RETRY_AFTER_MS } from "../RuntimeOptions.js"
import { reasonOf, validate } from "../Validation.js"
import { RuntimeApi } from "./Api.js"

export interface RuntimeHttpClientOptions {
  /** Where the Runtime listens, e.g. `http://127.0.0.1:8787`. */
  readonly baseUrl: string | URL
  /** The Runtime's bearer token, when it has one. */
  readonly token?: Redacted.Redacted<string> | string | undefined
}

const describe = (error: unknown): string =>
  Predicate.hasProperty(error, "message") && typeof error.message === "string"
    ? error.message
    : String(error)

const unavailable = (error: unknown) =>
  new Unavailable({
    message: `runtime unreachable or answered unexpectedly: ${describe(error)}`,
    retryAfterMs: RETRY_AFTER_MS
  })

/** Keeps the errors a method declares; everything else becomes `Unavailable`. */
const only = <const Allowed extends ReadonlyArray<new(...args: never) => unknown>>(...allowed: Allowed) =>
<A, E, R>(
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, InstanceType<Allowed[number]> | Unavailable, R> => {
  const isAllowed = (error: unknown): error is InstanceType<Allowed[number]> =>
    allowed.some((constructor) => error instanceof constructor)
  return Effect.catchAll(
    effect,
    (error) => Effect.fail(isAllowed(error) ? error : error instanceof Unavailable ? error : unavailable(error))
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
    const client = yield* HttpApiClient.make(RuntimeApi, {
      baseUrl: options.baseUrl,
      transformClient: token === undefined ? undefined : HttpClient.mapRequest(HttpClientRequest.bearerToken(token))
    })
    const runtime: RuntimeService = {
      info: client.runtime.info().pipe(only()),
      // Requests are checked here first, with the server's own schemas, so a
      // malformed one is InvalidInput (as embedded) rather than an encode failure.
      list: (query) =>
        validate.list(query).pipe(
          Effect.flatMap((urlParams) => client.workers.list({ urlParams })),
          only(InvalidInput)
        ),
      get: (workerId) => client.workers.get({ path: { workerId } }).pipe(only(UnknownWorker)),
      create: (request) =>
        validate.create(request).pipe(
          Effect.flatMap((payload) => client.workers.create({ payload })),
          only(InvalidInput)
        ),
      input: (workerId, input) =>
        validate.input(input).pipe(
          Effect.flatMap((payload) => client.workers.input({ path: { workerId }, payload })),
          only(UnknownWorker, Busy, InvalidInput, Unsupported)
        ),
      cancel: (workerId, request) =>
        reasonOf(request).pipe(
          Effect.flatMap((reason) =>
            client.workers.cancel({ path: { workerId }, payload: reason === undefined ? {} : { reason } })
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
        )
    }
    return runtime
  })

/** The `Runtime` service over HTTP; needs an `HttpClient` (e.g. `FetchHttpClient.layer`). */
export const RuntimeHttpClientLive = (
  options: RuntimeHttpClientOptions
): Layer.Layer<Runtime, never, HttpClient.HttpClient> => Layer.effect(Runtime, makeRuntimeHttpClient(options))

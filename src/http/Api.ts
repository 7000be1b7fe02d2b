/**
 * `RuntimeApi`: the REST contract of docs/rest.md as an `HttpApi`. The server
 * (`ApiLive.ts`, `Server.ts`) implements it and `Client.ts` derives the client
 * from it; nothing here knows how Workers behave.
 *
 * Browsers never talk to a Runtime: Browser -> Backend -> Runtime. The server
 * refuses any request that looks like it comes from a browser.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as OpenApi from "@effect/platform/OpenApi"
import * as Schema from "effect/Schema"

import {
  CancelRequest,
  CancelResult,
  CreateWorker,
  InputAccepted,
  PageLimit,
  RuntimeInfo,
  StopRequest,
  TranscriptPage,
  Worker,
  WorkerId,
  WorkerInput,
  WorkerList,
  WorkerStatus
} from "../Domain.js"
import { Busy, InvalidInput, Unavailable, UnknownWorker, Unsupported } from "../Errors.js"
import { VERSION } from "../version.js"
import { Forbidden, InternalError, PayloadTooLarge, RouteNotFound, Unauthorized } from "./Errors.js"

/**
 * Every error's one HTTP status. The server encodes all errors through one
 * union, so a class given two statuses would answer with the wrong one.
 */
export const ErrorStatus = {
  InvalidInput: 400,
  Unauthorized: 401,
  Forbidden: 403,
  UnknownWorker: 404,
  RouteNotFound: 404,
  Busy: 409,
  PayloadTooLarge: 413,
  Unsupported: 422,
  InternalError: 500,
  Unavailable: 503
} as const

/** Bearer-token auth. The global guard enforces it on every path but the probes, unknown paths included. */
export class Authorization extends HttpApiMiddleware.Tag<Authorization>()("worker-runtime/Authorization", {
  failure: Unauthorized.annotations(HttpApiSchema.annotations({ status: ErrorStatus.Unauthorized })),
  security: { bearer: HttpApiSecurity.bearer }
}) {}

/**
 * Refuses a body whose declared length is over the limit before it is read,
 * after routing (RouteNotFound comes first). Reading past the limit instead
 * makes the platform destroy the connection, and the client sees no 413.
 */
export class BodyLimit extends HttpApiMiddleware.Tag<BodyLimit>()("worker-runtime/BodyLimit", {
  failure: PayloadTooLarge.annotations(HttpApiSchema.annotations({ status: ErrorStatus.PayloadTooLarge }))
}) {}

const workerId = HttpApiSchema.param("workerId", WorkerId)

const Limit = Schema.NumberFromString.pipe(Schema.compose(PageLimit))
const NonNegativeIntFromString = Schema.NumberFromString.pipe(Schema.compose(Schema.Int), Schema.nonNegative())

export const ListParams = Schema.Struct({
  status: Schema.optional(WorkerStatus),
  limit: Schema.optional(Limit),
  after: Schema.optional(Schema.String)
})

export const TranscriptParams = Schema.Struct({
  after: Schema.optional(NonNegativeIntFromString),
  limit: Schema.optional(Limit)
})

/** Cancel and stop take `{ reason? }` or no body at all (which arrives as `null`). */
const OptionalBody = <A, I>(schema: Schema.Schema<A, I>) => Schema.NullOr(schema)

export class RuntimeGroup extends HttpApiGroup.make("runtime")
  .add(HttpApiEndpoint.get("info", "/v1/runtime").addSuccess(RuntimeInfo))
  .middleware(Authorization)
  .middleware(BodyLimit)
{}

export class WorkersGroup extends HttpApiGroup.make("workers")
  .add(
    HttpApiEndpoint.get("list", "/v1/workers")
      .setUrlParams(ListParams)
      .addSuccess(WorkerList)
  )
  .add(
    HttpApiEndpoint.post("create", "/v1/workers")
      .setPayload(CreateWorker)
      .addSuccess(Worker, { status: 201 })
  )
  .add(
    HttpApiEndpoint.get("get")`/v1/workers/${workerId}`
      .addSuccess(Worker)
      .addError(UnknownWorker, { status: ErrorStatus.UnknownWorker })
  )
  .add(
    HttpApiEndpoint.post("input")`/v1/workers/${workerId}/input`
      .setPayload(WorkerInput)
      .addSuccess(InputAccepted, { status: 202 })
      .addError(UnknownWorker, { status: ErrorStatus.UnknownWorker })
      .addError(Busy, { status: ErrorStatus.Busy })
      .addError(Unsupported, { status: ErrorStatus.Unsupported })
  )
  .add(
    HttpApiEndpoint.post("cancel")`/v1/workers/${workerId}/cancel`
      .setPayload(OptionalBody(CancelRequest))
      .addSuccess(CancelResult)
      .addError(UnknownWorker, { status: ErrorStatus.UnknownWorker })
      .addError(Unsupported, { status: ErrorStatus.Unsupported })
  )
  .add(
    HttpApiEndpoint.post("stop")`/v1/workers/${workerId}/stop`
      .setPayload(OptionalBody(StopRequest))
      .addSuccess(Worker)
      .addError(UnknownWorker, { status: ErrorStatus.UnknownWorker })
  )
  .add(
    HttpApiEndpoint.get("transcript")`/v1/workers/${workerId}/transcript`
      .setUrlParams(TranscriptParams)
      .addSuccess(TranscriptPage)
      .addError(UnknownWorker, { status: ErrorStatus.UnknownWorker })
  )
  .middleware(Authorization)
  .middleware(BodyLimit)
{}

export const Healthy = Schema.Struct({ status: Schema.Literal("ok") }).annotations({ identifier: "Healthy" })
export const Ready = Schema.Struct({ status: Schema.Literal("ready") }).annotations({ identifier: "Ready" })

/** Probes: no token, so an orchestrator can ask without a secret. */
export class HealthGroup extends HttpApiGroup.make("health")
  .add(HttpApiEndpoint.get("healthz", "/healthz").addSuccess(Healthy))
  .add(HttpApiEndpoint.get("readyz", "/readyz").addSuccess(Ready))
  .middleware(BodyLimit)
{}

const DECODE_REF = "#/components/schemas/HttpApiDecodeError"

const isDecodeRef = (value: unknown): boolean =>
  typeof value === "object" && value !== null && "$ref" in value && value.$ref === DECODE_REF

const withoutDecodeRefs = (value: unknown): unknown => {
  if (Array.isArray(value)) {
    // Dedupe too: the auth middleware and the API both declare Unauthorized.
    const seen = new Set<string>()
    return value.filter((item) => !isDecodeRef(item)).map(withoutDecodeRefs).filter((item) => {
      const key = JSON.stringify(item)
      return seen.has(key) ? false : (seen.add(key), true)
    })
  }
  if (typeof value !== "object" || value === null) return value
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, withoutDecodeRefs(item)]))
}

/** Drops component schemas nothing refers to any more (the decode error's own). */
const pruneSchemas = (spec: Record<string, unknown>): Record<string, unknown> => {
  const components = spec.components
  if (typeof components !== "object" || components === null || !("schemas" in components)) return spec
  const schemas = components.schemas
  if (typeof schemas !== "object" || schemas === null) return spec
  let kept = Object.entries(schemas)
  for (;;) {
    const text = JSON.stringify({ ...spec, components: { ...components, schemas: Object.fromEntries(kept) } })
    const next = kept.filter(([name]) => text.includes(`"#/components/schemas/${name}"`))
    if (next.length === kept.length) break
    kept = next
  }
  return { ...spec, components: { ...components, schemas: Object.fromEntries(kept) } }
}

/**
 * `HttpApi.make` declares `HttpApiDecodeError` on every endpoint; the server
 * answers `InvalidInput` instead, so the document drops it.
 */
const replaceDecodeError = (spec: Record<string, unknown>): Record<string, unknown> =>
  pruneSchemas(Object.fromEntries(Object.entries(spec).map(([key, value]) => [key, withoutDecodeRefs(value)])))

export class RuntimeApi extends HttpApi.make("worker-runtime")
  .add(RuntimeGroup)
  .add(WorkersGroup)
  .add(HealthGroup)
  .addError(InvalidInput, { status: ErrorStatus.InvalidInput })
  .addError(Unauthorized, { status: ErrorStatus.Unauthorized })
  .addError(Forbidden, { status: ErrorStatus.Forbidden })
  .addError(RouteNotFound, { status: ErrorStatus.RouteNotFound })
  .addError(PayloadTooLarge, { status: ErrorStatus.PayloadTooLarge })
  .addError(InternalError, { status: ErrorStatus.InternalError })
  .addError(Unavailable, { status: ErrorStatus.Unavailable })
  .annotateContext(OpenApi.annotations({
    title: "worker-runtime",
    version: VERSION,
    description: "REST command API of a Worker Runtime. Backends only: browser requests are refused (403).",
    transform: replaceDecodeError
  }))
{}

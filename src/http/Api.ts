/**
 * `RuntimeApi`: the REST contract of docs/rest.md as an `HttpApi`. The server
 * (`ApiLive.ts`, `Server.ts`) implements it and `Client.ts` derives the client
 * from it; nothing here knows how Workers behave. `OpenApiDocument.ts` makes
 * the published OpenAPI document from it.
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
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import {
  CancelRequest,
  CancelResult,
  CreateWorker,
  InputAccepted,
  ListQuery,
  MAX_WAIT_MS,
  PageLimit,
  RuntimeInfo,
  SeqCursor,
  StopRequest,
  TranscriptPage,
  Turn,
  TurnQuery,
  Worker,
  WorkerId,
  WorkerInput,
  WorkerList
} from "../Domain.js"
import { Busy, InvalidInput, Unavailable, UnknownWorker, Unsupported } from "../Errors.js"
import { DEFAULT_PAGE, MAX_PAGE } from "../RuntimeOptions.js"
import { VERSION } from "../version.js"
import { Forbidden, InternalError, PayloadTooLarge, Unauthorized, UnsupportedMediaType } from "./Errors.js"
import { documentTransform } from "./OpenApiDocument.js"

/**
 * Every error's one HTTP status. The server encodes all errors through one
 * union, so a class given two statuses would answer with the wrong one.
 */

/** The status of an accepted input (ApiLive.ts writes the answer itself). */
export const INPUT_ACCEPTED = 202

export const ErrorStatus = {
  InvalidInput: 400,
  Unauthorized: 401,
  Forbidden: 403,
  UnknownWorker: 404,
  RouteNotFound: 404,
  MethodNotAllowed: 405,
  Busy: 409,
  PayloadTooLarge: 413,
  UnsupportedMediaType: 415,
  Unsupported: 422,
  InternalError: 500,
  Unavailable: 503
} as const

/** Bearer-token auth. The global guard enforces it on every path but the probes, unknown paths included. */
export class Authorization extends HttpApiMiddleware.Tag<Authorization>()("worker-runtime/Authorization", {
  failure: Unauthorized.annotations(HttpApiSchema.annotations({ status: ErrorStatus.Unauthorized })),
  security: { bearer: HttpApiSecurity.bearer }
}) {}

const workerId = HttpApiSchema.param(
  "workerId",
  WorkerId.annotations({ description: "The Worker's id, as returned by create" })
)

/** A plain decimal integer in a query string: "12"; not "1e2", "0x10", " 1", "1.0" or "". */
const queryInteger = (
  to: Schema.Schema<number>,
  jsonSchema: { readonly minimum: number; readonly maximum?: number; readonly description: string }
) =>
  Schema.transformOrFail(Schema.String, to, {
    strict: true,
    decode: (text, _, ast) =>
      /^[0-9]{1,15}$/.test(text)
        ? ParseResult.succeed(Number(text))
        : ParseResult.fail(new ParseResult.Type(ast, text, "must be a plain decimal integer")),
    encode: (value) => ParseResult.succeed(String(value))
  }).annotations({ jsonSchema: { type: "integer", ...jsonSchema }, description: jsonSchema.description })

const optional = <S extends Schema.Schema.Any>(schema: S) => Schema.optionalWith(schema, { exact: true })

const QueryLimit = queryInteger(PageLimit, {
  minimum: 1,
  maximum: MAX_PAGE,
  description: `Page size, 1 to ${MAX_PAGE} (default ${DEFAULT_PAGE})`
})

/** The list query of the domain, as URL parameters; the metadata filter is `metadata.<key>=<value>` pairs. */
export const ListParams = Schema.Struct(
  {
    status: ListQuery.fields.status,
    after: ListQuery.fields.after,
    limit: optional(QueryLimit)
  },
  Schema.Record({ key: Schema.TemplateLiteral("metadata.", Schema.String), value: Schema.String })
)

export const TurnParams = Schema.Struct({
  waitMs: optional(
    queryInteger(TurnQuery.fields.waitMs.from, {
      minimum: 0,
      maximum: MAX_WAIT_MS,
      description: `Wait up to this many milliseconds for the turn to end (0 to ${MAX_WAIT_MS}, default 0)`
    })
  )
})

export const EventsParams = Schema.Struct({
  after: optional(
    queryInteger(SeqCursor, {
      minimum: 0,
      description: "Replay entries with a greater seq (default 0); Last-Event-ID takes its place when sent"
    })
  )
})

export const EventsHeaders = Schema.Struct({
  "last-event-id": optional(
    Schema.String.annotations({ description: "The id (seq) of the last entry received; resumes after it" })
  )
})

export const CreateHeaders = Schema.Struct({
  "idempotency-key": optional(
    Schema.String.annotations({
      description: "The same as the body's idempotencyKey (both sent and different is InvalidInput)"
    })
  )
})

/** The 200 of a create whose idempotency key is known: the Worker it made. */
const KnownWorker = Schema.Struct(Worker.fields).annotations({
  identifier: "KnownWorker",
  description: "The Worker an earlier create with the same idempotency key made"
})

const turnNumber = HttpApiSchema.param(
  "turn",
  queryInteger(Schema.Int.pipe(Schema.positive()), { minimum: 1, description: "The turn's number, 1 for the first" })
)

/** The events stream: `text/event-stream` frames (docs/rest.md). */
export const EventStream = HttpApiSchema.withEncoding(
  Schema.String.annotations({
    description: "Server-sent events: `retry: 1000`; `event: worker` + `data: <Worker>`; `id: <seq>` + " +
      "`event: entry` + `data: <TranscriptEntry>`; `event: delta` + `data: {\"turn\":n,\"text\":\"…\"}` " +
      "(a model's text as it streams; no id, live only, not replayed); `: ping` comments while idle",
    examples: ["retry: 1000\n\nevent: worker\ndata: {...}\n\nid: 1\nevent: entry\ndata: {...}\n\n"]
  }),
  { kind: "Text", contentType: "text/event-stream" }
)

/** The transcript query of the domain, as URL parameters. */
export const TranscriptParams = Schema.Struct({
  after: optional(
    queryInteger(SeqCursor, { minimum: 0, description: "Only entries with a greater seq (default 0)" })
  ),
  limit: optional(QueryLimit)
})

/** Cancel and stop take `{ reason? }` or no body at all; the handlers read the body themselves. */
const OptionalBody = <A, I>(schema: Schema.Schema<A, I>) => Schema.NullOr(schema)

export class RuntimeGroup extends HttpApiGroup.make("runtime")
  .add(
    HttpApiEndpoint.get("info", "/v1/runtime")
      .addSuccess(RuntimeInfo)
      .annotate(OpenApi.Summary, "Describe the Runtime")
      .annotate(OpenApi.Description, "Identity, status, store, profiles, Worker counts and limits.")
  )
  .middleware(Authorization)
  .annotate(OpenApi.Description, "The Runtime itself")
{}

export class WorkersGroup extends HttpApiGroup.make("workers")
  .add(
    HttpApiEndpoint.get("list", "/v1/workers")
      .setUrlParams(ListParams)
      .addSuccess(WorkerList)
      .annotate(OpenApi.Summary, "List Workers")
      .annotate(
        OpenApi.Description,
        "Workers in creation order, a page at a time, optionally by status and by metadata: " +
          "`metadata.<key>=<value>` (exact match, up to 4 pairs, all must match)."
      )
  )
  .add(
    HttpApiEndpoint.post("create", "/v1/workers")
      .setPayload(CreateWorker)
      .setHeaders(CreateHeaders)
      .addSuccess(Worker, { status: 201 })
      .addSuccess(KnownWorker, { status: 200 })
      .addError(PayloadTooLarge, { status: ErrorStatus.PayloadTooLarge })
      .addError(UnsupportedMediaType, { status: ErrorStatus.UnsupportedMediaType })
      .annotate(OpenApi.Summary, "Create a Worker")
      .annotate(
        OpenApi.Description,
        "A new idle Worker on a configured profile (201). With an idempotency key already known, the Worker it " +
          "made (200) if profile and metadata are equal, else InvalidInput."
      )
  )
  .add(
    HttpApiEndpoint.get("get")`/v1/workers/${workerId}`
      .addSuccess(Worker)
      .addError(UnknownWorker, { status: ErrorStatus.UnknownWorker })
      .annotate(OpenApi.Summary, "Get a Worker")
      .annotate(OpenApi.Description, "The Worker as it is now.")
  )
  .add(
    HttpApiEndpoint.post("input")`/v1/workers/${workerId}/input`
      .setPayload(WorkerInput)
      .addSuccess(InputAccepted, { status: INPUT_ACCEPTED })
      .addError(UnknownWorker, { status: ErrorStatus.UnknownWorker })
      .addError(Busy, { status: ErrorStatus.Busy })
      .addError(Unsupported, { status: ErrorStatus.Unsupported })
      .addError(PayloadTooLarge, { status: ErrorStatus.PayloadTooLarge })
      .addError(UnsupportedMediaType, { status: ErrorStatus.UnsupportedMediaType })
      .annotate(OpenApi.Summary, "Send input")
      .annotate(
        OpenApi.Description,
        "Records the input and starts a turn, answering at once. Busy (nothing recorded) while a turn is in flight."
      )
  )
  .add(
    HttpApiEndpoint.post("cancel")`/v1/workers/${workerId}/cancel`
      .setPayload(OptionalBody(CancelRequest))
      .addSuccess(CancelResult)
      .addError(UnknownWorker, { status: ErrorStatus.UnknownWorker })
      .addError(Unsupported, { status: ErrorStatus.Unsupported })
      .addError(PayloadTooLarge, { status: ErrorStatus.PayloadTooLarge })
      .addError(UnsupportedMediaType, { status: ErrorStatus.UnsupportedMediaType })
      .annotate(OpenApi.Summary, "Cancel the turn in flight")
      .annotate(
        OpenApi.Description,
        "Interrupts the turn, records why, and leaves the Worker idle; cancelled is false when it was idle."
      )
  )
  .add(
    HttpApiEndpoint.post("stop")`/v1/workers/${workerId}/stop`
      .setPayload(OptionalBody(StopRequest))
      .addSuccess(Worker)
      .addError(UnknownWorker, { status: ErrorStatus.UnknownWorker })
      .addError(PayloadTooLarge, { status: ErrorStatus.PayloadTooLarge })
      .addError(UnsupportedMediaType, { status: ErrorStatus.UnsupportedMediaType })
      .annotate(OpenApi.Summary, "Stop a Worker")
      .annotate(OpenApi.Description, "Interrupts any turn and ends the Worker for good (status stopped).")
  )
  .add(
    HttpApiEndpoint.get("transcript")`/v1/workers/${workerId}/transcript`
      .setUrlParams(TranscriptParams)
      .addSuccess(TranscriptPage)
      .addError(UnknownWorker, { status: ErrorStatus.UnknownWorker })
      .annotate(OpenApi.Summary, "Read the transcript")
      .annotate(OpenApi.Description, "Entries after a seq, in order, a page at a time.")
  )
  .add(
    HttpApiEndpoint.get("turn")`/v1/workers/${workerId}/turns/${turnNumber}`
      .setUrlParams(TurnParams)
      .addSuccess(Turn)
      .addError(UnknownWorker, { status: ErrorStatus.UnknownWorker })
      .annotate(OpenApi.Summary, "Get a turn")
      .annotate(
        OpenApi.Description,
        "The turn's record; with waitMs, answers once the turn has ended or the time is up (a long poll)."
      )
  )
  .add(
    HttpApiEndpoint.get("events")`/v1/workers/${workerId}/events`
      .setUrlParams(EventsParams)
      .setHeaders(EventsHeaders)
      .addSuccess(EventStream)
      .addError(UnknownWorker, { status: ErrorStatus.UnknownWorker })
      .annotate(OpenApi.Summary, "Follow a Worker (server-sent events)")
      .annotate(
        OpenApi.Description,
        "The Worker now, every entry after `after` (or Last-Event-ID), then live entries and the Worker after " +
          "each change of status or queue. Ends after the Worker is stopped or failed and every entry was sent, " +
          "or when it is deleted; closed when the runtime drains (reconnect with Last-Event-ID)."
      )
  )
  .add(
    HttpApiEndpoint.del("delete")`/v1/workers/${workerId}`
      .addSuccess(HttpApiSchema.NoContent)
      .addError(UnknownWorker, { status: ErrorStatus.UnknownWorker })
      .addError(Unsupported, { status: ErrorStatus.Unsupported })
      .annotate(OpenApi.Summary, "Delete a Worker")
      .annotate(
        OpenApi.Description,
        "Removes a stopped or failed Worker for good, with its transcript, turns and idempotency key. " +
          "Unsupported for an idle or busy Worker: stop it first."
      )
  )
  .middleware(Authorization)
  .annotate(OpenApi.Description, "Workers: create, drive, follow and end them")
{}

export const Healthy = Schema.Struct({ status: Schema.Literal("ok") }).annotations({
  identifier: "Healthy",
  description: "The process runs",
  examples: [{ status: "ok" }]
})
export const Ready = Schema.Struct({ status: Schema.Literal("ready") }).annotations({
  identifier: "Ready",
  description: "The Runtime takes work",
  examples: [{ status: "ready" }]
})

/** Probes: no token, so an orchestrator can ask without a secret. */
export class HealthGroup extends HttpApiGroup.make("health")
  .add(
    HttpApiEndpoint.get("healthz", "/healthz")
      .addSuccess(Healthy)
      .annotate(OpenApi.Summary, "Liveness probe")
      .annotate(OpenApi.Description, "200 while the process runs. No token needed.")
  )
  .add(
    HttpApiEndpoint.get("readyz", "/readyz")
      .addSuccess(Ready)
      .annotate(OpenApi.Summary, "Readiness probe")
      .annotate(
        OpenApi.Description,
        "200 when the Runtime takes work; 503 while starting or draining. No token needed."
      )
  )
  .annotate(OpenApi.Description, "Probes for orchestrators; no token needed")
{}

export class RuntimeApi extends HttpApi.make("worker-runtime")
  .add(RuntimeGroup)
  .add(WorkersGroup)
  .add(HealthGroup)
  .addError(InvalidInput, { status: ErrorStatus.InvalidInput })
  .addError(Forbidden, { status: ErrorStatus.Forbidden })
  .addError(InternalError, { status: ErrorStatus.InternalError })
  .addError(Unavailable, { status: ErrorStatus.Unavailable })
  .annotateContext(OpenApi.annotations({
    title: "worker-runtime",
    version: VERSION,
    description: "REST command API of a Worker Runtime: it hosts long-lived Workers (agent sessions) for a Backend. " +
      "Backends only: requests from browsers are refused (403).",
    license: { name: "MIT", url: "https://opensource.org/licenses/MIT" },
    servers: [{ url: "http://127.0.0.1:8787", description: "The default address of `npm start`" }],
    transform: documentTransform
  }))
{}

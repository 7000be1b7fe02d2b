/**
 * Handlers: each maps path, body and query onto one `Runtime` call. Bodies
 * are read by `Body.ts` (raw handlers), not by the platform, so that only
 * JSON is ever read and its size, encoding and depth are checked first.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Schema from "effect/Schema"
import { CancelRequest, CreateWorker, type ListQuery, StopRequest, type Worker, WorkerInput } from "../Domain.js"
import { drainingError } from "../Draining.js"
import { InvalidInput } from "../Errors.js"
import { Runtime } from "../Runtime.js"
import { RuntimeControl } from "../RuntimeControl.js"
import { followableAfter } from "../Validation.js"
import { Authorization, INPUT_ACCEPTED, type ListParams, RuntimeApi } from "./Api.js"
import { type BodyOptions, jsonBody, optionalJsonBody } from "./Body.js"
import { followerResponse, streamFollow } from "./EventStream.js"
import { markHandled } from "./Handled.js"
import type { HeldRequests } from "./HeldRequests.js"
import { inputAcceptedJson, jsonResponse, transcriptPageJson, workerJson } from "./Snapshots.js"

/**
 * Path, query and headers are decoded before a handler runs, the answer is
 * encoded after it: marking the request when the handler starts tells the
 * guard that a decode error after it is the answer's, a server failure.
 */
const decoded = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.zipRight(markHandled, effect)

const decodedBody = <A, I>(schema: Schema.Schema<A, I>, options: BodyOptions) => decoded(jsonBody(schema, options))

const decodedOptionalBody = <A, I>(schema: Schema.Schema<A, I>, options: BodyOptions) =>
  decoded(optionalJsonBody(schema, options))

export const RuntimeHandlers = HttpApiBuilder.group(
  RuntimeApi,
  "runtime",
  (handlers) => Effect.map(Runtime, (runtime) => handlers.handle("info", () => decoded(runtime.info)))
)

/** The list query: `metadata.<key>=<value>` pairs become the metadata filter. */
const listQuery = (params: typeof ListParams.Type): ListQuery => {
  const { after, limit, status, ...pairs } = params
  const metadata = Object.fromEntries(
    Object.entries(pairs).map(([name, value]) => [name.slice("metadata.".length), value])
  )
  return {
    ...(status === undefined ? {} : { status }),
    ...(after === undefined ? {} : { after }),
    ...(limit === undefined ? {} : { limit }),
    ...(Object.keys(metadata).length === 0 ? {} : { metadata })
  }
}

/** The body's idempotency key, or the header's; both sent and different is `InvalidInput`. */
const withHeaderKey = (request: CreateWorker, header: string | undefined) => {
  if (header === undefined) return Effect.succeed(request)
  if (request.idempotencyKey !== undefined && request.idempotencyKey !== header) {
    return Effect.fail(
      new InvalidInput({ message: "Invalid create request: the Idempotency-Key header and idempotencyKey differ." })
    )
  }
  return Effect.succeed({ ...request, idempotencyKey: header })
}

export interface WorkersHandlersOptions {
  readonly maxBodyBytes: number
  /** How often an idle events stream gets a `: ping` comment. */
  readonly pingMs: number
  /** Events streams and long polls held open at once, counted across the server (HeldRequests.ts). */
  readonly heldRequests: HeldRequests
}

export const WorkersHandlers = ({ heldRequests, maxBodyBytes, pingMs }: WorkersHandlersOptions) =>
  HttpApiBuilder.group(
    RuntimeApi,
    "workers",
    (handlers) =>
      Effect.map(Effect.zip(Runtime, Effect.serviceOption(RuntimeControl)), ([runtime, control]) => {
        // Says whether a create made the Worker; a Runtime without control (a
        // proxy) can only say it did.
        const create = control._tag === "Some"
          ? control.value.create
          : (request: CreateWorker) => Effect.map(runtime.create(request), (worker) => ({ worker, created: true }))
        /**
         * A slot for this request: released by the request's scope, which
         * closes once the answer (a streamed body too) is written or the client
         * is gone, even when the body never started; and, for a stream, by
         * its body as soon as that ends.
         */
        const holdSlot = Effect.acquireRelease(heldRequests.hold, (release) => release)
        return handlers
          .handle("list", ({ urlParams }) => decoded(runtime.list(listQuery(urlParams))))
          .handleRaw("create", ({ headers }) =>
            decodedBody(CreateWorker, { maxBodyBytes, what: "create request" }).pipe(
              Effect.flatMap((request) => withHeaderKey(request, headers["idempotency-key"])),
              Effect.flatMap(create),
              // A create replayed by its idempotency key made nothing new: 200, not 201.
              Effect.map(({ created, worker }): Worker | HttpServerResponse.HttpServerResponse =>
                created ? worker : jsonResponse(workerJson(worker))
              )
            ))
          // Encoded once per Worker value (Snapshots.ts), not by the success schema on every read.
          .handleRaw(
            "get",
            ({ path }) => Effect.map(decoded(runtime.get(path.workerId)), (worker) => jsonResponse(workerJson(worker)))
          )
          .handleRaw("input", ({ path }) =>
            Effect.flatMap(
              decodedBody(WorkerInput, { maxBodyBytes, what: "input" }),
              (input) =>
                Effect.map(runtime.input(path.workerId, input), (accepted) =>
                  jsonResponse(inputAcceptedJson(accepted), INPUT_ACCEPTED))
            ))
          .handleRaw("cancel", ({ path }) =>
            Effect.flatMap(
              decodedOptionalBody(CancelRequest, { maxBodyBytes, what: "cancel request" }),
              (request) =>
                runtime.cancel(path.workerId, request)
            ))
          .handleRaw("stop", ({ path }) =>
            Effect.flatMap(
              decodedOptionalBody(StopRequest, { maxBodyBytes, what: "stop request" }),
              (request) => runtime.stop(path.workerId, request)
            ))
          .handleRaw("transcript", ({ path, urlParams }) =>
            Effect.map(
              decoded(runtime.transcript(path.workerId, urlParams)),
              (page) => jsonResponse(transcriptPageJson(page))
            ))
          .handle("turn", ({ path, urlParams }) =>
            decoded(Effect.gen(function*() {
              if ((urlParams.waitMs ?? 0) === 0) return yield* runtime.turn(path.workerId, path.turn, urlParams)
              // Only a wait for a running turn is held: an ended turn is answered at once, never refused.
              const now = yield* runtime.turn(path.workerId, path.turn, { waitMs: 0 })
              if (now.status !== "running") return now
              return yield* Effect.scoped(
                Effect.zipRight(holdSlot, runtime.turn(path.workerId, path.turn, urlParams))
              )
            })))
          .handle("events", ({ headers, path, urlParams }) =>
            decoded(Effect.gen(function*() {
              const after = yield* lastEventId(headers["last-event-id"], urlParams.after)
              // Errors before the stream starts are ordinary JSON answers.
              yield* followableAfter(after, yield* runtime.get(path.workerId))
              const release = yield* holdSlot
              const follow = control._tag === "Some" ? control.value.follow : undefined
              // Over a Runtime of this process, its follower itself (no stream stages); else its events Stream.
              return yield* followerResponse(
                follow === undefined
                  ? streamFollow(runtime.events(path.workerId, { after }))
                  : follow(path.workerId, { after }),
                pingMs,
                release
              )
            })))
          .handle("delete", ({ path }) => decoded(runtime.delete(path.workerId)))
      })
  )

/** `Last-Event-ID`, when sent, takes the place of `after`. */
const lastEventId = (header: string | undefined, after: number | undefined) => {
  if (header === undefined) return Effect.succeed(after ?? 0)
  return /^[0-9]{1,15}$/.test(header.trim())
    ? Effect.succeed(Number(header.trim()))
    : Effect.fail(new InvalidInput({ message: "Invalid request: Last-Event-ID must be a plain decimal integer." }))
}

export const HealthHandlers = HttpApiBuilder.group(
  RuntimeApi,
  "health",
  (handlers) =>
    Effect.map(Runtime, (runtime) =>
      handlers
        .handle("healthz", () => decoded(Effect.succeed({ status: "ok" as const })))
        .handle("readyz", () =>
          decoded(runtime.info.pipe(
            Effect.filterOrFail((info) => info.status === "running", () => drainingError(0)),
            Effect.as({ status: "ready" as const })
          ))))
)

/**
 * The endpoint-level bearer check of `RuntimeApi` (it puts the security
 * scheme in the OpenAPI document). The server's global guard has already
 * checked the token, before routing, on every path that needs it
 * (docs/rest.md: an unknown path is 401 too), so checking it here again would
 * only cost a second comparison per request.
 */
export const AuthorizationLive = Layer.succeed(Authorization, { bearer: () => Effect.void })

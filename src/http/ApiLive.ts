/**
 * Handlers: each maps path, body and query onto one `Runtime` call. Bodies
 * are read by `Body.ts` (raw handlers), not by the platform, so that only
 * JSON is ever read and its size, encoding and depth are checked first.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { CancelRequest, CreateWorker, StopRequest, WorkerInput } from "../Domain.js"
import { drainingError } from "../Draining.js"
import { Runtime } from "../Runtime.js"
import { Authorization, RuntimeApi } from "./Api.js"
import { jsonBody, optionalJsonBody } from "./Body.js"
import { Unauthorized } from "./Errors.js"
import { tokenMatches } from "./Guard.js"

export const RuntimeHandlers = HttpApiBuilder.group(
  RuntimeApi,
  "runtime",
  (handlers) => Effect.map(Runtime, (runtime) => handlers.handle("info", () => runtime.info))
)

export const WorkersHandlers = (maxBodyBytes: number) =>
  HttpApiBuilder.group(RuntimeApi, "workers", (handlers) =>
    Effect.map(Runtime, (runtime) =>
      handlers
        .handle("list", ({ urlParams }) => runtime.list(urlParams))
        .handleRaw(
          "create",
          () => Effect.flatMap(jsonBody(CreateWorker, { maxBodyBytes, what: "create request" }), runtime.create)
        )
        .handle("get", ({ path }) => runtime.get(path.workerId))
        .handleRaw("input", ({ path }) =>
          Effect.flatMap(
            jsonBody(WorkerInput, { maxBodyBytes, what: "input" }),
            (input) => runtime.input(path.workerId, input)
          ))
        .handleRaw("cancel", ({ path }) =>
          Effect.flatMap(
            optionalJsonBody(CancelRequest, { maxBodyBytes, what: "cancel request" }),
            (request) => runtime.cancel(path.workerId, request)
          ))
        .handleRaw("stop", ({ path }) =>
          Effect.flatMap(
            optionalJsonBody(StopRequest, { maxBodyBytes, what: "stop request" }),
            (request) => runtime.stop(path.workerId, request)
          ))
        .handle("transcript", ({ path, urlParams }) => runtime.transcript(path.workerId, urlParams))))

export const HealthHandlers = HttpApiBuilder.group(
  RuntimeApi,
  "health",
  (handlers) =>
    Effect.map(Runtime, (runtime) =>
      handlers
        .handle("healthz", () => Effect.succeed({ status: "ok" as const }))
        .handle("readyz", () =>
          runtime.info.pipe(
            Effect.filterOrFail((info) => info.status === "running", () => drainingError(0)),
            Effect.as({ status: "ready" as const })
          )))
)

/** The endpoint-level check behind the global guard (which already enforced it before routing). */
export const AuthorizationLive = (token: Option.Option<Redacted.Redacted<string>>) =>
  Layer.succeed(Authorization, {
    bearer: (given) =>
      Option.match(token, {
        onNone: () => Effect.void,
        onSome: (expected) =>
          // The platform slices a fixed "Bearer " off; the guard also trims.
          tokenMatches(Redacted.value(given).trim(), expected)
            ? Effect.void
            : Effect.fail(new Unauthorized({ message: "The bearer token is missing or wrong." }))
      })
  })

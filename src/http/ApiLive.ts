/** Handlers: each maps path, payload and query onto one `Runtime` call. */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"

import { drainingError } from "../Draining.js"
import { Runtime } from "../Runtime.js"
import { Authorization, BodyLimit, RuntimeApi } from "./Api.js"
import { PayloadTooLarge, Unauthorized } from "./Errors.js"
import { tokenMatches } from "./Guard.js"

export const RuntimeHandlers = HttpApiBuilder.group(
  RuntimeApi,
  "runtime",
  (handlers) => Effect.map(Runtime, (runtime) => handlers.handle("info", () => runtime.info))
)

export const WorkersHandlers = HttpApiBuilder.group(
  RuntimeApi,
  "workers",
  (handlers) =>
    Effect.map(Runtime, (runtime) =>
      handlers
        .handle("list", ({ urlParams }) => runtime.list(urlParams))
        .handle("create", ({ payload }) => runtime.create(payload))
        .handle("get", ({ path }) => runtime.get(path.workerId))
        .handle("input", ({ path, payload }) => runtime.input(path.workerId, payload))
        .handle("cancel", ({ path, payload }) => runtime.cancel(path.workerId, payload ?? undefined))
        .handle("stop", ({ path, payload }) => runtime.stop(path.workerId, payload ?? undefined))
        .handle("transcript", ({ path, urlParams }) => runtime.transcript(path.workerId, urlParams)))
)

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
            : Effect.fail(new Unauthorized({ message: "missing or wrong bearer token" }))
      })
  })

export const BodyLimitLive = (maxBodyBytes: number) =>
  Layer.succeed(
    BodyLimit,
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const declared = Number(request.headers["content-length"] ?? 0)
      return declared > maxBodyBytes
        ? Effect.fail(
          new PayloadTooLarge({ message: `request body exceeds ${maxBodyBytes} bytes`, limitBytes: maxBodyBytes })
        )
        : Effect.void
    })
  )

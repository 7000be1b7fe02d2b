/**
 * Requests whose handler has started: their path, query and headers were
 * decoded. The guard uses it to tell a request the client got wrong
 * (`InvalidInput`) from an answer the server could not encode (`InternalError`).
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"

const handled = new WeakSet<HttpServerRequest.HttpServerRequest>()

export const markHandled = Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
  handled.add(request)
})

export const wasHandled = (request: HttpServerRequest.HttpServerRequest) => handled.has(request)

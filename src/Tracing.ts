/**
 * With `RuntimeOptions.tracing`, every Runtime method runs in a span named
 * for it, with the Worker's id; without, the service is used as it is and no
 * span is ever made. And what the HTTP spans may record (docs/operations.md):
 * the allowlisted headers, never a query string.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { WorkerId } from "./Domain.js"
import type { RuntimeService } from "./Runtime.js"

/** Every method in a span named for it (`Runtime.input`), with the Worker's id. */
export const traced = (runtime: RuntimeService): RuntimeService => {
  const span = <A, E>(name: string, effect: Effect.Effect<A, E>, workerId?: WorkerId) =>
    Effect.withSpan(effect, `Runtime.${name}`, workerId === undefined ? {} : { attributes: { workerId } })
  return {
    info: span("info", runtime.info),
    list: (query) => span("list", runtime.list(query)),
    get: (id) => span("get", runtime.get(id), id),
    create: (request) => span("create", runtime.create(request)),
    input: (id, input) => span("input", runtime.input(id, input), id),
    cancel: (id, request) => span("cancel", runtime.cancel(id, request), id),
    stop: (id, request) => span("stop", runtime.stop(id, request), id),
    transcript: (id, query) => span("transcript", runtime.transcript(id, query), id),
    turn: (id, turn, query) => span("turn", runtime.turn(id, turn, query), id),
    events: (id, query) =>
      Stream.withSpan(runtime.events(id, query), "Runtime.events", { attributes: { workerId: id } }),
    delete: (id) => span("delete", runtime.delete(id), id)
  }
}

/**
 * The only headers an HTTP span (the server's per request, the derived
 * client's per call) records, as `http.request.header.<name>` and
 * `http.response.header.<name>`: none that carries a credential. Every other
 * header (Authorization, Proxy-Authorization, X-Forwarded-Authorization,
 * X-Api-Key, Cookie, whatever a proxy adds) is left out, name and value.
 */
export const RECORDED_HEADERS: ReadonlyArray<string> = [
  "accept",
  "content-length",
  "content-type",
  "traceparent",
  "user-agent"
]

/** The span attributes for the recorded headers among `headers` (names in lower case, as the platform keeps them). */
export const headerAttributes = (
  direction: "request" | "response",
  headers: Readonly<Record<string, string | undefined>>
): Record<string, string> => {
  const attributes: Record<string, string> = {}
  for (const name of RECORDED_HEADERS) {
    const value = headers[name]
    if (value !== undefined) attributes[`http.${direction}.header.${name}`] = value
  }
  return attributes
}

/** A URL or request target without its query string and fragment: spans never record a query's values. */
export const withoutQuery = (url: string): string => url.replace(/[?#].*$/s, "")

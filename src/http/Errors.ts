/**
 * Errors only the transport can raise. Like the core errors they carry a
 * `message`, so every response with status >= 400 is `{ _tag, message, ... }`.
 */
import * as Schema from "effect/Schema"

/** Missing or wrong bearer token. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  message: Schema.String
}, { description: "The bearer token is missing or wrong" }) {}

/** The request comes from a browser; the Runtime only serves Backends. */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", {
  message: Schema.String
}, { description: "The request comes from a browser, or its Host is not allowed" }) {}

/** The HTTP body exceeds the body limit (4 × maxInputBytes + 64 KiB). */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", {
  message: Schema.String,
  limitBytes: Schema.Int
}, { description: "The body exceeds the body limit" }) {}

/** No such path. */
export class RouteNotFound extends Schema.TaggedError<RouteNotFound>()("RouteNotFound", {
  message: Schema.String,
  method: Schema.String,
  path: Schema.String
}, { description: "No such path" }) {}

/** A defect in the Runtime: a bug, logged; not a response to rely on. */
export class InternalError extends Schema.TaggedError<InternalError>()("InternalError", {
  message: Schema.String
}, { description: "A defect in the Runtime, logged" }) {}

/** The path exists, the method does not; `allow` lists the methods it has (also sent as `Allow`). */
export class MethodNotAllowed extends Schema.TaggedError<MethodNotAllowed>()("MethodNotAllowed", {
  message: Schema.String,
  method: Schema.String,
  path: Schema.String,
  allow: Schema.Array(Schema.String)
}, { description: "The path exists, the method does not" }) {}

/** A request body that is not JSON (`application/json` or `+json`); it was not read. */
export class UnsupportedMediaType extends Schema.TaggedError<UnsupportedMediaType>()("UnsupportedMediaType", {
  message: Schema.String,
  contentType: Schema.String
}, { description: "The body is not JSON" }) {}

/**
 * The client was pointed at the wrong place or with the wrong credentials: a
 * deployment error no retry fixes. The derived client raises it as a defect
 * (`Effect.die`), so it is loud; `status` is what the server answered.
 */
export class RuntimeMisconfigured extends Schema.TaggedError<RuntimeMisconfigured>()("RuntimeMisconfigured", {
  status: Schema.Int,
  message: Schema.String
}, { description: "The client's configuration is wrong (token, baseUrl, Host, version)" }) {}

/**
 * Errors only the transport can raise. Like the core errors they carry a
 * `message`, so every response with status >= 400 is `{ _tag, message, ... }`.
 */
import * as Schema from "effect/Schema"

/** Missing or wrong bearer token. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  message: Schema.String
}) {}

/** The request comes from a browser; the Runtime only serves Backends. */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", {
  message: Schema.String
}) {}

/** The HTTP body exceeds the body limit (4 × maxInputBytes + 64 KiB). */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", {
  message: Schema.String,
  limitBytes: Schema.Number
}) {}

/** No such path or method. */
export class RouteNotFound extends Schema.TaggedError<RouteNotFound>()("RouteNotFound", {
  message: Schema.String,
  method: Schema.String,
  path: Schema.String
}) {}

/** A defect in the Runtime: a bug, logged; not a response to rely on. */
export class InternalError extends Schema.TaggedError<InternalError>()("InternalError", {
  message: Schema.String
}) {}

/**
 * The tagged errors of the Runtime. They carry meaning only; HTTP statuses are
 * attached in the http entry so the core never imports `@effect/platform`.
 */
import * as Schema from "effect/Schema"

import { WorkerId } from "./Domain.js"

/** The Worker has a turn in flight; nothing was recorded. */
export class Busy extends Schema.TaggedError<Busy>()("Busy", {
  workerId: WorkerId,
  turn: Schema.Int,
  message: Schema.String
}, { description: "The Worker has a turn in flight; nothing was recorded" }) {}

/** No such Worker in this Runtime. */
export class UnknownWorker extends Schema.TaggedError<UnknownWorker>()("UnknownWorker", {
  workerId: WorkerId,
  message: Schema.String
}, { description: "No such Worker in this Runtime" }) {}

export const ValidationIssue = Schema.Struct({
  path: Schema.Array(Schema.Union(Schema.String, Schema.Int)).annotations({
    description: "Where in the request: field names and array indexes"
  }),
  message: Schema.String.annotations({ description: "What is wrong there, e.g. \"must be a string\"" })
}).annotations({ identifier: "ValidationIssue", description: "One problem of a request" })
export type ValidationIssue = typeof ValidationIssue.Type

/** A request that fails validation (shape or value). */
export class InvalidInput extends Schema.TaggedError<InvalidInput>()("InvalidInput", {
  message: Schema.String,
  issues: Schema.optionalWith(Schema.Array(ValidationIssue), { exact: true })
}, { description: "The request fails validation: its shape, or a value (content too large, unknown profile)" }) {}

/** A valid request this Worker cannot serve (stopped, failed, or not supported by its engine). */
export class Unsupported extends Schema.TaggedError<Unsupported>()("Unsupported", {
  operation: Schema.String,
  workerId: Schema.optionalWith(WorkerId, { exact: true }),
  message: Schema.String
}, { description: "A valid request this Worker cannot serve: it is stopped or failed, or its engine cannot" }) {}

/** The Runtime cannot serve now: draining, at capacity, or its store failed. */
export class Unavailable extends Schema.TaggedError<Unavailable>()("Unavailable", {
  message: Schema.String,
  retryAfterMs: Schema.optionalWith(Schema.Int, { exact: true })
}, { description: "The Runtime cannot serve now (draining, at capacity, store failure); retry later" }) {}

/** Every error a `Runtime` method can raise. */
export type RuntimeError = Busy | UnknownWorker | InvalidInput | Unsupported | Unavailable

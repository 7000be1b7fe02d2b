/**
 * The tagged errors of the Runtime. They carry meaning only; HTTP statuses are
 * attached in the http entry so the core never imports `@effect/platform`.
 */
import * as Schema from "effect/Schema"

import { WorkerId } from "./Domain.js"

/** The Worker has a turn in flight; nothing was recorded. */
export class Busy extends Schema.TaggedError<Busy>()("Busy", {
  workerId: WorkerId,
  turn: Schema.Number,
  message: Schema.String
}) {}

/** No such Worker in this Runtime. */
export class UnknownWorker extends Schema.TaggedError<UnknownWorker>()("UnknownWorker", {
  workerId: WorkerId,
  message: Schema.String
}) {}

export const ValidationIssue = Schema.Struct({
  path: Schema.Array(Schema.Union(Schema.String, Schema.Number)),
  message: Schema.String
}).annotations({ identifier: "ValidationIssue" })
export type ValidationIssue = typeof ValidationIssue.Type

/** A request that fails validation (shape or value). */
export class InvalidInput extends Schema.TaggedError<InvalidInput>()("InvalidInput", {
  message: Schema.String,
  issues: Schema.optional(Schema.Array(ValidationIssue))
}) {}

/** A valid request this Worker cannot serve (stopped, failed, or not supported by its engine). */
export class Unsupported extends Schema.TaggedError<Unsupported>()("Unsupported", {
  operation: Schema.String,
  workerId: Schema.optional(WorkerId),
  message: Schema.String
}) {}

/** The Runtime cannot serve now: draining, at capacity, or its store failed. */
export class Unavailable extends Schema.TaggedError<Unavailable>()("Unavailable", {
  message: Schema.String,
  retryAfterMs: Schema.optional(Schema.Number)
}) {}

/** Every error a `Runtime` method can raise. */
export type RuntimeError = Busy | UnknownWorker | InvalidInput | Unsupported | Unavailable

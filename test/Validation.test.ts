/**
 * The embedded input's fast path (`validate.input` checks the common shape by
 * hand) against the `WorkerInput` schema, on generated inputs: it accepts
 * exactly what the schema accepts, with the same value, so a rule added to
 * the schema cannot be skipped.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, FastCheck as fc, Schema } from "effect"

import { WorkerInput } from "../src/Domain.js"
import { validate } from "../src/Validation.js"

const value = fc.oneof(
  fc.constantFrom("user", "system", "reject", "enqueue", "interrupt", "", "x", "hello", "USER"),
  fc.string(),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.array(fc.string(), { maxLength: 2 }),
  fc.dictionary(fc.string(), fc.string(), { maxKeys: 2 })
)

const input = fc.oneof(
  fc.dictionary(fc.constantFrom("content", "kind", "ifBusy", "other", "__proto__", "constructor"), value, {
    maxKeys: 4
  }),
  fc.record({ content: fc.string() }, { requiredKeys: [] }),
  fc.record({
    content: fc.string(),
    kind: fc.constantFrom("user", "system", "other"),
    ifBusy: fc.constantFrom("reject", "enqueue", "interrupt", "never")
  }, { requiredKeys: ["content"] }),
  value
)

const bySchema = Schema.decodeUnknownEither(WorkerInput, { onExcessProperty: "error" })

describe("validate.input", () => {
  it.effect("accepts exactly what the WorkerInput schema accepts, with the same value", () =>
    Effect.sync(() =>
      fc.assert(
        fc.property(input, (candidate) => {
          const fast = Effect.runSync(Effect.either(validate.input(candidate)))
          const schema = bySchema(candidate)
          expect(Either.isRight(fast), JSON.stringify(candidate)).toBe(Either.isRight(schema))
          if (Either.isRight(fast) && Either.isRight(schema)) expect(fast.right).toEqual(schema.right)
        }),
        { numRuns: 5000 }
      )
    ))
})

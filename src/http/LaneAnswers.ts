/**
 * A fast lane's answers (FastLane.ts) as HttpApi writes them, derived from
 * the API's definition: a value is encoded by the schema the endpoint
 * declares for its status, then written as JSON, which is what the platform
 * does with a handler's success and with a typed error. A lane that has read
 * a request's body cannot give the request back to HttpApi, so it answers
 * every outcome with these.
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import type * as AST from "effect/SchemaAST"
import type { LaneAnswer, WorkerEndpoint } from "./FastLane.js"

interface Encoder {
  readonly status: number
  readonly is: (value: unknown) => boolean
  readonly encode: (value: unknown) => Either.Either<unknown, unknown>
}

const encoderOf = (status: number, ast: AST.AST): Encoder => {
  const schema = Schema.make(ast)
  return { status, is: Schema.is(schema), encode: Schema.encodeUnknownEither(schema) }
}

const answerOf = (encoder: Encoder, value: unknown): LaneAnswer | undefined => {
  const encoded = encoder.encode(value)
  return Either.isLeft(encoded)
    ? undefined
    : { _tag: "Answer", status: encoder.status, contentType: "application/json", body: JSON.stringify(encoded.right) }
}

export interface EndpointAnswers {
  /** The status of the success answer. */
  readonly successStatus: number
  /** The success answer; undefined when the value does not encode (HttpApi answers 500 then). */
  readonly success: (value: unknown) => LaneAnswer | undefined
  /** A typed error's answer, with the status the API gives its class; undefined for one it does not declare. */
  readonly failure: (error: unknown) => LaneAnswer | undefined
}

/** The answers of an endpoint with one success status; undefined for one with several. */
export const endpointAnswers = (endpoint: WorkerEndpoint): EndpointAnswers | undefined => {
  if (endpoint.successes.size !== 1) return undefined
  const [success] = Array.from(endpoint.successes, ([status, ast]) => encoderOf(status, ast))
  if (success === undefined) return undefined
  const errors = Array.from(endpoint.errors, ([status, ast]) => encoderOf(status, ast))
  return {
    successStatus: success.status,
    success: (value) => answerOf(success, value),
    failure: (error) => {
      const encoder = errors.find((encoder) => encoder.is(error))
      return encoder === undefined ? undefined : answerOf(encoder, error)
    }
  }
}

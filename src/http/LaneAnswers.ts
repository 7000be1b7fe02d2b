/**
 * A fast lane's error answers (FastLane.ts) as HttpApi writes them, derived
 * from the API's definition: a typed error is encoded by the schema the
 * endpoint declares for its status, then written as JSON, which is what the
 * platform does with it. A lane that has read a request's body cannot give
 * the request back to HttpApi, so it answers every outcome: these, and its
 * success with the status the endpoint declares (the body as Snapshots.ts
 * writes it).
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
  /** The status of the success answer (its body the lane writes as Snapshots.ts does). */
  readonly successStatus: number
  /** A typed error's answer, with the status the API gives its class; undefined for one it does not declare. */
  readonly failure: (error: unknown) => LaneAnswer | undefined
}

/** The answers of an endpoint with one success status; undefined for one with several. */
export const endpointAnswers = (endpoint: WorkerEndpoint): EndpointAnswers | undefined => {
  if (endpoint.successes.size !== 1) return undefined
  const [successStatus] = endpoint.successes.keys()
  if (successStatus === undefined) return undefined
  const errors = Array.from(endpoint.errors, ([status, ast]) => encoderOf(status, ast))
  return {
    successStatus,
    failure: (error) => {
      const encoder = errors.find((encoder) => encoder.is(error))
      return encoder === undefined ? undefined : answerOf(encoder, error)
    }
  }
}

/**
 * The fast lane for `POST /v1/workers/{workerId}/input` (FastLane.ts says
 * what a lane is). It takes only a request whose every check before the body
 * passes as HttpApi's would (the guard's, a Worker id as the router decodes
 * it, no query, a JSON media type, a declared length within the limit, no
 * chunked body); the rest is HttpApi's, untouched. Once it has read the body
 * it cannot give the request back, so from there on it does what the
 * handler does (Body.ts's decode, then `Runtime.input`) in one fiber, with
 * none of the request fiber's context, router and middleware, and answers
 * every outcome as HttpApi would: the success as its schema encodes it
 * (Snapshots.ts), the typed errors encoded by the API's own schemas
 * (LaneAnswers.ts), `Retry-After` on a 503, a
 * defect logged and answered 500. test/FastLane.test.ts holds both side by
 * side for every status.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import { type WorkerId, WorkerInput } from "../Domain.js"
import { Unavailable } from "../Errors.js"
import type { RuntimeService } from "../Runtime.js"
import { isJsonMediaType, requiredJsonOf } from "./Body.js"
import { InternalError } from "./Errors.js"
import { type FastLane, type LaneAnswer, type WorkerLaneOptions, workersEndpoint } from "./FastLane.js"
import { retryAfterSeconds } from "./Guard.js"
import { endpointAnswers } from "./LaneAnswers.js"
import { inputAcceptedJson } from "./Snapshots.js"

export interface InputLaneOptions extends Omit<WorkerLaneOptions, "peek"> {
  readonly input: RuntimeService["input"]
  /** The server's body limit: a body declared larger is HttpApi's to refuse. */
  readonly maxBodyBytes: number
  /** Where the lane's fibers run (the server layer's services). */
  readonly runtime: Runtime.Runtime<never>
}

// A declared length HttpApi reads as it is; "0" (no body) it answers itself.
const LENGTH = /^[1-9][0-9]{0,14}$/

// As the guard answers a defect.
const INTERNAL_MESSAGE = "Internal error; the runtime logged it."

/** The platform's answer to an interrupted request: the status alone. */
const INTERRUPTED: LaneAnswer = { _tag: "Answer", status: 503, contentType: "", body: "" }

/** The lane for the input endpoint; undefined if the API has no such endpoint, or one it could not answer as HttpApi. */
export const makeInputLane = (options: InputLaneOptions): FastLane | undefined => {
  const endpoint = workersEndpoint("input")
  const answers = endpoint === undefined ? undefined : endpointAnswers(endpoint)
  if (endpoint === undefined || answers === undefined) return undefined
  const internal = answers.failure(new InternalError({ message: INTERNAL_MESSAGE }))
  if (internal === undefined) return undefined
  const { method, template, workerIdOf } = endpoint
  const { maxBodyBytes, record, refusalOf } = options
  // The handler's decode (src/http/ApiLive.ts): the same schema and wording.
  const decode = requiredJsonOf(WorkerInput, "input")
  const run = Runtime.runCallback(options.runtime)

  const failed = (cause: Cause.Cause<unknown>): Effect.Effect<LaneAnswer> => {
    if (Cause.isInterruptedOnly(cause)) return Effect.succeed(INTERRUPTED)
    const failure = Cause.failureOption(cause)
    const answer = failure._tag === "Some" ? answers.failure(failure.value) : undefined
    if (failure._tag === "Some" && answer !== undefined) {
      return Effect.succeed(
        failure.value instanceof Unavailable
          ? { ...answer, headers: { "retry-after": retryAfterSeconds(failure.value) } }
          : answer
      )
    }
    return Effect.as(Effect.logError("defect while serving a request", cause), internal)
  }

  const handle = (workerId: WorkerId, body: Uint8Array): Effect.Effect<LaneAnswer> =>
    Effect.flatMap(decode(body), (input) => options.input(workerId, input)).pipe(
      Effect.matchCauseEffect({
        // Written as the schema encodes it (Snapshots.ts), not through it.
        onSuccess: (accepted): Effect.Effect<LaneAnswer> =>
          Effect.succeed({
            _tag: "Answer",
            status: answers.successStatus,
            contentType: "application/json",
            body: inputAcceptedJson(accepted)
          }),
        onFailure: failed
      })
    )

  return (request) => {
    if (request.method !== method) return undefined
    const workerId = workerIdOf(request.url)
    if (workerId === undefined) return undefined
    const length = request.header("content-length")
    if (
      length === undefined || !LENGTH.test(length) || Number(length) > maxBodyBytes ||
      request.header("transfer-encoding") !== undefined || !isJsonMediaType(request.header("content-type"))
    ) return undefined
    if (refusalOf({ path: request.url, header: request.header, hostHeaders: request.hostHeaders }) !== undefined) {
      return undefined
    }
    const started = performance.now()
    return {
      _tag: "Take",
      run: (io) =>
        io.readBody((body) => {
          const interrupt = run(handle(workerId, body), {
            onExit: (exit) => {
              const answer = exit._tag === "Success" ? exit.value : INTERRUPTED
              // HttpApi counts no interrupted request either.
              if (answer !== INTERRUPTED) record(method, template, answer.status, performance.now() - started)
              io.answer(answer)
            }
          })
          // As HttpApi does: an input still waiting for its Worker is not recorded for a client that went.
          io.whenGone(() => interrupt())
        })
    }
  }
}

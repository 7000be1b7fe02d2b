/**
 * The fast lane for `GET /v1/workers/{workerId}/events` of a Worker held in
 * memory (FastLane.ts says what a lane is). HttpApi would keep the request's
 * fiber, with every middleware's continuation, alive for as long as the
 * stream lasts; here the follower is opened by one short fiber and its body
 * written by a Node `Readable` (EventStream.ts), so an idle stream is the
 * follower and its socket. The lane takes only a request HttpApi would
 * answer with a stream; if opening the follower fails (the Worker went, an
 * `after` past its end, every stream slot taken), it gives the request back
 * to HttpApi, which answers it as always.
 */
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import type { RuntimeControlService } from "../RuntimeControl.js"
import { followerBody, sseHeaders } from "./EventStream.js"
import { type FastLane, type WorkerLaneOptions, workersEndpoint } from "./FastLane.js"
import type { HeldRequests } from "./HeldRequests.js"

export interface EventsLaneOptions extends WorkerLaneOptions {
  readonly follow: NonNullable<RuntimeControlService["follow"]>
  readonly heldRequests: HeldRequests
  readonly pingMs: number
  /** Where the lane's fibers run (the server layer's services). */
  readonly runtime: Runtime.Runtime<never>
}

// What HttpApi takes as a plain decimal (`after` and `Last-Event-ID`): the rest it answers itself.
const DECIMAL = /^(?:0|[1-9][0-9]{0,14})$/

/** `after` from `?after=N` (nothing else in the query), or 0 without a query; undefined otherwise. */
const afterOf = (query: string | undefined): number | undefined => {
  if (query === undefined) return 0
  if (!query.startsWith("after=")) return undefined
  const value = query.slice("after=".length)
  return DECIMAL.test(value) ? Number(value) : undefined
}

/** The lane for the events endpoint; undefined if the API has no such endpoint. */
export const makeEventsLane = (options: EventsLaneOptions): FastLane | undefined => {
  const endpoint = workersEndpoint("events")
  if (endpoint === undefined) return undefined
  const { method, template, workerIdOf } = endpoint
  const fork = Runtime.runFork(options.runtime)
  return (request) => {
    if (request.method !== method || request.hasBody) return undefined
    const started = performance.now()
    const mark = request.url.indexOf("?")
    const path = mark === -1 ? request.url : request.url.slice(0, mark)
    const workerId = workerIdOf(path)
    if (workerId === undefined) return undefined
    const fromQuery = afterOf(mark === -1 ? undefined : request.url.slice(mark + 1))
    if (fromQuery === undefined) return undefined
    const lastEventId = request.header("last-event-id")?.trim()
    if (lastEventId !== undefined && !DECIMAL.test(lastEventId)) return undefined
    const after = lastEventId === undefined ? fromQuery : Number(lastEventId)
    if (options.refusalOf({ path, header: request.header, hostHeaders: request.hostHeaders }) !== undefined) {
      return undefined
    }
    if (options.peek(workerId) === undefined) return undefined
    return {
      _tag: "Take",
      run: (io) => {
        fork(
          Effect.flatMap(
            options.heldRequests.hold,
            (release) =>
              followerBody(options.follow(workerId, { after }), options.pingMs, release).pipe(
                Effect.onError(() => release)
              )
          ).pipe(
            Effect.match({
              // HttpApi answers it: the same error, with its status.
              onFailure: () => io.fallThrough(),
              onSuccess: (body) => {
                options.record(method, template, 200, performance.now() - started)
                io.stream(200, sseHeaders, body)
              }
            })
          )
        )
      }
    }
  }
}

/**
 * A lane below the fiber for the hottest read: `GET /v1/workers/{workerId}`
 * of a Worker held in memory. It is derived from the API's definition (the
 * endpoint's method, path template and path schema), the guard's checks as a
 * plain function and the Worker's cached JSON, and it answers only what
 * HttpApi would answer 200 with the same bytes (test/FastLane.test.ts holds
 * both side by side). Everything else (a refusal, a query, a body, a percent
 * in the path, a Worker only in the store) falls through to HttpApi as if
 * the lane were not there. The events and input endpoints have lanes of
 * their own (EventsLane.ts, InputLane.ts). docs/benchmarks.md has what they
 * save.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as Context from "effect/Context"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as AST from "effect/SchemaAST"
import type { Readable } from "node:stream"
import { type Worker, WorkerId } from "../Domain.js"
import { RuntimeApi } from "./Api.js"
import type { GuardView, Refusal } from "./Guard.js"
import { workerJson } from "./Snapshots.js"

/** What the lane reads of a request. */
export interface LaneRequest extends Omit<GuardView, "path"> {
  readonly method: string
  /** The request target as sent: path and query. */
  readonly url: string
  /** Whether it announces a body (`Content-Length` other than 0, or `Transfer-Encoding`). */
  readonly hasBody: boolean
}

/**
 * A whole answer: the server writes it with `Content-Type` and
 * `Content-Length`, then `headers` (e.g. `Retry-After`), as the platform
 * does; an empty body with neither.
 */
export interface LaneAnswer {
  readonly _tag: "Answer"
  readonly status: number
  readonly contentType: string
  readonly body: string
  readonly headers?: Readonly<Record<string, string>> | undefined
}

/** What the server offers a request the lane took and answers later. */
export interface LaneIO {
  /** Writes the status and headers, then pipes `body` to the client (destroyed if the client goes). */
  readonly stream: (status: number, headers: Readonly<Record<string, string>>, body: Readable) => void
  /** Writes a whole answer. */
  readonly answer: (answer: LaneAnswer) => void
  /**
   * Reads the request's whole body, then calls `onBody` with it; never if
   * the client goes first (its answer goes with it).
   */
  readonly readBody: (onBody: (body: Uint8Array) => void) => void
  /** Calls `onGone` if the client goes before its answer is written (HttpApi interrupts the request's fiber then). */
  readonly whenGone: (onGone: () => void) => void
  /** Gives the request to HttpApi as if the lane had not taken it; only before `stream`, `answer` and `readBody`. */
  readonly fallThrough: () => void
}

/** A request the lane takes now and answers (or gives back) later. */
export interface LaneTake {
  readonly _tag: "Take"
  readonly run: (io: LaneIO) => void
}

/** Answers a request, takes it, or (undefined) leaves it to HttpApi. */
export type FastLane = (request: LaneRequest) => LaneAnswer | LaneTake | undefined

/** The first lane that answers or takes the request. */
export const firstOf = (lanes: ReadonlyArray<FastLane>): FastLane => (request) => {
  for (const lane of lanes) {
    const result = lane(request)
    if (result !== undefined) return result
  }
  return undefined
}

/**
 * Where a server that can take a lane (src/node/HttpServer.ts) takes it:
 * `install` gives back its removal. Without this service in context the
 * HTTP layer serves everything through HttpApi.
 */
export class FastLaneSlot extends Context.Tag("worker-runtime/http/FastLaneSlot")<FastLaneSlot, {
  readonly install: (lane: FastLane) => () => void
}>() {}

/** An endpoint of the `workers` group whose path has the Worker id as its one parameter. */
export interface WorkerEndpoint {
  readonly method: string
  /** e.g. `/v1/workers/{workerId}/events`, as the request metrics name it. */
  readonly template: string
  /** The Worker id of a path (no query) this endpoint takes; undefined for any other, or when the router must decode it. */
  readonly workerIdOf: (path: string) => WorkerId | undefined
  /** What it answers, by status, as the API declares it (LaneAnswers.ts encodes them). */
  readonly successes: ReadonlyMap<number, AST.AST>
  /** Its errors, the group's and the API's, by status. */
  readonly errors: ReadonlyMap<number, AST.AST>
}

/** The schemas of `members` that have one, by status. */
const schemasOf = (members: ReadonlyMap<number, { readonly ast: Option.Option<AST.AST> }>) => {
  const out = new Map<number, AST.AST>()
  for (const [status, { ast }] of members) if (ast._tag === "Some") out.set(status, ast.value)
  return out
}

/** The path parameter, by the schema the API decodes it with. */
const decodeWorkerId = Schema.decodeOption(WorkerId)

/** A Worker id as the path has it; undefined when the router must decode it (an escape) or it is not one. */
const plainWorkerId = (id: string): WorkerId | undefined => {
  if (id === "" || id.includes("/") || id.includes("?") || id.includes("%") || id.includes("#")) return undefined
  return Option.getOrUndefined(decodeWorkerId(id))
}

/** An endpoint of the `workers` group, as the API defines it; undefined unless its one parameter is the Worker id. */
export const workersEndpoint = (name: string): WorkerEndpoint | undefined => {
  let found: WorkerEndpoint | undefined
  HttpApi.reflect(RuntimeApi, {
    onGroup: () => {},
    onEndpoint: ({ endpoint, errors, group, successes }) => {
      if (group.identifier !== "workers" || endpoint.name !== name) return
      const segments = endpoint.path.split("/")
      const params = segments.filter((segment) => segment.startsWith(":"))
      const param = segments.indexOf(":workerId")
      if (params.length !== 1 || param === -1) return
      const prefix = `${segments.slice(0, param).join("/")}/`
      const suffix = segments.slice(param + 1).map((segment) => `/${segment}`).join("")
      found = {
        method: endpoint.method,
        template: segments.map((s) => (s.startsWith(":") ? `{${s.slice(1)}}` : s)).join("/"),
        workerIdOf: (path) =>
          path.startsWith(prefix) && path.endsWith(suffix) && path.length > prefix.length + suffix.length
            ? plainWorkerId(path.slice(prefix.length, path.length - suffix.length))
            : undefined,
        successes: schemasOf(successes),
        errors: schemasOf(errors)
      }
    }
  })
  return found
}

export interface WorkerLaneOptions {
  readonly refusalOf: (view: GuardView) => Refusal | undefined
  /** `RuntimeControl.peek`: the Worker when `Runtime.get` would answer it without waiting. */
  readonly peek: (workerId: WorkerId) => Worker | undefined
  /** Counts the answer as the request metrics do (method, route template, status, milliseconds). */
  readonly record: (method: string, route: string, status: number, ms: number) => void
}

/** The lane for `GET /v1/workers/{workerId}`; undefined if the API has no such endpoint. */
export const makeWorkerLane = (options: WorkerLaneOptions): FastLane | undefined => {
  const endpoint = workersEndpoint("get")
  if (endpoint === undefined) return undefined
  const { method, template, workerIdOf } = endpoint
  return (request) => {
    if (request.method !== method || request.hasBody) return undefined
    const started = performance.now()
    const { url } = request
    // A query, a further segment, or an escape: the router's business.
    const workerId = workerIdOf(url)
    if (workerId === undefined) return undefined
    if (options.refusalOf({ path: url, header: request.header, hostHeaders: request.hostHeaders }) !== undefined) {
      return undefined
    }
    const worker = options.peek(workerId)
    if (worker === undefined) return undefined
    const body = workerJson(worker)
    options.record(method, template, 200, performance.now() - started)
    return { _tag: "Answer", status: 200, contentType: "application/json", body }
  }
}

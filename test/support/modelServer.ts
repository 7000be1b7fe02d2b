/**
 * The model server (scripts/modelServer) for Effect tests: a server on an
 * ephemeral loopback port for the scope that speaks the OpenAI Responses and
 * Anthropic Messages streaming protocols, scripted per request, recording
 * every request and whether the client closed its connection early.
 *
 *   const server = yield* makeModelServer()
 *   yield* server.script(httpError(429, { retryAfter: 1 }), reply("Hi there", { deltas: 2 }))
 *   … OpenAiClient.layer({ apiUrl: server.openAiUrl }) / AnthropicClient.layer({ apiUrl: server.anthropicUrl })
 *   yield* server.awaitClosedEarly(1)
 */
import { Context, Effect, Layer } from "effect"
import type { Script } from "../../scripts/modelServer/Script.js"
import { type ModelServerOptions, type RecordedRequest, startModelServer } from "../../scripts/modelServer/Server.js"
import { HANG_MS, type What } from "./eventually.js"

export {
  CANNED_TEXT,
  type Ending,
  type Gate,
  httpError,
  makeGate,
  replay,
  reply,
  type Script,
  type Usage,
  words
} from "../../scripts/modelServer/Script.js"
export { type Outcome, type RecordedRequest } from "../../scripts/modelServer/Server.js"
export { eventsOf, framesOf, type Protocol } from "../../scripts/modelServer/Wire.js"

export interface ModelServerService {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string
  /** The OpenAI clients' `apiUrl` (they post to `${apiUrl}/responses`). */
  readonly openAiUrl: string
  /** The Anthropic clients' `apiUrl` (they post to `${apiUrl}/v1/messages`). */
  readonly anthropicUrl: string
  /** Queues scripts for the next requests, in order; with none queued, the canned reply. */
  readonly script: (...scripts: ReadonlyArray<Script>) => Effect.Effect<void>
  readonly requests: Effect.Effect<ReadonlyArray<RecordedRequest>>
  /** Waits until `check` holds on the recorded requests (a minute of real time at most: only a hang reaches it). */
  readonly awaitRequests: (
    check: (requests: ReadonlyArray<RecordedRequest>) => boolean,
    what: What
  ) => Effect.Effect<ReadonlyArray<RecordedRequest>>
  /** Waits until `count` requests have arrived; yields them all. */
  readonly awaitCount: (count: number) => Effect.Effect<ReadonlyArray<RecordedRequest>>
  /** Waits until the client has closed `count` connections before their streams ended. */
  readonly awaitClosedEarly: (count: number) => Effect.Effect<ReadonlyArray<RecordedRequest>>
  /** How many connections the client closed before their streams ended. */
  readonly closedEarly: Effect.Effect<number>
}

export const makeModelServer = (options: Omit<ModelServerOptions, "port" | "host"> = {}) =>
  Effect.gen(function*() {
    const server = yield* Effect.acquireRelease(
      Effect.promise(() => startModelServer(options)),
      (server) => Effect.promise(() => server.close())
    )
    // The deadline is real time (a timer, not the Effect clock), so that it holds in TestClock tests too.
    const awaitRequests = (check: (requests: ReadonlyArray<RecordedRequest>) => boolean, what: What) =>
      Effect.async<ReadonlyArray<RecordedRequest>>((resume) => {
        const timer = setTimeout(
          () =>
            resume(
              Effect.dieMessage(
                `never happened: ${typeof what === "string" ? what : what()} (within ${HANG_MS / 1000} s)`
              )
            ),
          HANG_MS
        )
        const cancel = server.when(check, () => {
          clearTimeout(timer)
          resume(Effect.sync(server.requests))
        })
        return Effect.sync(() => {
          clearTimeout(timer)
          cancel()
        })
      })
    const earlyCloses = (requests: ReadonlyArray<RecordedRequest>) =>
      requests.filter((request) => request.outcome === "closed-early").length
    const service: ModelServerService = {
      url: server.url,
      openAiUrl: `${server.url}/v1`,
      anthropicUrl: server.url,
      script: (...scripts) => Effect.sync(() => server.enqueue(...scripts)),
      requests: Effect.sync(server.requests),
      awaitRequests,
      awaitCount: (count) =>
        awaitRequests((requests) => requests.length >= count, `${count} request(s) at the model server`),
      awaitClosedEarly: (count) =>
        awaitRequests(
          (requests) => earlyCloses(requests) >= count,
          `${count} connection(s) closed early by the client at the model server`
        ),
      closedEarly: Effect.sync(() => earlyCloses(server.requests()))
    }
    return service
  })

/** The model server as a service, for `layer(ModelServer.layer)` suites. */
export class ModelServer extends Context.Tag("test/ModelServer")<ModelServer, ModelServerService>() {
  static readonly layer = Layer.scoped(ModelServer, makeModelServer())
}

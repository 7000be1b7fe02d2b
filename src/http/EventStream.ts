/**
 * The events endpoint's body: a Worker's events as server-sent events
 * (docs/rest.md): `retry: 1000` first; `event: worker` frames without an id;
 * `id: <seq>` + `event: entry` frames, so that a client resumes with
 * `Last-Event-ID`; `event: delta` frames without an id (live only); a
 * `: ping` comment whenever the stream has been idle for `pingMs`. It ends
 * when the Worker's stream ends (stopped, failed, deleted, or the runtime
 * drained); a failure after the start closes it.
 */
import * as Sse from "@effect/experimental/Sse"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { Readable } from "node:stream"
import type { WorkerEvent } from "../Domain.js"
import type { Follow } from "../Events.js"
import { deltaJson, entryJson, workerJson } from "./Snapshots.js"

export const DEFAULT_PING_MS = 15_000
const SSE_HEADERS = { "cache-control": "no-cache", "x-accel-buffering": "no" }
const SSE_CONTENT_TYPE = "text/event-stream"
export const RETRY_MS = 1000

/**
 * One event as an SSE frame, written by `@effect/experimental`'s encoder: a
 * worker event and a delta without an id, an entry with its seq as id. JSON
 * never holds a raw newline, so `data` is one line.
 */
export const frameOf = (event: WorkerEvent): string =>
  Sse.encoder.write(
    event.type === "worker"
      ? { _tag: "Event", event: "worker", id: undefined, data: workerJson(event.worker) }
      : event.type === "delta"
      ? { _tag: "Event", event: "delta", id: undefined, data: deltaJson(event.turn, event.text) }
      : {
        _tag: "Event",
        event: "entry",
        id: String(event.entry.seq),
        data: entryJson(event.entry)
      }
  )

const encoder = new TextEncoder()
const RETRY = encoder.encode(
  Sse.encoder.write(new Sse.Retry({ duration: Duration.millis(RETRY_MS), lastEventId: undefined }))
)
// Written by hand: the SSE encoder writes events and `retry`, not comments.
const PING = encoder.encode(": ping\n\n")

/**
 * The events as a Node `Readable` that pulls the follower itself, when the
 * socket wants more: a pull (a fiber) only when there is something to read
 * or catch up; an idle follower is waited on with a callback, no fiber
 * (`Follow.whenReady`). A `: ping` whenever it has waited `pingMs`. An idle
 * stream is this object, its follower's listener and the socket
 * (docs/benchmarks.md, idle stream heap).
 */
class FollowerReadable extends Readable {
  #started = false
  #pending: Fiber.RuntimeFiber<Chunk.Chunk<WorkerEvent>, Option.Option<unknown>> | undefined = undefined
  #waiting = false
  #timer: ReturnType<typeof setTimeout> | undefined = undefined

  constructor(
    private readonly follow: Follow,
    private readonly fork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.RuntimeFiber<A, E>,
    private readonly pingMs: number,
    /** Runs once, when the stream is done (ended, failed or the client gone), after the pull is interrupted. */
    private readonly close: (pending: Fiber.RuntimeFiber<unknown, unknown> | undefined) => void
  ) {
    super()
  }

  override _read(): void {
    if (!this.#started) {
      this.#started = true
      this.push(RETRY)
      return
    }
    if (this.#pending !== undefined || this.#waiting) return
    if (this.follow.idle()) {
      this.#waiting = true
      this.#armPing()
      this.follow.whenReady(() =>
        // Not inside the publisher's loop: it is the Worker's actor, committing.
        queueMicrotask(() => {
          this.#waiting = false
          clearTimeout(this.#timer)
          if (!this.destroyed) this._read()
        })
      )
      return
    }
    const fiber = this.fork(this.follow.pull)
    this.#pending = fiber
    this.#armPing()
    fiber.addObserver((exit) => {
      clearTimeout(this.#timer)
      this.#pending = undefined
      if (this.destroyed) return
      // The end of the events, or a failure once the stream has started (which can only close it).
      if (Exit.isFailure(exit)) {
        this.push(null)
        return
      }
      let text = ""
      for (const event of exit.value) text += frameOf(event)
      // Nothing to write: pull again, as a push of nothing would not ask for more.
      if (text === "") this._read()
      else this.push(encoder.encode(text))
    })
  }

  #armPing() {
    this.#timer = setTimeout(() => {
      if ((this.#pending === undefined && !this.#waiting) || this.destroyed) return
      this.push(PING)
      this.#armPing()
    }, this.pingMs)
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.#timer)
    const pending = this.#pending
    this.#pending = undefined
    this.close(pending)
    callback(error)
  }
}

/**
 * A follower opened here (its errors are the caller's) as a body to pipe to
 * the socket. The follower's scope closes, and `release` runs, when the body
 * is done, however it ends.
 */
export const followerBody = <E>(
  open: Effect.Effect<Follow, E, Scope.Scope>,
  pingMs: number,
  release: Effect.Effect<void>
): Effect.Effect<Readable, E> =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const fork = Runtime.runFork(runtime)
    const scope = yield* Scope.make()
    const follow = yield* Effect.onError(
      Scope.extend(open, scope),
      (cause) => Scope.close(scope, Exit.failCause(cause))
    )
    return new FollowerReadable(follow, fork, pingMs, (pending) => {
      fork(Effect.zipRight(
        pending === undefined ? Effect.void : Fiber.interrupt(pending),
        Effect.zipRight(Scope.close(scope, Exit.void), release)
      ))
    })
  })

/**
 * A Stream of events as a follower that is never idle (each pull waits in
 * its fiber): for a Runtime that offers no `RuntimeControl.follow` (a proxy
 * to another runtime). The stream starts at its first pull, after the
 * answer's headers: its errors then can only close the stream.
 */
export const streamFollow = <E>(events: Stream.Stream<WorkerEvent, E>): Effect.Effect<Follow, never, Scope.Scope> =>
  Effect.map(Stream.toPull(events), (pull) => ({
    // Its failure after the start ends the stream, as a follower's does.
    pull: Effect.mapError(pull, () => Option.none()),
    idle: () => false,
    whenReady: () => {}
  }))

/** The events endpoint's answer from a follower opened here: a `Raw` body the platform pipes to the socket. */
export const followerResponse = <E>(
  open: Effect.Effect<Follow, E, Scope.Scope>,
  pingMs: number,
  release: Effect.Effect<void>
): Effect.Effect<HttpServerResponse.HttpServerResponse, E> =>
  Effect.map(
    followerBody(open, pingMs, release),
    (body) => HttpServerResponse.raw(body, { contentType: SSE_CONTENT_TYPE, headers: SSE_HEADERS })
  )

/** The headers of an events answer, in the order the platform writes them. */
export const sseHeaders: Readonly<Record<string, string>> = { ...SSE_HEADERS, "content-type": SSE_CONTENT_TYPE }

/**
 * The cap on requests held open (`maxStreams`, `--max-streams`): events
 * streams and long polls on a running turn. Past it, one more is answered
 * 503 `Unavailable` with `Retry-After` at once, never reset, never left
 * hanging; a slot is free again once its request ends, whichever side ends
 * it. A long poll that holds nothing (`waitMs=0`, a turn already ended) is
 * never refused.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, type Scope } from "effect"
import { makeEchoEngine } from "../src/index.js"
import { eventuallyLive, within } from "./support/eventually.js"
import { baseUrl, httpServer } from "./support/httpRuntime.js"
import { raw } from "./support/raw.js"

const profiles = { default: makeEchoEngine(), slow: makeEchoEngine({ delayMs: 60_000 }) }

const server = (maxStreams: number) => httpServer({ profiles }, undefined, { maxStreams })

interface Answer {
  readonly status: number
  readonly retryAfter: string | null
  readonly json: unknown
}

/**
 * A request whose answer is awaited in the background: `settled` says
 * whether it came, `answer` waits for it, `abort` is the client leaving.
 * An events stream that is answered is aborted at once (its status is the
 * answer): nothing here stays open by mistake.
 */
const start = (url: string) => {
  const controller = new AbortController()
  let settled = false
  const promise = fetch(url, { signal: controller.signal }).then(async (response) => {
    const retryAfter = response.headers.get("retry-after")
    if (response.headers.get("content-type")?.includes("text/event-stream") === true) {
      controller.abort()
      return { status: response.status, retryAfter, json: undefined }
    }
    const text = await response.text()
    return { status: response.status, retryAfter, json: JSON.parse(text) as unknown }
  }).finally(() => {
    settled = true
  })
  // An aborted request's rejection is seen by whoever awaits `answer`, never unhandled.
  promise.catch(() => {})
  return {
    settled: () => settled,
    answer: Effect.promise((): Promise<Answer> => promise).pipe(within(`the answer of ${url}`)),
    abort: () => controller.abort()
  }
}

const request = (url: string) => start(url).answer

/**
 * An events stream held open until the scope ends (or `close`): its status
 * once the first `event: worker` frame arrived (a refusal is JSON, read to
 * its end).
 */
const openStream = (url: string, workerId: string): Effect.Effect<
  { readonly status: number; readonly close: () => void },
  never,
  Scope.Scope
> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const controller = new AbortController()
      const response = await fetch(`${url}/v1/workers/${workerId}/events`, { signal: controller.signal })
      const reader = response.body!.getReader()
      const decoder = new TextDecoder()
      let text = ""
      while (!text.includes("event: worker")) {
        const { done, value } = await reader.read()
        if (done) break
        text += decoder.decode(value, { stream: true })
      }
      return { status: response.status, close: () => controller.abort() }
    }).pipe(within(`the first frame of the events of ${workerId}`)),
    (stream) => Effect.sync(stream.close)
  )

/**
 * The events of a stopped Worker read to their end: the server ends the
 * stream, and frees its slot before the end reaches the client, so a probe
 * that gets a slot never keeps it. 503 says every slot is held.
 */
const probe = (url: string, stoppedId: string) =>
  Effect.promise(async () => {
    const response = await fetch(`${url}/v1/workers/${stoppedId}/events`)
    await response.text()
    return response.status
  }).pipe(within(`the events of the stopped Worker ${stoppedId}`))

const create = (url: string, profile = "default") =>
  Effect.map(raw(url, "/v1/workers", { method: "POST", body: { profile } }), (r) => r.json as { id: string })

/** A Worker of the slow profile with its turn 1 running (it lasts a minute unless cancelled). */
const runningTurn = (url: string) =>
  Effect.gen(function*() {
    const worker = yield* create(url, "slow")
    const input = yield* raw(url, `/v1/workers/${worker.id}/input`, { method: "POST", body: { content: "hi" } })
    expect(input.status).toBe(202)
    return worker.id
  })

const stopped = (url: string) =>
  Effect.gen(function*() {
    const worker = yield* create(url)
    expect((yield* raw(url, `/v1/workers/${worker.id}/stop`, { method: "POST" })).status).toBe(200)
    return worker.id
  })

/**
 * A long poll on `turnUrl` that holds the only slot (cap 1): started, then
 * probes until one is refused while it is still waiting. A probe in flight
 * when it arrived may have got the slot first and the poll been refused;
 * then it starts again.
 */
const heldLongPoll = (url: string, turnUrl: string, stoppedId: string) =>
  Effect.gen(function*() {
    for (;;) {
      const poll = start(turnUrl)
      const held = yield* eventuallyLive(
        Effect.gen(function*() {
          if (poll.settled()) return "settled" as const
          return (yield* probe(url, stoppedId)) === 503 ? "held" as const : "not yet" as const
        }),
        (state) => state !== "not yet",
        "a long poll holding the slot"
      )
      if (held === "held") return poll
      expect((yield* poll.answer).status).toBe(503)
    }
  })

const expectUnavailable = (answer: Answer) => {
  expect(answer.status).toBe(503)
  expect(Number(answer.retryAfter)).toBeGreaterThanOrEqual(1)
  expect(answer.json).toMatchObject({ _tag: "Unavailable", message: expect.any(String), retryAfterMs: 1000 })
}

describe("the cap on events streams and long polls", () => {
  it.live("past the cap, one more stream or long poll is 503 with Retry-After; a closed stream frees its slot", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      const worker = yield* create(url)
      const slow = yield* runningTurn(url)
      // An ended turn, for a long poll that holds nothing.
      yield* raw(url, `/v1/workers/${worker.id}/input`, { method: "POST", body: { content: "hi" } })
      const ended = yield* request(`${url}/v1/workers/${worker.id}/turns/1?waitMs=60000`)
      expect(ended.json).toMatchObject({ status: "completed" })

      const streams = [
        yield* openStream(url, worker.id),
        yield* openStream(url, worker.id),
        yield* openStream(url, slow)
      ]
      expect(streams.map((stream) => stream.status)).toEqual([200, 200, 200])

      expectUnavailable(yield* request(`${url}/v1/workers/${worker.id}/events`))
      expectUnavailable(yield* request(`${url}/v1/workers/${slow}/turns/1?waitMs=60000`))
      // Held nothing, refused nothing: no wait, or a turn already ended.
      const now = yield* request(`${url}/v1/workers/${slow}/turns/1?waitMs=0`)
      expect(now.status).toBe(200)
      expect(now.json).toMatchObject({ turn: 1, status: "running" })
      expect((yield* request(`${url}/v1/workers/${slow}/turns/1`)).status).toBe(200)
      const done = yield* request(`${url}/v1/workers/${worker.id}/turns/1?waitMs=60000`)
      expect(done.status).toBe(200)
      expect(done.json).toMatchObject({ status: "completed" })
      // Errors before a slot is taken are the usual ones.
      expect((yield* request(`${url}/v1/workers/nope/events`)).status).toBe(404)

      // The client leaves: its slot is free again.
      streams[0]!.close()
      yield* eventuallyLive(
        Effect.flatMap(openStream(url, worker.id), (stream) => Effect.succeed(stream.status)),
        (status) => status === 200,
        "a new events stream after one was closed"
      )
      expectUnavailable(yield* request(`${url}/v1/workers/${worker.id}/events`))
    }).pipe(Effect.scoped, Effect.provide(server(3))))

  it.live("a stream the server ends, a long poll answered and one whose client left free their slots", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      const done = yield* stopped(url)
      // The server ends the stream: the slot is free before the client sees the end.
      for (let i = 0; i < 3; i++) expect(yield* probe(url, done)).toBe(200)

      // A long poll answered because its turn ended.
      const slow = yield* runningTurn(url)
      const poll = yield* heldLongPoll(url, `${url}/v1/workers/${slow}/turns/1?waitMs=60000`, done)
      expectUnavailable(yield* request(`${url}/v1/workers/${done}/events`))
      expect((yield* raw(url, `/v1/workers/${slow}/cancel`, { method: "POST" })).status).toBe(200)
      const answered = yield* poll.answer
      expect(answered.status).toBe(200)
      expect(answered.json).toMatchObject({ turn: 1, status: "cancelled" })
      expect(yield* probe(url, done)).toBe(200)

      // A long poll whose client left.
      yield* raw(url, `/v1/workers/${slow}/input`, { method: "POST", body: { content: "again" } })
      const left = yield* heldLongPoll(url, `${url}/v1/workers/${slow}/turns/2?waitMs=60000`, done)
      left.abort()
      yield* eventuallyLive(probe(url, done), (status) => status === 200, "the slot of a long poll whose client left")
    }).pipe(Effect.scoped, Effect.provide(server(1))))
})

/**
 * The events endpoint's body: a Worker's events as server-sent events
 * (docs/rest.md): `retry: 1000` first; `event: worker` frames without an id;
 * `id: <seq>` + `event: entry` frames, so that a client resumes with
 * `Last-Event-ID`; a `: ping` comment whenever the stream has been idle for
 * `pingMs`. It ends when the Worker's stream ends (stopped, failed, deleted,
 * or the runtime drained); a failure after the start closes it.
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { TranscriptEntry, Worker, type WorkerEvent } from "../Domain.js"

export const DEFAULT_PING_MS = 15_000
export const RETRY_MS = 1000

const encodeWorker = Schema.encodeSync(Worker)
const encodeEntry = Schema.encodeSync(TranscriptEntry)

/** One event as an SSE frame. JSON never holds a raw newline, so `data` is one line. */
export const frameOf = (event: WorkerEvent): string =>
  event.type === "worker"
    ? `event: worker\ndata: ${JSON.stringify(encodeWorker(event.worker))}\n\n`
    : `id: ${event.entry.seq}\nevent: entry\ndata: ${JSON.stringify(encodeEntry(event.entry))}\n\n`

const encoder = new TextEncoder()

export const eventStreamResponse = <E>(
  events: Stream.Stream<WorkerEvent, E>,
  pingMs: number
): HttpServerResponse.HttpServerResponse => {
  const frames = Stream.map(events, (event) => frameOf(event))
  const pings = Stream.repeatEffectWithSchedule(Effect.succeed(": ping\n\n"), Schedule.spaced(pingMs)).pipe(
    Stream.drop(1)
  )
  const body = Stream.make(`retry: ${RETRY_MS}\n\n`).pipe(
    Stream.concat(Stream.merge(frames, pings, { haltStrategy: "left" })),
    // A failure once the stream has started can only close it.
    Stream.catchAll(() => Stream.empty),
    Stream.map((text) => encoder.encode(text))
  )
  return HttpServerResponse.stream(body, {
    contentType: "text/event-stream",
    headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
  })
}

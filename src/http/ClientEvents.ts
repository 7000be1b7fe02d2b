/**
 * `Runtime.events` over HTTP: the events endpoint's server-sent events,
 * parsed with `@effect/experimental`'s SSE parser, as the same `Stream` an
 * embedded Runtime gives. A dropped connection, a 503 or a refused
 * connection is retried with backoff and `Last-Event-ID` = the last seq
 * delivered, so the stream survives a runtime restart (durable store), or
 * moves on to the next of several URLs (`http` fails over), with no gap and
 * no duplicate of entries; deltas sent while it was disconnected are
 * missed (they are live only; the turn's entry holds their text). The retries
 * are a budget: spent, the stream fails with `Unavailable`.
 */
import { makeParser } from "@effect/experimental/Sse"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { TranscriptEntry, Worker, type WorkerEvent, type WorkerId } from "../Domain.js"
import { InvalidInput, Unavailable, UnknownWorker } from "../Errors.js"
import { RETRY_AFTER_MS } from "../RuntimeOptions.js"

export interface ReconnectOptions {
  /** Attempts in a row that may fail before the stream fails with `Unavailable` (default 30). */
  readonly attempts?: number | undefined
  /** The first retry's delay; each next one doubles, up to `maxDelay` (default 100 ms). */
  readonly baseDelay?: Duration.DurationInput | undefined
  /** The longest delay between attempts (default 2 seconds). */
  readonly maxDelay?: Duration.DurationInput | undefined
}

const decodeWorker = Schema.decodeUnknownEither(Schema.parseJson(Worker))
const decodeEntry = Schema.decodeUnknownEither(Schema.parseJson(TranscriptEntry))
const decodeDelta = Schema.decodeUnknownEither(
  Schema.parseJson(Schema.Struct({ turn: Schema.Int.pipe(Schema.positive()), text: Schema.String }))
)
const decodeError = Schema.decodeUnknownEither(Schema.parseJson(Schema.Union(UnknownWorker, InvalidInput)))

/** Worth another attempt: the runtime may be restarting. */
class Retryable extends Schema.TaggedError<Retryable>()("Retryable", { message: Schema.String }) {}

const isTerminal = (worker: Worker) => worker.status === "stopped" || worker.status === "failed"

/** The SSE frames of a body as Worker events, in order. */
const parse = <E>(body: Stream.Stream<Uint8Array, E>): Stream.Stream<WorkerEvent, E | Retryable> =>
  Stream.suspend(() => {
    const decoder = new TextDecoder()
    let parsed: Array<WorkerEvent> = []
    let broken: string | undefined
    const parser = makeParser((event) => {
      if (event._tag !== "Event") return
      if (event.event === "worker") {
        const worker = decodeWorker(event.data)
        if (Either.isRight(worker)) parsed.push({ type: "worker", worker: worker.right })
        else broken = "a worker event that is not a Worker"
      } else if (event.event === "entry") {
        const entry = decodeEntry(event.data)
        if (Either.isRight(entry)) parsed.push({ type: "entry", entry: entry.right })
        else broken = "an entry event that is not a TranscriptEntry"
      } else if (event.event === "delta") {
        const delta = decodeDelta(event.data)
        if (Either.isRight(delta)) parsed.push({ type: "delta", ...delta.right })
        else broken = "a delta event that is not a turn and a text"
      }
    })
    // The parser scans its buffer from the start for every line it takes
    // out of one `feed`, so a chunk of many lines (a catch-up arrives as tens
    // of kilobytes at once) would cost time quadratic in its size. Fed a line
    // at a time, it is linear.
    const feedLines = (text: string) => {
      let start = 0
      for (let newline = text.indexOf("\n"); newline >= 0; newline = text.indexOf("\n", start)) {
        const error = parser.feed(text.slice(start, newline + 1))
        if (error !== undefined) return error
        start = newline + 1
      }
      return start < text.length ? parser.feed(text.slice(start)) : undefined
    }
    return body.pipe(
      Stream.mapConcatEffect((bytes) => {
        const error = feedLines(decoder.decode(bytes, { stream: true }))
        const out = parsed
        parsed = []
        if (error !== undefined || broken !== undefined) {
          return Effect.fail(new Retryable({ message: `the events stream is malformed: ${broken ?? error?.message}` }))
        }
        return Effect.succeed(out)
      })
    )
  })

/**
 * Follows at `baseUrl`, or, given `""`, at whatever URL `http` puts in front
 * of the path (the client's, which fails over between several).
 */
export const followOverHttp = (
  http: HttpClient.HttpClient,
  baseUrl: string,
  requestTimeout: Duration.Duration,
  reconnect: ReconnectOptions = {}
) =>
(workerId: WorkerId, after: number): Stream.Stream<WorkerEvent, UnknownWorker | InvalidInput | Unavailable> => {
  const url = `${baseUrl.replace(/\/$/, "")}/v1/workers/${encodeURIComponent(workerId)}/events`
  const attempts = reconnect.attempts ?? 30
  const retrySchedule = Schedule.exponential(reconnect.baseDelay ?? "100 millis").pipe(
    Schedule.union(Schedule.spaced(reconnect.maxDelay ?? "2 seconds")),
    Schedule.intersect(Schedule.recurs(attempts))
  )
  // A run's own cursor: every run of the Stream starts at `after`, also two at once.
  return Stream.suspend(() => {
    let delivered = after
    let ended = false

    /** One connection's response, or why there is none. */
    const open = (first: boolean) =>
      Effect.gen(function*() {
        const request = HttpClientRequest.get(url).pipe(
          HttpClientRequest.setHeader("accept", "text/event-stream"),
          first
            ? HttpClientRequest.setUrlParam("after", String(delivered))
            : HttpClientRequest.setHeader("last-event-id", String(delivered))
        )
        const response: HttpClientResponse.HttpClientResponse = yield* http.execute(request).pipe(
          Effect.timeoutFail({
            duration: requestTimeout,
            onTimeout: () => new Retryable({ message: "the runtime did not answer in time" })
          }),
          Effect.catchTags({
            RequestError: (error) => Effect.fail(new Retryable({ message: error.message })),
            ResponseError: (error) => Effect.fail(new Retryable({ message: error.message }))
          })
        )
        if (response.status === 200) return response
        // The body through arrayBuffer: the client's own checks may have read it already, and cached it.
        const text = yield* response.arrayBuffer.pipe(
          Effect.map((bytes) => new TextDecoder().decode(bytes)),
          Effect.orElseSucceed(() => "")
        )
        const declared = decodeError(text)
        if (Either.isRight(declared)) return yield* Effect.fail(declared.right)
        return yield* new Retryable({ message: `the runtime answered ${response.status}` })
      }).pipe(Effect.scoped)

    const connection = (first: boolean): Stream.Stream<WorkerEvent, UnknownWorker | InvalidInput | Unavailable> =>
      Stream.unwrapScoped(
        open(first).pipe(
          Effect.map((response) => parse(response.stream)),
          Effect.retry({ schedule: retrySchedule, while: (error) => error instanceof Retryable })
        ).pipe(
          Effect.catchTag("Retryable", (error) =>
            Effect.fail(
              new Unavailable({
                message: `The events stream gave up after ${attempts} attempts to reconnect: ${error.message}`,
                retryAfterMs: RETRY_AFTER_MS
              })
            )),
          Effect.map((events) =>
            events.pipe(
              Stream.filter((event) => {
                if (event.type === "worker") {
                  if (isTerminal(event.worker) && delivered >= event.worker.lastSeq) ended = true
                  return true
                }
                // Live only: deltas from a gap between connections are not sent again.
                if (event.type === "delta") return true
                // Entries already delivered come again after a reconnect: skip them.
                if (event.entry.seq <= delivered) return false
                delivered = event.entry.seq
                return true
              }),
              // A connection that drops mid-stream is reconnected below, like one that ends early.
              Stream.catchTag("Retryable", () => Stream.empty),
              Stream.catchTag("ResponseError", () => Stream.empty)
            )
          )
        )
      )

    const from = (first: boolean): Stream.Stream<WorkerEvent, UnknownWorker | InvalidInput | Unavailable> =>
      Stream.concat(
        connection(first),
        // The server closed the stream before the end (it drained): reconnect.
        Stream.suspend(() => (ended ? Stream.empty : from(false)))
      )

    return from(true)
  })
}

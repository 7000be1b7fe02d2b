/**
 * What only HTTP has of the v2 contract: the events stream's framing
 * (`retry`, `event`, `id`, `: ping`), `Last-Event-ID`, streams closed when
 * the runtime drains, the `Idempotency-Key` header and 200 for a known key,
 * and the client's create that survives a lost answer.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Duration, Effect, Exit, Layer, Stream } from "effect"
import { createServer as createHttpServer } from "node:http"
import { createConnection, createServer, type Socket } from "node:net"
import { followOverHttp } from "../src/http/ClientEvents.js"
import { frameOf } from "../src/http/EventStream.js"
import { RuntimeHttpClientLive } from "../src/http/index.js"
import {
  makeEchoEngine,
  Runtime,
  RuntimeControl,
  RuntimeId,
  type Worker,
  type WorkerEvent,
  WorkerId
} from "../src/index.js"
import { within } from "./support/eventually.js"
import { baseUrl, httpServer } from "./support/httpRuntime.js"
import { listenScoped } from "./support/listen.js"
import { raw } from "./support/raw.js"

const profiles = { default: makeEchoEngine(), slow: makeEchoEngine({ delayMs: 60_000 }) }

/**
 * The body of an events stream, read until it ends, or until `until` holds on
 * what arrived (then the request is aborted); `ended` says which. Only a hang
 * reaches the deadline (`HANG_MS`), and the test then fails.
 */
const readEvents = (
  url: string,
  headers: Record<string, string> = {},
  options: { readonly until?: (text: string) => boolean; readonly onText?: (text: string) => void } = {}
) =>
  Effect.promise(async () => {
    const controller = new AbortController()
    const response = await fetch(url, { headers, signal: controller.signal })
    let text = ""
    let ended = false
    const reader = response.body!.getReader()
    const decoder = new TextDecoder()
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) {
          ended = true
          break
        }
        text += decoder.decode(value, { stream: true })
        options.onText?.(text)
        if (options.until?.(text) === true) {
          controller.abort()
          break
        }
      }
    } catch {
      // aborted: what arrived so far
    }
    return { status: response.status, contentType: response.headers.get("content-type"), text, ended }
  }).pipe(within(() => `the events stream of ${url} ending`))

const create = (url: string, profile = "default") =>
  Effect.map(raw(url, "/v1/workers", { method: "POST", body: { profile } }), (r) => r.json as { id: string })

describe("events over HTTP", () => {
  it.live("frames: retry first, worker events without id, entries with their seq as id; ends after stop", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      const worker = yield* create(url)
      yield* raw(url, `/v1/workers/${worker.id}/input`, { method: "POST", body: { content: "hi" } })
      yield* raw(url, `/v1/workers/${worker.id}/turns/1?waitMs=60000`)
      yield* raw(url, `/v1/workers/${worker.id}/stop`, { method: "POST" })
      const stream = yield* readEvents(`${url}/v1/workers/${worker.id}/events`)
      expect(stream.status).toBe(200)
      expect(stream.contentType).toContain("text/event-stream")
      const frames = stream.text.split("\n\n").filter((frame) => frame !== "")
      expect(frames[0]).toBe("retry: 1000")
      expect(frames[1]).toMatch(/^event: worker\ndata: \{.*"status":"stopped"/)
      expect(frames.slice(2).map((frame) => frame.split("\n").slice(0, 2).join(" "))).toEqual([
        "id: 1 event: entry",
        "id: 2 event: entry",
        "id: 3 event: entry",
        "id: 4 event: entry"
      ])
      const entry = JSON.parse(frames[2]!.split("\n")[2]!.slice("data: ".length))
      expect(entry).toMatchObject({ seq: 1, role: "user", content: "hi" })
      const resumed = yield* readEvents(`${url}/v1/workers/${worker.id}/events?after=0`, { "last-event-id": "2" })
      expect(resumed.text.match(/^id: \d+/gm)).toEqual(["id: 3", "id: 4"])
      const unknown = yield* raw(url, "/v1/workers/nope/events")
      expect(unknown.status).toBe(404)
      expect(unknown.json).toMatchObject({ _tag: "UnknownWorker" })
      const bad = yield* raw(url, `/v1/workers/${worker.id}/events`, { headers: { "last-event-id": "x" } })
      expect(bad.status).toBe(400)
      // Past the last entry (4): it would skip entries written later up to it.
      const ahead = yield* raw(url, `/v1/workers/${worker.id}/events`, { headers: { "last-event-id": "5" } })
      expect(ahead.status).toBe(400)
      expect(ahead.json).toMatchObject({ _tag: "InvalidInput" })
      expect((yield* raw(url, `/v1/workers/${worker.id}/events?after=9`)).status).toBe(400)
    }).pipe(Effect.provide(httpServer({ profiles }))))

  it.live("pings an idle stream, and closes open streams when the runtime drains", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      const control = yield* RuntimeControl
      const worker = yield* create(url)
      const idle = yield* readEvents(`${url}/v1/workers/${worker.id}/events`, {}, {
        until: (text) => text.includes(": ping\n\n")
      })
      expect(idle.ended).toBe(false)
      const opened = yield* Deferred.make<void>()
      const open = yield* Effect.fork(readEvents(`${url}/v1/workers/${worker.id}/events`, {}, {
        onText: (text) => {
          if (text.includes("event: worker")) Deferred.unsafeDone(opened, Exit.void)
        }
      }))
      yield* Deferred.await(opened)
      yield* control.drain
      const closed = yield* open
      // Ended by the runtime (the drain), not by this side.
      expect(closed.ended).toBe(true)
      expect(closed.text).toContain("event: worker")
    }).pipe(Effect.provide(httpServer({ profiles }, undefined, { ssePingMs: 50 }))))
})

describe("idempotent create over HTTP", () => {
  it.live("Idempotency-Key: 201 then 200 with the same Worker; header and body differing is 400", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      const post = (headers: Record<string, string>, body: Record<string, unknown> = {}) =>
        raw(url, "/v1/workers", { method: "POST", body, headers })
      const first = yield* post({ "idempotency-key": "k-1" })
      expect(first.status).toBe(201)
      const again = yield* post({ "idempotency-key": "k-1" })
      expect(again.status).toBe(200)
      expect(again.json).toEqual(first.json)
      const inBody = yield* post({}, { idempotencyKey: "k-1" })
      expect(inBody.status).toBe(200)
      expect((yield* post({ "idempotency-key": "k-1" }, { idempotencyKey: "k-2" })).status).toBe(400)
      expect((yield* post({ "idempotency-key": "k-1" }, { metadata: { a: "b" } })).status).toBe(400)
      const racing = yield* Effect.forEach(
        Array.from({ length: 50 }),
        () => post({ "idempotency-key": "race" }),
        { concurrency: "unbounded" }
      )
      expect(racing.filter((response) => response.status === 201)).toHaveLength(1)
      expect(racing.filter((response) => response.status === 200)).toHaveLength(49)
      expect(new Set(racing.map((response) => (response.json as { id: string }).id)).size).toBe(1)
    }).pipe(Effect.provide(httpServer({ profiles }))))

  it.scopedLive("the client's create makes exactly one Worker when the first answer is lost", () =>
    Effect.gen(function*() {
      const target = new URL(yield* baseUrl)
      // A proxy that drops the answer to the first request it forwards.
      let dropped = false
      const sockets: Array<Socket> = []
      const proxyPort = yield* listenScoped(
        createServer((client) => {
          const upstream = createConnection(Number(target.port), target.hostname)
          sockets.push(client, upstream)
          client.pipe(upstream)
          upstream.on("data", (chunk) => {
            if (!dropped) {
              dropped = true
              client.destroy()
              upstream.destroy()
              return
            }
            client.write(chunk)
          })
          upstream.on("end", () => client.end())
          client.on("error", () => upstream.destroy())
          upstream.on("error", () => client.destroy())
        }),
        () => sockets.forEach((socket) => socket.destroy())
      )
      const worker = yield* Effect.flatMap(Runtime, (rt) => rt.create({ metadata: { via: "proxy" } })).pipe(
        Effect.provide(
          RuntimeHttpClientLive({ baseUrl: `http://127.0.0.1:${proxyPort}` }).pipe(
            Layer.provide(FetchHttpClient.layer)
          )
        )
      )
      expect(dropped).toBe(true)
      const list = (yield* raw(target.origin, "/v1/workers")).json as { workers: Array<{ id: string }> }
      expect(list.workers.map((w) => w.id)).toEqual([worker.id])
    }).pipe(Effect.provide(httpServer({ profiles }))))
})

/** What a run of an events stream delivered: its entries' seq and content, in order. */
const entriesOf = (events: Chunk.Chunk<WorkerEvent>) =>
  Chunk.toReadonlyArray(events).flatMap((event) =>
    event.type === "entry" ? [`${event.entry.seq} ${event.entry.content}`] : []
  )

describe("the client's events stream", () => {
  it.live("one events Stream value, run twice (one run after the other, then both at once), delivers the same entries", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      const worker = yield* create(url)
      yield* raw(url, `/v1/workers/${worker.id}/input`, { method: "POST", body: { content: "hi" } })
      yield* raw(url, `/v1/workers/${worker.id}/turns/1?waitMs=60000`)
      yield* raw(url, `/v1/workers/${worker.id}/stop`, { method: "POST" })
      const expected = ["1 hi", expect.any(String), expect.any(String), expect.any(String)]
      // Through the Runtime service, as an application gets it.
      const viaRuntime = yield* Effect.flatMap(Runtime, (rt) => {
        const stream = rt.events(WorkerId.make(worker.id), { after: 0 })
        return Effect.all([
          Stream.runCollect(stream),
          Stream.runCollect(stream),
          Effect.all([Stream.runCollect(stream), Stream.runCollect(stream)], { concurrency: "unbounded" })
        ])
      }).pipe(Effect.provide(RuntimeHttpClientLive({ baseUrl: url }).pipe(Layer.provide(FetchHttpClient.layer))))
      // The follower's own Stream value, which keeps the cursor of a run.
      const follow = followOverHttp(yield* HttpClient.HttpClient, url, Duration.seconds(30))
      const stream = follow(WorkerId.make(worker.id), 0)
      const direct = yield* Effect.all([
        Stream.runCollect(stream),
        Stream.runCollect(stream),
        Effect.all([Stream.runCollect(stream), Stream.runCollect(stream)], { concurrency: "unbounded" })
      ])
      for (
        const [via, [first, second, [third, fourth]]] of [["Runtime.events", viaRuntime], ["follower", direct]] as const
      ) {
        expect(entriesOf(first), `${via}: the first run`).toEqual(expected)
        expect(entriesOf(second), `${via}: the second run`).toEqual(entriesOf(first))
        expect(entriesOf(third), `${via}: a concurrent run`).toEqual(entriesOf(first))
        expect(entriesOf(fourth), `${via}: the other concurrent run`).toEqual(entriesOf(first))
      }
    }).pipe(Effect.provide(Layer.merge(httpServer({ profiles }), FetchHttpClient.layer))))

  it.scopedLive(
    "the client takes 150,000 entries written at once, in order (the SSE parser fed a line at a time)",
    () =>
      Effect.gen(function*() {
        // A catch-up arrives as large chunks of many frames. The SSE parser
        // rescans its buffer for every line of one feed: fed whole chunks, this
        // body (450,000 lines, 15 MB in one write) would take minutes.
        const count = 150_000
        const at = "2026-11-24T12:00:00.000Z"
        const worker: Worker = {
          id: WorkerId.make("w-catch-up"),
          runtimeId: RuntimeId.make("r-1"),
          profile: "default",
          status: "busy",
          createdAt: at,
          updatedAt: at,
          turn: 1,
          lastSeq: count,
          metadata: {},
          queued: 0
        }
        const frames = [`retry: 1000\n\n`, frameOf({ type: "worker", worker })]
        for (let seq = 1; seq <= count; seq++) {
          frames.push(frameOf({ type: "entry", entry: { seq, at, role: "worker", content: `line ${seq}`, turn: 1 } }))
        }
        frames.push(frameOf({ type: "worker", worker: { ...worker, status: "stopped", stopReason: "stopped" } }))
        const body = frames.join("")
        const port = yield* listenScoped(createHttpServer((_, response) => {
          response.writeHead(200, { "content-type": "text/event-stream" })
          response.end(body)
        }))
        const events = yield* Effect.flatMap(Runtime, (rt) => Stream.runCollect(rt.events(worker.id))).pipe(
          Effect.provide(
            RuntimeHttpClientLive({ baseUrl: `http://127.0.0.1:${port}` }).pipe(Layer.provide(FetchHttpClient.layer))
          )
        )
        const seqs = Chunk.toReadonlyArray(events).flatMap((event) => event.type === "entry" ? [event.entry.seq] : [])
        expect(seqs).toEqual(Array.from({ length: count }, (_, i) => i + 1))
        expect(Chunk.last(events)).toMatchObject({
          _tag: "Some",
          value: { type: "worker", worker: { status: "stopped" } }
        })
      })
  )
})

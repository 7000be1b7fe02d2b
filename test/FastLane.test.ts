/**
 * The fast lane (src/http/FastLane.ts) answers what HttpApi would, byte for
 * byte: every request here is sent twice on one server, with the lane and
 * without it, and the two answers (all but their `Date`) must be equal. The
 * lane must also really answer the hot read, and count it in the metrics.
 */
import * as HttpServer from "@effect/platform/HttpServer"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Layer, Metric, Redacted, Stream } from "effect"

import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as net from "node:net"
import type { FastLane } from "../src/http/FastLane.js"
import { FastLaneSlot } from "../src/http/FastLane.js"
import { RuntimeHttpServerLive } from "../src/http/index.js"
import {
  makeMemoryStore,
  type Profiles,
  Runtime,
  RuntimeControl,
  RuntimeFromStore,
  RuntimeStore
} from "../src/index.js"
import * as Metrics from "../src/Metrics.js"
import { createRuntimeHttpServer } from "../src/node/index.js"
import { suiteProfiles } from "./support/engines.js"
import { eventuallyLive } from "./support/eventually.js"
import { serverUrl } from "./support/httpRuntime.js"
import { rawSocket } from "./support/raw.js"

const TOKEN = "lane-token"

/**
 * The server with a lane the test can take out and put back: the slot hands
 * the HTTP layer's lane to the real server, and keeps it, with a count of
 * the requests it answered.
 */
const makeLaneSwitch = () => {
  const server = createRuntimeHttpServer()
  let lane: FastLane | undefined = undefined
  let uninstall: (() => void) | undefined = undefined
  let answered = 0
  const counting = (inner: FastLane): FastLane => (request) => {
    const answer = inner(request)
    if (answer !== undefined) answered++
    return answer
  }
  return {
    layer: Layer.merge(
      NodeHttpServer.layer(() => server, { port: 0, host: "127.0.0.1" }),
      Layer.succeed(FastLaneSlot, {
        install: (installed) => {
          lane = counting(installed)
          uninstall = server.installLane(lane)
          return () => uninstall?.()
        }
      })
    ),
    off: () => uninstall?.(),
    on: () => {
      if (lane !== undefined) uninstall = server.installLane(lane)
    },
    installed: () => lane !== undefined,
    answered: () => answered
  }
}

const lanes = makeLaneSwitch()

/** The suite's engines, and one whose turn runs until it is ended from outside (a Worker kept busy). */
const profiles: Profiles = { ...suiteProfiles, held: { name: "held", run: () => Stream.never } }

const serverLayer = (switched: ReturnType<typeof makeLaneSwitch>) =>
  RuntimeHttpServerLive({ token: Redacted.make(TOKEN) }).pipe(
    Layer.provideMerge(switched.layer),
    Layer.provideMerge(
      RuntimeFromStore({ profiles, passivateAfterMs: 60_000 }).pipe(
        Layer.provide(Layer.sync(RuntimeStore, makeMemoryStore))
      )
    )
  )

const TestLayer = serverLayer(lanes)

const request = (method: string, path: string, headers: ReadonlyArray<string>, body = "") =>
  [
    `${method} ${path} HTTP/1.1`,
    ...headers,
    ...(body === "" ? [] : [`Content-Length: ${Buffer.byteLength(body)}`]),
    "Connection: close",
    "",
    body
  ].join("\r\n")

/** The answer without its `Date` header, which differs from one second to the next. */
const withoutDate = (answer: string) => answer.replace(/^date: .*\r\n/im, "")

/** A stream's answer up to and including `until`, then the connection closed. */
const rawUntil = (base: string, raw: string, until: string) =>
  Effect.async<string>((resume) => {
    const { hostname, port } = new URL(base)
    const socket = net.connect(Number(port), hostname, () => socket.write(raw))
    let received = ""
    socket.on("data", (chunk) => {
      received += chunk.toString()
      const at = received.indexOf(until)
      if (at !== -1) {
        socket.destroy()
        resume(Effect.succeed(received.slice(0, at + until.length)))
      }
    })
    socket.on("error", () => {})
    // Only a hang reaches this (real time: the TestClock does not move it).
    const timer = setTimeout(() => {
      socket.destroy()
      resume(Effect.dieMessage(`no ${JSON.stringify(until)} within a minute; received ${JSON.stringify(received)}`))
    }, 60_000)
    socket.on("close", () => clearTimeout(timer))
    return Effect.sync(() => socket.destroy())
  })

/** `raw` answered by HttpApi (lane out), then `rawViaLane` with the lane in (`raw` again unless given). */
const both = (base: string, raw: string, rawViaLane = raw, switched = lanes) =>
  Effect.gen(function*() {
    switched.off()
    const before = switched.answered()
    const viaApi = withoutDate(yield* rawSocket(base, raw))
    switched.on()
    const viaLane = withoutDate(yield* rawSocket(base, rawViaLane))
    return { viaApi, viaLane, laneAnswered: switched.answered() > before }
  })

/** An ISO timestamp (always 24 characters, so `Content-Length` stays as it was). */
const TIMESTAMP = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/g

/**
 * The answer of an input to one Worker made comparable with the same input
 * to another in the same state: that one's id (ids are all as long) and
 * the times, which differ by the clock alone.
 */
const asIf = (answer: string, id: string, as: string) =>
  answer.replaceAll(id, as).replace(TIMESTAMP, "2000-01-01T00:00:00.000Z")

/** A request of raw bytes (not all of them UTF-8), answered by HttpApi, then by the lane. */
const bothBytes = (base: string, raw: Buffer) => {
  const send = Effect.async<string>((resume) => {
    const { hostname, port } = new URL(base)
    const socket = net.connect(Number(port), hostname, () => socket.end(raw))
    let received = ""
    socket.on("data", (chunk) => (received += chunk.toString()))
    socket.on("end", () => resume(Effect.succeed(received)))
    socket.on("error", (error) => resume(Effect.die(error)))
    return Effect.sync(() => socket.destroy())
  })
  return Effect.gen(function*() {
    lanes.off()
    const before = lanes.answered()
    const viaApi = withoutDate(yield* send)
    lanes.on()
    const viaLane = withoutDate(yield* send)
    return { viaApi, viaLane, laneAnswered: lanes.answered() > before }
  })
}

const bearer = `Authorization: Bearer ${TOKEN}`
const host = "Host: 127.0.0.1"

layer(TestLayer, { excludeTestServices: true })("fast lane", (it) => {
  it.effect("answers GET of a Worker in memory with HttpApi's bytes, and leaves every other request to it", () =>
    Effect.gen(function*() {
      expect(lanes.installed()).toBe(true)
      const runtime = yield* Runtime
      const base = serverUrl((yield* HttpServer.HttpServer).address)
      const active = yield* runtime.create({ metadata: { team: "ünïcode \"quoted\"" } })
      // An input brings it into memory; its turn leaves it there, idle.
      yield* runtime.input(active.id, { content: "hello" })
      yield* eventuallyLive(runtime.get(active.id), (worker) => worker.status === "idle", "the turn ended")
      const stored = yield* runtime.create({})
      const stopped = yield* runtime.create({})
      yield* runtime.input(stopped.id, { content: "x" })
      yield* runtime.stop(stopped.id)

      const path = `/v1/workers/${active.id}`
      const hot = yield* both(base, request("GET", path, [host, bearer]))
      expect(hot.viaLane).toBe(hot.viaApi)
      expect(hot.viaApi).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
      expect(hot.laneAnswered).toBe(true)
      const stoppedAnswer = yield* both(base, request("GET", `/v1/workers/${stopped.id}`, [host, bearer]))
      expect(stoppedAnswer.viaLane).toBe(stoppedAnswer.viaApi)

      // Each of these is HttpApi's to answer: the lane leaves it, and the bytes are the same.
      const others: ReadonlyArray<readonly [string, string, RegExp]> = [
        ["no token", request("GET", path, [host]), /^HTTP\/1\.1 401 /],
        ["a wrong token", request("GET", path, [host, "Authorization: Bearer nope"]), /^HTTP\/1\.1 401 /],
        ["another Host", request("GET", path, ["Host: evil.example", bearer]), /^HTTP\/1\.1 403 /],
        ["two Hosts", request("GET", path, [host, host, bearer]), /^HTTP\/1\.1 400 /],
        ["a browser", request("GET", path, [host, bearer, "Origin: http://127.0.0.1"]), /^HTTP\/1\.1 403 /],
        ["Sec-Fetch-Site", request("GET", path, [host, bearer, "Sec-Fetch-Site: same-origin"]), /^HTTP\/1\.1 403 /],
        ["a trailing slash", request("GET", `${path}/`, [host, bearer]), /^HTTP\/1\.1 404 /],
        ["an unknown Worker", request("GET", "/v1/workers/nope", [host, bearer]), /^HTTP\/1\.1 404 /],
        ["a Worker only in the store", request("GET", `/v1/workers/${stored.id}`, [host, bearer]), /^HTTP\/1\.1 200 /],
        ["a query", request("GET", `${path}?x=1`, [host, bearer]), /^HTTP\/1\.1 200 /],
        ["an escaped id", request("GET", `/v1/workers/%${active.id}`, [host, bearer]), /^HTTP\/1\.1 404 /],
        ["HEAD", request("HEAD", path, [host, bearer]), /^HTTP\/1\.1 /],
        ["POST", request("POST", path, [host, bearer]), /^HTTP\/1\.1 405 /],
        ["a body", request("GET", path, [host, bearer, "Content-Type: application/json"], "{}"), /^HTTP\/1\.1 /],
        ["the transcript", request("GET", `${path}/transcript`, [host, bearer]), /^HTTP\/1\.1 200 /]
      ]
      for (const [what, raw, status] of others) {
        const answers = yield* both(base, raw)
        expect(answers.viaLane, what).toBe(answers.viaApi)
        expect(answers.viaApi, what).toMatch(status)
        expect(answers.laneAnswered, what).toBe(false)
      }
      const control = yield* RuntimeControl
      expect(control.peek?.(stored.id)).toBeUndefined()
    }))

  it.effect("streams the events of a Worker in memory as HttpApi does, and gives back what HttpApi must answer", () =>
    Effect.gen(function*() {
      const runtime = yield* Runtime
      const base = serverUrl((yield* HttpServer.HttpServer).address)
      const worker = yield* runtime.create({})
      yield* runtime.input(worker.id, { content: "hello" })
      yield* eventuallyLive(runtime.get(worker.id), (w) => w.status === "idle", "the turn ended")
      const stored = yield* runtime.create({})
      const path = `/v1/workers/${worker.id}/events`
      const streams: ReadonlyArray<readonly [string, string, string]> = [
        ["from the start", request("GET", path, [host, bearer]), "id: 3\nevent: entry\n"],
        ["after 1", request("GET", `${path}?after=1`, [host, bearer]), "id: 3\n"],
        ["Last-Event-ID", request("GET", path, [host, bearer, "Last-Event-ID: 2"]), "id: 3\n"]
      ]
      for (const [what, raw, until] of streams) {
        lanes.off()
        const viaApi = withoutDate(yield* rawUntil(base, raw, until))
        lanes.on()
        const before = lanes.answered()
        const viaLane = withoutDate(yield* rawUntil(base, raw, until))
        expect(viaLane, what).toBe(viaApi)
        expect(viaApi, what).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
        expect(lanes.answered() - before, what).toBe(1)
      }
      const others: ReadonlyArray<readonly [string, string, RegExp]> = [
        ["after past the end", request("GET", `${path}?after=99`, [host, bearer]), /^HTTP\/1\.1 400 /],
        ["a bad Last-Event-ID", request("GET", path, [host, bearer, "Last-Event-ID: x"]), /^HTTP\/1\.1 400 /],
        ["no token", request("GET", path, [host]), /^HTTP\/1\.1 401 /],
        ["an unknown Worker", request("GET", "/v1/workers/nope/events", [host, bearer]), /^HTTP\/1\.1 404 /],
        ["another query", request("GET", `${path}?after=1&x=2`, [host, bearer]), /^HTTP\/1\.1 200 /]
      ]
      for (const [what, raw, status] of others) {
        const answers = yield* both(base, raw)
        expect(answers.viaLane, what).toBe(answers.viaApi)
        expect(answers.viaApi, what).toMatch(status)
      }
      // A Worker only in the store: HttpApi streams it (and brings it into memory).
      lanes.on()
      const before = lanes.answered()
      const cold = yield* rawUntil(
        base,
        request("GET", `/v1/workers/${stored.id}/events`, [host, bearer]),
        "event: worker"
      )
      expect(cold).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
      expect(lanes.answered() - before).toBe(0)
    }))

  it.effect("answers POST input as HttpApi does, for every status, and leaves what HttpApi answers unread to it", () =>
    Effect.gen(function*() {
      const runtime = yield* Runtime
      const base = serverUrl((yield* HttpServer.HttpServer).address)
      const json = "Content-Type: application/json"
      const input = (id: string, body: string, headers: ReadonlyArray<string> = [host, bearer, json]) =>
        request("POST", `/v1/workers/${id}/input`, headers, body)
      const hello = JSON.stringify({ content: "hello \"ünïcode\"" })

      // 202, a turn started: the same input to two Workers in the same state.
      const idle = yield* runtime.create({ metadata: { team: "a" } })
      const twin = yield* runtime.create({ metadata: { team: "a" } })
      const started = yield* both(base, input(idle.id, hello), input(twin.id, hello))
      expect(asIf(started.viaLane, twin.id, idle.id)).toBe(asIf(started.viaApi, twin.id, idle.id))
      expect(started.viaApi).toMatch(/^HTTP\/1\.1 202 Accepted\r\n/)
      expect(started.viaLane).toContain(twin.id)
      expect(started.laneAnswered).toBe(true)
      yield* eventuallyLive(runtime.get(twin.id), (worker) => worker.status === "idle", "the lane's turn ended")
      // Recorded, and its turn run: the input, then the echo.
      const entries = (yield* runtime.transcript(twin.id, {})).entries
      expect(entries.slice(0, 2).map((entry) => [entry.role, entry.content])).toEqual([
        ["user", "hello \"ünïcode\""],
        ["worker", "hello \"ünïcode\""]
      ])

      // 202, queued behind a turn; then 409 for one that may not wait.
      const held = yield* runtime.create({ profile: "held" })
      const heldTwin = yield* runtime.create({ profile: "held" })
      yield* runtime.input(held.id, { content: "first" })
      yield* runtime.input(heldTwin.id, { content: "first" })
      const wait = JSON.stringify({ content: "next", ifBusy: "enqueue" })
      const queued = yield* both(base, input(held.id, wait), input(heldTwin.id, wait))
      expect(asIf(queued.viaLane, heldTwin.id, held.id)).toBe(asIf(queued.viaApi, heldTwin.id, held.id))
      expect(queued.viaApi).toMatch(/^HTTP\/1\.1 202 Accepted\r\n[^]*"queued":true,"position":1}$/)
      expect(queued.laneAnswered).toBe(true)

      const stopped = yield* runtime.create({})
      yield* runtime.stop(stopped.id)
      const deep = JSON.stringify({ content: "x", kind: "user" }).replace("{", "[".repeat(70) + "{") + "]".repeat(70)
      // What the lane answers itself, with HttpApi's bytes: nothing here changes the Worker.
      const answered: ReadonlyArray<readonly [string, string, RegExp]> = [
        ["a busy Worker", input(held.id, hello), /^HTTP\/1\.1 409 /],
        ["a stopped Worker", input(stopped.id, hello), /^HTTP\/1\.1 422 /],
        ["an unknown Worker", input("nope", hello), /^HTTP\/1\.1 404 /],
        ["not JSON", input(stopped.id, "{\"content\":"), /^HTTP\/1\.1 400 /],
        ["JSON nested too deep", input(stopped.id, deep), /^HTTP\/1\.1 400 /],
        ["a body of blanks", input(stopped.id, "  "), /^HTTP\/1\.1 400 /],
        ["no content", input(stopped.id, "{}"), /^HTTP\/1\.1 400 /],
        ["empty content", input(stopped.id, JSON.stringify({ content: "" })), /^HTTP\/1\.1 400 /],
        ["an unknown field", input(stopped.id, JSON.stringify({ content: "x", to: 1 })), /^HTTP\/1\.1 400 /],
        ["an unknown kind", input(stopped.id, JSON.stringify({ content: "x", kind: "robot" })), /^HTTP\/1\.1 400 /],
        [
          "content over maxInputBytes, a body of many reads",
          input(held.id, JSON.stringify({ content: "x".repeat(1024 * 1024 + 1) })),
          /^HTTP\/1\.1 400 /
        ],
        ["no Content-Type", input(stopped.id, hello, [host, bearer]), /^HTTP\/1\.1 422 /],
        [
          "a +json Content-Type",
          input(stopped.id, hello, [host, bearer, "Content-Type: application/merge-patch+json; charset=utf-8"]),
          /^HTTP\/1\.1 422 /
        ]
      ]
      for (const [what, raw, status] of answered) {
        const answers = yield* both(base, raw)
        expect(answers.viaLane, what).toBe(answers.viaApi)
        expect(answers.viaApi, what).toMatch(status)
        expect(answers.laneAnswered, what).toBe(true)
      }
      const notUtf8 = yield* bothBytes(
        base,
        Buffer.concat([
          Buffer.from(input(stopped.id, "").replace("Connection: close", "Content-Length: 4\r\nConnection: close")),
          Buffer.from([0x7b, 0xff, 0xfe, 0x7d])
        ])
      )
      expect(notUtf8.viaLane).toBe(notUtf8.viaApi)
      expect(notUtf8.viaApi).toMatch(/^HTTP\/1\.1 400 [^]*not valid UTF-8/)
      expect(notUtf8.laneAnswered).toBe(true)

      // What HttpApi answers before reading the body (or could not be told apart from it): the lane leaves it.
      const path = `/v1/workers/${stopped.id}/input`
      const chunked = `${Buffer.byteLength(hello).toString(16)}\r\n${hello}\r\n0\r\n\r\n`
      const left: ReadonlyArray<readonly [string, string, RegExp]> = [
        ["no token", input(stopped.id, hello, [host, json]), /^HTTP\/1\.1 401 /],
        ["a wrong token", input(stopped.id, hello, [host, json, "Authorization: Bearer nope"]), /^HTTP\/1\.1 401 /],
        ["another Host", input(stopped.id, hello, ["Host: evil.example", bearer, json]), /^HTTP\/1\.1 403 /],
        ["two Hosts", input(stopped.id, hello, [host, host, bearer, json]), /^HTTP\/1\.1 400 /],
        ["a browser", input(stopped.id, hello, [host, bearer, json, "Origin: http://127.0.0.1"]), /^HTTP\/1\.1 403 /],
        [
          "not JSON's media type",
          input(stopped.id, hello, [host, bearer, "Content-Type: text/plain"]),
          /^HTTP\/1\.1 415 /
        ],
        [
          "a body declared too large",
          input(stopped.id, "", [host, bearer, json, "Content-Length: 99999999"]),
          /^HTTP\/1\.1 413 /
        ],
        ["no body", input(stopped.id, "", [host, bearer, json, "Content-Length: 0"]), /^HTTP\/1\.1 400 /],
        [
          "a chunked body",
          input(stopped.id, chunked, [host, bearer, json, "Transfer-Encoding: chunked"]).replace(
            /Content-Length: \d+\r\n/,
            ""
          ),
          /^HTTP\/1\.1 422 /
        ],
        ["a query", request("POST", `${path}?x=1`, [host, bearer, json], hello), /^HTTP\/1\.1 422 /],
        ["a trailing slash", request("POST", `${path}/`, [host, bearer, json], hello), /^HTTP\/1\.1 404 /],
        [
          "an escaped id",
          request("POST", `/v1/workers/%${stopped.id}/input`, [host, bearer, json], hello),
          /^HTTP\/1\.1 /
        ],
        ["GET", request("GET", path, [host, bearer]), /^HTTP\/1\.1 405 /]
      ]
      for (const [what, raw, status] of left) {
        const answers = yield* both(base, raw)
        expect(answers.viaLane, what).toBe(answers.viaApi)
        expect(answers.viaApi, what).toMatch(status)
        expect(answers.laneAnswered, what).toBe(false)
      }
      yield* runtime.cancel(held.id, { clearQueue: true })
      yield* runtime.cancel(heldTwin.id, { clearQueue: true })
    }))

  it.effect("counts what it answers in the request metrics, as HttpApi does", () =>
    Effect.gen(function*() {
      const runtime = yield* Runtime
      const base = serverUrl((yield* HttpServer.HttpServer).address)
      const worker = yield* runtime.create({})
      yield* runtime.input(worker.id, { content: "hello" })
      yield* eventuallyLive(runtime.get(worker.id), (w) => w.status === "idle", "the turn ended")
      const counter = Metrics.requests.pipe(Metric.taggedWithLabels([
        Metrics.label("route", "/v1/workers/{workerId}"),
        Metrics.label("method", "GET"),
        Metrics.label("status", "200")
      ]))
      const before = (yield* Metric.value(counter)).count
      const answeredBefore = lanes.answered()
      for (let i = 0; i < 5; i++) yield* rawSocket(base, request("GET", `/v1/workers/${worker.id}`, [host, bearer]))
      expect(lanes.answered() - answeredBefore).toBe(5)
      expect((yield* Metric.value(counter)).count - before).toBe(5)

      const inputs = Metrics.requests.pipe(Metric.taggedWithLabels([
        Metrics.label("route", "/v1/workers/{workerId}/input"),
        Metrics.label("method", "POST"),
        Metrics.label("status", "202")
      ]))
      const acceptedBefore = (yield* Metric.value(inputs)).count
      const body = JSON.stringify({ content: "x" })
      yield* rawSocket(
        base,
        request("POST", `/v1/workers/${worker.id}/input`, [host, bearer, "Content-Type: application/json"], body)
      )
      expect(lanes.answered() - answeredBefore).toBe(6)
      expect((yield* Metric.value(inputs)).count - acceptedBefore).toBe(1)
    }))
})

const drainingLanes = makeLaneSwitch()

layer(serverLayer(drainingLanes), { excludeTestServices: true })("fast lane, while the Runtime drains", (it) => {
  it.effect("answers POST input 503 with Retry-After, as HttpApi does", () =>
    Effect.gen(function*() {
      const runtime = yield* Runtime
      const base = serverUrl((yield* HttpServer.HttpServer).address)
      const worker = yield* runtime.create({})
      yield* (yield* RuntimeControl).drain
      const raw = request(
        "POST",
        `/v1/workers/${worker.id}/input`,
        [host, bearer, "Content-Type: application/json"],
        JSON.stringify({ content: "too late" })
      )
      const answers = yield* both(base, raw, raw, drainingLanes)
      expect(answers.viaLane).toBe(answers.viaApi)
      expect(answers.viaApi).toMatch(/^HTTP\/1\.1 503 [^]*\r\nretry-after: \d+\r\n/)
      expect(answers.laneAnswered).toBe(true)
    }))
})

describe("fast lane: not taken", () => {
  let installs = 0
  // Each build gets layers of its own: a layer built once is reused by reference.
  const slot = () =>
    Layer.succeed(FastLaneSlot, {
      install: () => {
        installs++
        return () => {}
      }
    })
  const runtime = () =>
    RuntimeFromStore({ profiles: suiteProfiles }).pipe(Layer.provide(Layer.sync(RuntimeStore, makeMemoryStore)))
  const listen = () => NodeHttpServer.layer(createRuntimeHttpServer, { port: 0, host: "127.0.0.1" })
  const installsWith = (
    options: Parameters<typeof RuntimeHttpServerLive>[0],
    below: Layer.Layer<Runtime | RuntimeControl | FastLaneSlot, unknown>
  ) =>
    Effect.gen(function*() {
      const before = installs
      yield* Layer.build(RuntimeHttpServerLive(options).pipe(Layer.provide(Layer.merge(below, listen()))))
      return installs - before
    })

  it.scoped("with a slot and a Runtime that can peek, the lane is installed", () =>
    Effect.gen(function*() {
      expect(yield* installsWith({}, Layer.merge(slot(), runtime()))).toBe(1)
    }))

  it.scoped("with tracing, not", () =>
    Effect.gen(function*() {
      expect(yield* installsWith({ tracing: true }, Layer.merge(slot(), runtime()))).toBe(0)
    }))
})

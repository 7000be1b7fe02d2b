/**
 * The client given several URLs (docs/configuration.md, "Several URLs"): a refused
 * connection or a 503 sends the call to the next URL, the URL that answered
 * is tried first next time, a POST that may have arrived is not sent twice,
 * events resume on the next URL, and the CLI's comma-separated `--url`.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Layer, Ref, Stream } from "effect"
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http"
import { createServer } from "node:net"
import { RuntimeHttpClientLive, type RuntimeHttpClientOptions } from "../src/http/index.js"
import { Runtime, type RuntimeOptions, Unavailable, UnknownWorker, type WorkerEvent, WorkerId } from "../src/index.js"
import { ExitCode } from "../src/node/CliCommands.js"
import { subcommandNamed } from "../src/node/CliMain.js"
import { eventuallyLive } from "./support/eventually.js"
import { followSuite } from "./support/followSuite.js"
import { baseUrl, httpServer } from "./support/httpRuntime.js"
import { tcpProxy } from "./support/proxy.js"
import { runtimeSuite } from "./support/runtimeSuite.js"

/** A loopback URL nothing listens on: connecting is refused. */
const refusedUrl = Effect.promise(() =>
  new Promise<string>((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(`http://127.0.0.1:${port}`))
    })
  })
)

interface Arrival {
  readonly method: string
  readonly path: string
  /** Date.now() when it arrived. */
  readonly at: number
}

/**
 * A raw server that answers its n-th request (from 0) with `handle`, having
 * read the request's body; what arrived is in `arrivals`. Closed with the scope.
 */
const fakeServer = (handle: (n: number, request: IncomingMessage, response: ServerResponse) => void) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<{ url: string; arrivals: Array<Arrival>; close: () => void }>((resolve) => {
        const arrivals: Array<Arrival> = []
        const server = createHttpServer((request, response) => {
          request.resume()
          request.on("end", () => {
            const n = arrivals.length
            arrivals.push({ method: request.method ?? "", path: request.url ?? "", at: Date.now() })
            handle(n, request, response)
          })
        }).listen(0, "127.0.0.1", () => {
          const address = server.address()
          const port = typeof address === "object" && address !== null ? address.port : 0
          resolve({
            url: `http://127.0.0.1:${port}`,
            arrivals,
            close: () => {
              server.closeAllConnections()
              server.close()
            }
          })
        })
      })
    ),
    ({ close }) => Effect.sync(close)
  )

const json = (response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  response.writeHead(status, { "content-type": "application/json", ...headers })
  response.end(JSON.stringify(body))
}

/** A draining runtime's answer. */
const unavailable = (response: ServerResponse, retryAfterSeconds: number) =>
  json(response, 503, { _tag: "Unavailable", message: "the runtime is draining", retryAfterMs: 5000 }, {
    "retry-after": String(retryAfterSeconds)
  })

/** A runtime that takes the request and dies before it answers: the connection breaks after the request arrived. */
const breaksAfterReading = (_n: number, request: IncomingMessage) => request.socket.destroy()

const clientAt = (
  baseUrl: RuntimeHttpClientOptions["baseUrl"],
  options: Omit<RuntimeHttpClientOptions, "baseUrl"> = {}
) => RuntimeHttpClientLive({ baseUrl, ...options }).pipe(Layer.provide(FetchHttpClient.layer))

/** The first value the Runtime at `url` alone gives. */
const at = <A, E>(url: string, effect: Effect.Effect<A, E, Runtime>) => Effect.provide(effect, clientAt(url))

const missing = WorkerId.make("missing")

describe("RuntimeHttpClient with several URLs", () => {
  it.live("a runtime that refuses connections is passed over: every call goes to the next URL", () =>
    Effect.gen(function*() {
      const live = yield* baseUrl
      const refused = yield* refusedUrl
      const worker = yield* Effect.gen(function*() {
        const rt = yield* Runtime
        const worker = yield* rt.create({ metadata: { via: "failover" } })
        yield* rt.input(worker.id, { content: "hello" })
        yield* rt.turn(worker.id, 1, { waitMs: 60_000 })
        expect((yield* rt.transcript(worker.id, {})).entries.map((entry) => entry.content)).toContain("hello")
        expect((yield* rt.list({ metadata: { via: "failover" } })).workers).toHaveLength(1)
        return worker
      }).pipe(Effect.provide(clientAt([refused, live])))
      // It is the live runtime's Worker.
      expect((yield* at(live, Effect.flatMap(Runtime, (rt) => rt.get(worker.id)))).id).toBe(worker.id)
    }).pipe(Effect.provide(httpServer())))

  it.scopedLive("a 503 goes to the next URL, which is then tried first (sticky)", () =>
    Effect.gen(function*() {
      const live = yield* baseUrl
      const draining = yield* fakeServer((_n, _request, response) => unavailable(response, 1))
      yield* Effect.gen(function*() {
        const rt = yield* Runtime
        const worker = yield* rt.create({})
        yield* rt.input(worker.id, { content: "one" })
        yield* rt.get(worker.id)
        yield* rt.info
      }).pipe(Effect.provide(clientAt([draining.url, live])))
      // Only the first call went there; the next ones went straight to the URL that answered.
      expect(draining.arrivals.map(({ method, path }) => `${method} ${path}`)).toEqual(["POST /v1/workers"])
    }).pipe(Effect.provide(httpServer())))

  it.scopedLive("every URL answering 503: tried again from the first after the round's Retry-After", () =>
    Effect.gen(function*() {
      const first = yield* fakeServer((n, _request, response) =>
        n === 0
          ? unavailable(response, 1)
          : json(response, 404, { _tag: "UnknownWorker", workerId: "missing", message: "no such Worker" })
      )
      const second = yield* fakeServer((_n, _request, response) => unavailable(response, 1))
      const error = yield* Effect.flip(
        Effect.flatMap(Runtime, (rt) => rt.get(missing)).pipe(Effect.provide(clientAt([first.url, second.url])))
      )
      // The answer after the wait is the call's answer; a 4xx is not failed over.
      expect(error).toBeInstanceOf(UnknownWorker)
      expect(first.arrivals).toHaveLength(2)
      expect(second.arrivals).toHaveLength(1)
      // One second asked for: a lower bound of real time, which a loaded machine only lengthens.
      expect(first.arrivals[1]!.at - second.arrivals[0]!.at).toBeGreaterThanOrEqual(900)
    }))

  it.scopedLive("is bounded: rounds of every URL, Retry-After capped by maxWait, then the last 503 as Unavailable", () =>
    Effect.gen(function*() {
      const first = yield* fakeServer((_n, _request, response) => unavailable(response, 3600))
      const second = yield* fakeServer((_n, _request, response) => unavailable(response, 3600))
      const error = yield* Effect.flip(
        Effect.flatMap(Runtime, (rt) => rt.get(missing)).pipe(
          Effect.provide(clientAt([first.url, second.url], { failover: { rounds: 2, maxWait: "50 millis" } }))
        )
      )
      expect(error).toBeInstanceOf(Unavailable)
      expect(error).toMatchObject({ retryAfterMs: 5000 })
      expect([first.arrivals.length, second.arrivals.length]).toEqual([2, 2])
    }))

  it.scopedLive("a 500 or another 5xx is the answer: no failover", () =>
    Effect.gen(function*() {
      const broken = yield* fakeServer((_n, _request, response) => json(response, 500, { _tag: "InternalError" }))
      const other = yield* fakeServer((_n, _request, response) => unavailable(response, 1))
      const error = yield* Effect.flip(
        Effect.flatMap(Runtime, (rt) => rt.get(missing)).pipe(Effect.provide(clientAt([broken.url, other.url])))
      )
      expect(error).toBeInstanceOf(Unavailable)
      expect(other.arrivals).toHaveLength(0)
    }))

  it.scopedLive("an input whose connection broke after it was sent is not sent again; a read is", () =>
    Effect.gen(function*() {
      const live = yield* baseUrl
      const broken = yield* fakeServer(breaksAfterReading)
      const worker = yield* at(live, Effect.flatMap(Runtime, (rt) => rt.create({})))
      const input = yield* Effect.flip(
        Effect.flatMap(Runtime, (rt) => rt.input(worker.id, { content: "once" })).pipe(
          Effect.provide(clientAt([broken.url, live]))
        )
      )
      expect(input).toBeInstanceOf(Unavailable)
      expect(broken.arrivals.map(({ method }) => method)).toEqual(["POST"])
      // The live runtime never got it.
      expect((yield* at(live, Effect.flatMap(Runtime, (rt) => rt.get(worker.id)))).lastSeq).toBe(0)

      // A GET is: it changes nothing.
      const read = yield* Effect.flatMap(Runtime, (rt) => rt.get(worker.id)).pipe(
        Effect.provide(clientAt([broken.url, live]))
      )
      expect(read.id).toBe(worker.id)
      expect(broken.arrivals.map(({ method }) => method)).toEqual(["POST", "GET"])
    }).pipe(Effect.provide(httpServer())))

  it.scopedLive("a create whose connection broke is sent again with its key, to the next URL: one Worker", () =>
    Effect.gen(function*() {
      const live = yield* baseUrl
      const broken = yield* fakeServer(breaksAfterReading)
      const worker = yield* Effect.flatMap(Runtime, (rt) => rt.create({ metadata: { once: "yes" } })).pipe(
        Effect.provide(clientAt([broken.url, live]))
      )
      expect(broken.arrivals).toHaveLength(1)
      const page = yield* at(live, Effect.flatMap(Runtime, (rt) => rt.list({ metadata: { once: "yes" } })))
      expect(page.workers.map(({ id }) => id)).toEqual([worker.id])
    }).pipe(Effect.provide(httpServer())))

  it.scopedLive("one URL: a 503 is answered as Unavailable after one request, as ever", () =>
    Effect.gen(function*() {
      const draining = yield* fakeServer((_n, _request, response) => unavailable(response, 1))
      const error = yield* Effect.flip(
        Effect.flatMap(Runtime, (rt) => rt.get(missing)).pipe(Effect.provide(clientAt([draining.url])))
      )
      expect(error).toBeInstanceOf(Unavailable)
      expect(draining.arrivals).toHaveLength(1)
    }))

  it.live("events: a follow whose runtime goes away resumes on the next URL, with no gap and no duplicate", () =>
    Effect.gen(function*() {
      const live = yield* baseUrl
      // The first URL is the same runtime through a proxy: a runner that can be taken away.
      const proxy = yield* tcpProxy(Number(new URL(live).port))
      const rt = Context.get(yield* Layer.build(clientAt([proxy.url, live])), Runtime)
      const worker = yield* rt.create({})
      yield* rt.input(worker.id, { content: "one" })
      yield* rt.turn(worker.id, 1, { waitMs: 60_000 })
      const before = (yield* rt.get(worker.id)).lastSeq
      expect(before).toBeGreaterThan(0)

      const seen = yield* Ref.make<ReadonlyArray<WorkerEvent>>([])
      yield* rt.events(worker.id, { after: 0 }).pipe(
        Stream.runForEach((event) => Ref.update(seen, (events) => [...events, event])),
        Effect.forkScoped
      )
      const seqs = Effect.map(
        Ref.get(seen),
        (events) => events.flatMap((event) => (event.type === "entry" ? [event.entry.seq] : []))
      )
      yield* eventuallyLive(seqs, (got) => got.at(-1) === before, "the entries of turn 1, through the proxy")
      const connections = proxy.connections()

      yield* proxy.stop
      yield* rt.input(worker.id, { content: "two" })
      yield* rt.turn(worker.id, 2, { waitMs: 60_000 })
      const after = (yield* rt.get(worker.id)).lastSeq
      expect(after).toBeGreaterThan(before)
      const got = yield* eventuallyLive(seqs, (got) => got.at(-1) === after, "the entries of turn 2, from the next URL")
      expect(got).toEqual(Array.from({ length: after }, (_, i) => i + 1))
      // Nothing reached the proxy after it stopped: the follow moved on.
      expect(proxy.connections()).toBe(connections)
    }).pipe(
      // The follow ends before the server closes, which waits for its connections.
      Effect.scoped,
      Effect.provide(httpServer())
    ))
})

/** The Runtime through a client whose first URL refuses: every operation goes through the failover client. */
const failingOver = (options: RuntimeOptions = {}) =>
  Layer.unwrapEffect(
    Effect.map(
      Effect.all([refusedUrl, baseUrl]),
      ([refused, live]) => RuntimeHttpClientLive({ baseUrl: [refused, live], token: "suite-token" })
    )
  ).pipe(Layer.provide(httpServer(options, "suite-token")), Layer.provide(FetchHttpClient.layer))

runtimeSuite("Runtime (RuntimeHttpClient with a refusing URL first -> server -> RuntimeLive)", failingOver)
followSuite("Following (RuntimeHttpClient with a refusing URL first -> server -> RuntimeLive)", failingOver)

/** Runs `worker-runtime <name> <args>` in this process: its exit code and what it printed. */
const cli = (name: string, args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const subcommand = subcommandNamed(name)
    if (subcommand === undefined) return yield* Effect.dieMessage(`no subcommand ${name}`)
    const printed: Array<string> = []
    const code = yield* Ref.make(-1)
    yield* subcommand.run(["node", "worker-runtime", ...args]).pipe(
      Effect.provideService(ExitCode, code),
      Effect.provide(NodeContext.layer),
      (effect) =>
        Effect.consoleWith((console) =>
          Effect.withConsole(effect, {
            ...console,
            log: (...parts) => Effect.sync(() => void printed.push(parts.join(" ")))
          })
        )
    )
    return { code: yield* Ref.get(code), printed }
  })

const withEnv = (env: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("worker-runtime --url with several URLs", () => {
  it.live("the first refusing, the commands use the next; from the flag or WORKER_RUNTIME_URL", () =>
    Effect.gen(function*() {
      const live = yield* baseUrl
      const refused = yield* refusedUrl
      const created = yield* cli("create", ["--url", `${refused},${live}`]).pipe(withEnv({}))
      expect(created.code).toBe(0)
      const id = WorkerId.make(created.printed[0] ?? "")
      expect((yield* at(live, Effect.flatMap(Runtime, (rt) => rt.get(id)))).id).toBe(id)

      const info = yield* cli("info", ["--json"]).pipe(withEnv({ WORKER_RUNTIME_URL: `${refused} , ${live}` }))
      expect(info.code).toBe(0)
      const runtimeId = (yield* at(live, Effect.flatMap(Runtime, (rt) => rt.info))).runtimeId
      expect(JSON.parse(info.printed[0] ?? "{}")).toMatchObject({ runtimeId })

      const bad = yield* Effect.flip(cli("info", ["--url", ` ,${live},ftp://x`]).pipe(withEnv({})))
      expect(bad).toMatchObject({ _tag: "CliUsageError", message: expect.stringContaining("comma-separated") })
    }).pipe(Effect.provide(httpServer())))
})

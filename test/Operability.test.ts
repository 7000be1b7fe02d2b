/**
 * What an operator sees of the runtime process: lifecycle and request logs
 * (pretty or JSON, never the token or input content), `/metrics` in
 * Prometheus text moving with Workers and turns, and traces over OTLP/HTTP
 * that continue a Backend's trace (W3C `traceparent`).
 */
import * as OtlpSerialization from "@effect/opentelemetry/OtlpSerialization"
import * as OtlpTracer from "@effect/opentelemetry/OtlpTracer"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { mkdtempSync, writeFileSync } from "node:fs"
import { createServer, type IncomingMessage } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { RuntimeHttpClientLive } from "../src/http/index.js"
import { Runtime, WorkerId } from "../src/index.js"
import { cleanEnv, exitOf, startBin } from "./support/bin.js"
import { eventuallyLive } from "./support/eventually.js"
import { raw } from "./support/raw.js"

const TOKEN = "operability-token-0123456789"
const SECRET_CONTENT = "do-not-log-this-content"

const profilesFile = () => {
  const dir = mkdtempSync(join(tmpdir(), "operability-"))
  const path = join(dir, "profiles.json")
  writeFileSync(
    path,
    JSON.stringify({
      default: { engine: "echo" },
      slow: { engine: "echo", delayMs: 60_000 },
      failing: { engine: "process", command: [process.execPath, "-e", "process.exit(3)"] }
    })
  )
  return path
}

/** A Prometheus sample's value: `name{labels} value`, labels matched as a substring. */
const sample = (text: string, name: string, labels = ""): number | undefined => {
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    if (!line.includes(labels)) continue
    return Number(line.slice(line.lastIndexOf(" ") + 1))
  }
  return undefined
}

describe("logs", () => {
  it.scopedLive(
    "JSON, one object a line: lifecycle at info, a SIGTERM with a turn in flight, requests at debug",
    () =>
      Effect.gen(function*() {
        const bin = yield* startBin(
          ["--log-format", "json", "--log-level", "debug", "--profiles", profilesFile(), "--shutdown-grace-ms", "300"],
          cleanEnv({ WORKER_RUNTIME_TOKEN: TOKEN })
        )
        const call = (path: string, options: Parameters<typeof raw>[2] = {}) =>
          raw(bin.url, path, { token: TOKEN, ...options })
        const slow = (yield* call("/v1/workers", { method: "POST", body: { profile: "slow" } })).json as { id: string }
        yield* call(`/v1/workers/${slow.id}/input`, { method: "POST", body: { content: SECRET_CONTENT } })
        const failing = (yield* call("/v1/workers", { method: "POST", body: { profile: "failing" } })).json as {
          id: string
        }
        yield* call(`/v1/workers/${failing.id}/input`, { method: "POST", body: { content: SECRET_CONTENT } })
        yield* eventuallyLive(Effect.sync(bin.output), (output) => output.includes("turn failed"), "the turn failure")
        bin.child.kill("SIGTERM")
        expect(yield* exitOf(bin)).toBe(0)
        const lines = bin.output().trim().split("\n")
        const logs = lines.map((line) =>
          JSON.parse(line) as {
            message: string
            logLevel: string
            timestamp: string
            annotations: Record<string, unknown>
          }
        )
        for (const log of logs) {
          expect(Object.keys(log)).toEqual(expect.arrayContaining(["message", "logLevel", "timestamp"]))
        }
        const find = (message: string) => logs.find((log) => log.message.startsWith(message))
        expect(find("worker-runtime listening")).toMatchObject({ logLevel: "INFO" })
        expect(find("draining began")).toMatchObject({ logLevel: "INFO", annotations: { turnsInFlight: 1 } })
        expect(find("drain done")).toMatchObject({ logLevel: "INFO", annotations: { turnsInterrupted: 1 } })
        expect(find("store closed")).toMatchObject({ logLevel: "INFO" })
        expect(find("turn failed")).toMatchObject({
          logLevel: "WARN",
          annotations: { workerId: failing.id, turn: 1 }
        })
        const request = logs.find((log) => log.message === "request" && log.annotations["status"] === 202)
        expect(request).toMatchObject({
          logLevel: "DEBUG",
          annotations: { method: "POST", route: "/v1/workers/{workerId}/input", workerId: slow.id }
        })
        expect(typeof request?.annotations["durationMs"]).toBe("number")
        const text = bin.output()
        expect(text).not.toContain(TOKEN)
        expect(text).not.toContain(SECRET_CONTENT)
      })
  )

  it.scopedLive("pretty by default; requests only at debug", () =>
    Effect.gen(function*() {
      const bin = yield* startBin([])
      yield* raw(bin.url, "/v1/runtime")
      bin.child.kill("SIGTERM")
      expect(yield* exitOf(bin)).toBe(0)
      expect(bin.output()).toMatch(/INFO .*worker-runtime listening on/)
      expect(bin.output()).not.toContain("\"message\"")
      expect(bin.output()).not.toContain("request")
    }))
})

describe("/metrics", () => {
  it.scopedLive(
    "is Prometheus text behind the token, moving with Workers, turns and requests",
    () =>
      Effect.gen(function*() {
        const bin = yield* startBin(["--profiles", profilesFile()], cleanEnv({ WORKER_RUNTIME_TOKEN: TOKEN }))
        const call = (path: string, options: Parameters<typeof raw>[2] = {}) =>
          raw(bin.url, path, { token: TOKEN, ...options })
        expect((yield* raw(bin.url, "/metrics")).status).toBe(401)
        const scrape = Effect.map(call("/metrics"), (response) => {
          expect(response.status).toBe(200)
          expect(response.headers.get("content-type")).toContain("text/plain")
          return response.text
        })
        const before = yield* scrape
        expect(sample(before, "worker_runtime_workers", "status=\"idle\"") ?? 0).toBe(0)
        const worker = (yield* call("/v1/workers", { method: "POST", body: {} })).json as { id: string }
        yield* call(`/v1/workers/${worker.id}/input`, { method: "POST", body: { content: "hi" } })
        const slow = (yield* call("/v1/workers", { method: "POST", body: { profile: "slow" } })).json as { id: string }
        yield* call(`/v1/workers/${slow.id}/input`, { method: "POST", body: { content: "hi" } })
        const after = yield* eventuallyLive(
          scrape,
          (text) => sample(text, "worker_runtime_turns_ended_total", "outcome=\"completed\"") === 1,
          "the completed turn counted"
        )
        expect(sample(after, "worker_runtime_workers", "status=\"idle\"")).toBe(1)
        expect(sample(after, "worker_runtime_workers", "status=\"busy\"")).toBe(1)
        expect(sample(after, "worker_runtime_turns_started_total")).toBe(2)
        expect(sample(after, "worker_runtime_turn_duration_seconds_count", "outcome=\"completed\"")).toBe(1)
        expect(
          sample(after, "worker_runtime_http_requests_total", "route=\"/v1/workers\",method=\"POST\",status=\"201\"")
        )
          .toBe(2)
        expect(sample(after, "worker_runtime_http_request_duration_seconds_count", "route=\"/v1/workers\"")).toBe(2)
        expect(sample(after, "worker_runtime_store_commit_duration_seconds_count")).toBeGreaterThan(0)
        expect(after).toContain("worker_runtime_event_streams")
        yield* call(`/v1/workers/${slow.id}/stop`, { method: "POST" })
        const stopped = yield* scrape
        expect(sample(stopped, "worker_runtime_workers", "status=\"stopped\"")).toBe(1)
        expect(sample(stopped, "worker_runtime_turns_ended_total", "outcome=\"stopped\"")).toBe(1)
      })
  )
})

describe("tracing", () => {
  /** An OTLP/HTTP receiver: every span it is sent. */
  const receiver = Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<{ url: string; spans: Array<Span>; bodies: Array<string>; close: () => void }>((resolve) => {
        const spans: Array<Span> = []
        const bodies: Array<string> = []
        const server = createServer((request: IncomingMessage, response) => {
          let body = ""
          request.on("data", (chunk) => (body += chunk))
          request.on("end", () => {
            if (request.url === "/v1/traces") {
              bodies.push(body)
              const json = JSON.parse(body) as {
                resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<Span> }> }>
              }
              for (const resource of json.resourceSpans) {
                for (const scope of resource.scopeSpans) spans.push(...scope.spans)
              }
            }
            response.writeHead(200, { "content-type": "application/json" })
            response.end("{}")
          })
        }).listen(0, "127.0.0.1", () => {
          const address = server.address()
          const port = typeof address === "object" && address !== null ? address.port : 0
          resolve({ url: `http://127.0.0.1:${port}`, spans, bodies, close: () => server.close() })
        })
      })
    ),
    ({ close }) => Effect.sync(close)
  )

  interface Span {
    readonly traceId: string
    readonly spanId: string
    readonly parentSpanId?: string
    readonly name: string
    readonly attributes?: ReadonlyArray<{ readonly key: string; readonly value: { readonly stringValue?: string } }>
  }

  /** A span's string attributes by key. */
  const attributesOf = (span: Span): Record<string, string | undefined> =>
    Object.fromEntries((span.attributes ?? []).map(({ key, value }) => [key, value.stringValue]))

  it.scopedLive(
    "with OTEL_EXPORTER_OTLP_ENDPOINT, continues the Backend's trace: request, Runtime method, turn",
    () =>
      Effect.gen(function*() {
        const otlp = yield* receiver
        const bin = yield* startBin(
          ["--profiles", profilesFile()],
          cleanEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_SERVICE_NAME: "runtime-under-test" })
        )
        // The Backend: the derived client, inside a span of its own.
        const client = RuntimeHttpClientLive({ baseUrl: bin.url }).pipe(Layer.provide(FetchHttpClient.layer))
        const backendSpan = yield* Effect.gen(function*() {
          const rt = yield* Runtime
          const span = yield* Effect.currentSpan
          const worker = yield* rt.create({})
          yield* rt.input(worker.id, { content: "traced" })
          yield* Effect.either(rt.get(WorkerId.make("nope")))
          return span
        }).pipe(Effect.withSpan("backend"), Effect.provide(client))
        const spans = yield* eventuallyLive(
          Effect.sync(() => otlp.spans),
          (all) => all.some((span) => span.name === "turn") && all.some((span) => span.name === "Runtime.input"),
          "the runtime's spans exported",
          {}
        )
        const ours = spans.filter((span) => span.traceId === backendSpan.traceId)
        const names = ours.map((span) => span.name)
        expect(names).toEqual(expect.arrayContaining(["Runtime.create", "Runtime.input", "Runtime.get", "turn"]))
        // The runtime's request spans are children of spans of the Backend's process.
        const runtimeIds = new Set(ours.map((span) => span.spanId))
        const roots = ours.filter((span) => !runtimeIds.has(span.parentSpanId ?? ""))
        expect(roots.length).toBeGreaterThan(0)
        for (const root of roots) expect(root.parentSpanId).toMatch(/^[0-9a-f]{16}$/)
        // Runtime.input is inside the request span of its call.
        const input = ours.find((span) => span.name === "Runtime.input")!
        expect(runtimeIds.has(input.parentSpanId ?? "")).toBe(true)
        bin.child.kill("SIGTERM")
        expect(yield* exitOf(bin)).toBe(0)
      })
  )

  it.scopedLive(
    "HTTP spans, the server's and the derived client's, record the path and allowlisted headers, never a credential or a query's values",
    () =>
      Effect.gen(function*() {
        const otlp = yield* receiver
        const bin = yield* startBin(
          ["--profiles", profilesFile()],
          cleanEnv({ WORKER_RUNTIME_TOKEN: TOKEN, OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url })
        )
        const secrets = ["secret1-proxy", "secret2-forwarded", "secret3-api-key", "secret4-cursor", "secret5-meta"]
        const [proxy, forwarded, apiKey, cursor, metadata] = secrets
        const agent = "operability-agent/1.0"
        const direct = yield* raw(bin.url, `/v1/workers?limit=7&after=${cursor}`, {
          token: TOKEN,
          headers: {
            "proxy-authorization": proxy!,
            "x-forwarded-authorization": `Bearer ${forwarded}`,
            "x-api-key": apiKey!,
            "user-agent": agent
          }
        })
        expect(direct.status).toBe(200)
        // The Backend: the derived client with the token, its spans exported by a tracer of its own.
        const backendTracer = OtlpTracer.layer({
          url: `${otlp.url}/v1/traces`,
          resource: { serviceName: "backend" },
          exportInterval: "100 millis"
        }).pipe(Layer.provide([FetchHttpClient.layer, OtlpSerialization.layerJson]))
        yield* Effect.gen(function*() {
          const rt = yield* Runtime
          yield* rt.list({ limit: 7, after: cursor!, metadata: { team: metadata! } })
        }).pipe(
          Effect.withSpan("backend"),
          Effect.provide(
            RuntimeHttpClientLive({ baseUrl: bin.url, token: TOKEN }).pipe(Layer.provide(FetchHttpClient.layer))
          ),
          Effect.provide(backendTracer)
        )
        const isServerList = (span: Span) =>
          span.name === "http.server GET" && attributesOf(span)["url.path"] === "/v1/workers"
        const spans = yield* eventuallyLive(
          Effect.sync(() => [...otlp.spans]),
          (all) =>
            all.filter(isServerList).length >= 2 &&
            all.some((span) => span.name === "http.client GET"),
          "the server's and the client's request spans exported",
          {}
        )
        // Nothing exported carries a secret, the token, or a query's values.
        const exported = otlp.bodies.join("\n")
        for (const secret of [...secrets, TOKEN]) expect(exported).not.toContain(secret)
        expect(exported).not.toContain("limit=7")
        // What is recorded: the route and path, the allowlisted headers.
        const server = spans.filter(isServerList).map(attributesOf)
        const fromRaw = server.find((attributes) => attributes["http.request.header.user-agent"] === agent)
        expect(fromRaw).toMatchObject({
          "http.request.method": "GET",
          "http.route": "/v1/workers",
          "url.path": "/v1/workers"
        })
        for (const attributes of server) {
          const headers = Object.keys(attributes).filter((key) => key.startsWith("http.request.header."))
          for (const header of headers) {
            expect(["accept", "content-length", "content-type", "traceparent", "user-agent"]).toContain(
              header.slice("http.request.header.".length)
            )
          }
        }
        const client = attributesOf(spans.find((span) => span.name === "http.client GET")!)
        expect(client).toMatchObject({
          "http.request.method": "GET",
          "url.path": "/v1/workers",
          "url.full": `${bin.url}/v1/workers`
        })
        expect(Object.keys(client).some((key) => key.includes("authorization"))).toBe(false)
        bin.child.kill("SIGTERM")
        expect(yield* exitOf(bin)).toBe(0)
      })
  )

  it.scopedLive("the derived client sends a W3C traceparent from the Backend's span", () =>
    Effect.gen(function*() {
      const seen: Array<string | undefined> = []
      const fake = yield* Effect.acquireRelease(
        Effect.promise(() =>
          new Promise<{ url: string; close: () => void }>((resolve) => {
            const server = createServer((request, response) => {
              const header = request.headers["traceparent"]
              seen.push(Array.isArray(header) ? header[0] : header)
              response.writeHead(404, { "content-type": "application/json" })
              response.end(JSON.stringify({ _tag: "UnknownWorker", workerId: "nope", message: "no" }))
            }).listen(0, "127.0.0.1", () => {
              const address = server.address()
              const port = typeof address === "object" && address !== null ? address.port : 0
              resolve({ url: `http://127.0.0.1:${port}`, close: () => server.close() })
            })
          })
        ),
        ({ close }) => Effect.sync(close)
      )
      const span = yield* Effect.gen(function*() {
        const rt = yield* Runtime
        yield* Effect.either(rt.get(WorkerId.make("nope")))
        return yield* Effect.currentSpan
      }).pipe(
        Effect.withSpan("backend"),
        Effect.provide(RuntimeHttpClientLive({ baseUrl: fake.url }).pipe(Layer.provide(FetchHttpClient.layer)))
      )
      expect(seen[0]).toMatch(new RegExp(`^00-${span.traceId}-[0-9a-f]{16}-01$`))
    }))
})

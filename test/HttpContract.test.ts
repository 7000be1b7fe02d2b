/**
 * The REST contract from outside the process: statuses, tags, bodies and
 * headers of docs/rest.md, with raw requests (Node's `fetch`).
 */
import { readFileSync } from "node:fs"
import { createServer } from "node:http"
import { connect } from "node:net"
import { join } from "node:path"

import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"

import { bodyLimitFor, RuntimeHttpServerLive } from "../src/http/index.js"
import { makeEchoEngine, Runtime, RuntimeId, type RuntimeService } from "../src/index.js"
import { baseUrl, httpServer } from "./support/httpRuntime.js"
import { projectRoot } from "./support/packed.js"
import { raw, type RawResponse } from "./support/raw.js"

const TOKEN = "s3cret-token"

interface OpenApiMedia {
  readonly schema: unknown
  readonly example?: unknown
}
interface OpenApiOperation {
  readonly operationId: string
  readonly summary?: string
  readonly description?: string
  readonly parameters?: ReadonlyArray<{
    readonly name: string
    readonly in?: string
    readonly style?: string
    readonly description?: string
    readonly schema: unknown
    readonly example?: unknown
  }>
  readonly requestBody?: { readonly required?: boolean; readonly content: Record<string, OpenApiMedia> }
  readonly responses: Record<
    string,
    { readonly headers?: Record<string, unknown>; readonly content?: Record<string, OpenApiMedia> }
  >
}
interface OpenApiDocument {
  readonly info: { readonly license?: { readonly name: string } }
  readonly servers?: ReadonlyArray<unknown>
  readonly tags: ReadonlyArray<{ readonly name: string; readonly description?: string }>
  readonly paths: Record<string, Record<string, OpenApiOperation>>
  readonly components: { readonly schemas: Record<string, unknown> }
}
const MAX_INPUT = 1024
const BODY_LIMIT = bodyLimitFor(MAX_INPUT)

const profiles = { default: makeEchoEngine(), slow: makeEchoEngine({ delayMs: 60_000 }) }

const expectError = (response: RawResponse, status: number, tag: string) => {
  expect(response.status, response.text).toBe(status)
  expect(response.headers.get("content-type")).toContain("application/json")
  expect(response.json).toMatchObject({ _tag: tag, message: expect.any(String) })
}

const noCors = (response: RawResponse) => {
  for (const [name] of response.headers) expect(name.startsWith("access-control-"), name).toBe(false)
}

layer(httpServer({ profiles, maxInputBytes: MAX_INPUT, maxWorkers: 1000 }, TOKEN), { excludeTestServices: true })(
  "REST contract",
  (it) => {
    const call = (path: string, options: Parameters<typeof raw>[2] = {}) =>
      Effect.flatMap(baseUrl, (url) => raw(url, path, { token: TOKEN, ...options }))
    const create = (profile = "default") =>
      Effect.map(call("/v1/workers", { method: "POST", body: { profile } }), (response) => {
        expect(response.status).toBe(201)
        return response.json as { id: string }
      })

    describe("success statuses and shapes", () => {
      it.effect("create 201, get 200, input 202, transcript 200, cancel and stop 200", () =>
        Effect.gen(function*() {
          const created = yield* call("/v1/workers", { method: "POST", body: { metadata: { a: "b" } } })
          expect(created.status).toBe(201)
          const worker = created.json as { id: string; status: string; metadata: unknown }
          expect(worker).toMatchObject({ status: "idle", metadata: { a: "b" }, turn: 0, lastSeq: 0 })
          const got = yield* call(`/v1/workers/${worker.id}`)
          expect(got.status).toBe(200)
          expect(got.json).toEqual(worker)
          const input = yield* call(`/v1/workers/${worker.id}/input`, { method: "POST", body: { content: "hi" } })
          expect(input.status).toBe(202)
          expect(input.json).toMatchObject({ worker: { status: "busy" }, entry: { seq: 1, role: "user" } })
          const transcript = yield* call(`/v1/workers/${worker.id}/transcript?after=0&limit=10`)
          expect(transcript.status).toBe(200)
          expect(transcript.json).toMatchObject({ workerId: worker.id, entries: expect.any(Array) })
          const cancel = yield* call(`/v1/workers/${worker.id}/cancel`, { method: "POST" })
          expect(cancel.status).toBe(200)
          expect(cancel.json).toMatchObject({ cancelled: expect.any(Boolean), worker: { id: worker.id } })
          const stop = yield* call(`/v1/workers/${worker.id}/stop`, { method: "POST" })
          expect(stop.status).toBe(200)
          expect(stop.json).toMatchObject({ status: "stopped", stopReason: "stopped" })
          yield* create()
          const list = yield* call("/v1/workers?limit=1")
          expect(list.status).toBe(200)
          expect(list.json).toMatchObject({ workers: [expect.any(Object)], nextAfter: expect.any(String) })
          const info = yield* call("/v1/runtime")
          expect(info.status).toBe(200)
          expect(info.json).toMatchObject({ status: "running", store: "memory", limits: { maxInputBytes: MAX_INPUT } })
        }))

      it.effect("cancel and stop take { reason } or an empty body", () =>
        Effect.gen(function*() {
          const worker = yield* create("slow")
          yield* call(`/v1/workers/${worker.id}/input`, { method: "POST", body: { content: "x" } })
          const cancel = yield* call(`/v1/workers/${worker.id}/cancel`, { method: "POST", body: { reason: "why" } })
          expect(cancel.json).toMatchObject({ cancelled: true, worker: { status: "idle" } })
          const stop = yield* call(`/v1/workers/${worker.id}/stop`, {
            method: "POST",
            rawBody: "",
            headers: { "content-type": "application/json" }
          })
          expect(stop.json).toMatchObject({ status: "stopped", stopReason: "stopped" })
        }))

      it.effect("the probes answer without a token", () =>
        Effect.gen(function*() {
          const url = yield* baseUrl
          const health = yield* raw(url, "/healthz")
          expect(health.status).toBe(200)
          expect(health.json).toEqual({ status: "ok" })
          const ready = yield* raw(url, "/readyz")
          expect(ready.status).toBe(200)
          expect(ready.json).toEqual({ status: "ready" })
        }))
    })

    describe("auth", () => {
      it.effect("needs the bearer token everywhere but the probes, unknown paths included", () =>
        Effect.gen(function*() {
          const url = yield* baseUrl
          expectError(yield* raw(url, "/v1/runtime"), 401, "Unauthorized")
          expectError(yield* raw(url, "/v1/runtime", { headers: { authorization: "Bearer " } }), 401, "Unauthorized")
          expectError(yield* raw(url, "/v1/runtime", { headers: { authorization: "Bearer" } }), 401, "Unauthorized")
          expectError(yield* raw(url, "/v1/runtime", { token: "wrong" }), 401, "Unauthorized")
          expectError(yield* raw(url, "/v1/runtime", { token: `${TOKEN}x` }), 401, "Unauthorized")
          expectError(yield* raw(url, "/v1/runtime", { token: TOKEN.slice(1) }), 401, "Unauthorized")
          expectError(
            yield* raw(url, "/v1/runtime", { headers: { authorization: `Basic ${TOKEN}` } }),
            401,
            "Unauthorized"
          )
          expect((yield* raw(url, "/v1/runtime", { token: TOKEN })).status).toBe(200)
          expect((yield* raw(url, "/v1/runtime", { headers: { authorization: `bearer ${TOKEN}` } })).status).toBe(200)
          expectError(yield* raw(url, "/nope"), 401, "Unauthorized")
          expectError(yield* raw(url, "/openapi.json"), 401, "Unauthorized")
          expectError(yield* raw(url, "/v1/workers", { method: "POST", body: {} }), 401, "Unauthorized")
          expect((yield* raw(url, "/healthz?x=1")).status).toBe(200)
        }))
    })

    describe("browser guard", () => {
      it.effect("refuses requests carrying Origin, Sec-Fetch-Site or Sec-Fetch-Dest, before auth", () =>
        Effect.gen(function*() {
          const url = yield* baseUrl
          for (
            const headers of [
              { origin: "https://app.example" },
              { "sec-fetch-site": "cross-site" },
              { "sec-fetch-site": "same-origin" },
              { "sec-fetch-dest": "empty" }
            ]
          ) {
            const withToken = yield* raw(url, "/v1/runtime", { token: TOKEN, headers })
            expectError(withToken, 403, "Forbidden")
            noCors(withToken)
            expectError(yield* raw(url, "/v1/runtime", { headers }), 403, "Forbidden")
            expectError(yield* raw(url, "/healthz", { headers }), 403, "Forbidden")
            expectError(yield* raw(url, "/nope", { headers }), 403, "Forbidden")
          }
          const preflight = yield* raw(url, "/v1/workers", {
            method: "OPTIONS",
            headers: { origin: "https://app.example", "access-control-request-method": "POST" }
          })
          expectError(preflight, 403, "Forbidden")
          noCors(preflight)
        }))

      it.effect("lets Node's fetch through (it sends Sec-Fetch-Mode: cors)", () =>
        Effect.gen(function*() {
          const url = yield* baseUrl
          const response = yield* raw(url, "/v1/runtime", { token: TOKEN, headers: { "sec-fetch-mode": "cors" } })
          expect(response.status).toBe(200)
          noCors(response)
        }))
    })

    describe("errors: tags, statuses, precedence", () => {
      it.effect("UnknownWorker 404 carries the id; RouteNotFound 404 for unknown paths, 405 for unknown methods", () =>
        Effect.gen(function*() {
          const unknown = yield* call("/v1/workers/nope")
          expectError(unknown, 404, "UnknownWorker")
          expect(unknown.json).toMatchObject({ workerId: "nope" })
          expectError(yield* call("/v1/nothing"), 404, "RouteNotFound")
          expectError(yield* call("/v1/workers/nope", { method: "PUT", body: {} }), 405, "MethodNotAllowed")
          expectError(yield* call("/v1/runtime", { method: "POST", body: {} }), 405, "MethodNotAllowed")
        }))

      it.effect("malformed JSON, wrong shapes and empty bodies are InvalidInput 400", () =>
        Effect.gen(function*() {
          const worker = yield* create()
          const input = `/v1/workers/${worker.id}/input`
          const json = { "content-type": "application/json" }
          const cases: Array<[string, Parameters<typeof raw>[2]]> = [
            [input, { method: "POST", rawBody: "{not json", headers: json }],
            [input, { method: "POST", rawBody: "", headers: json }],
            [input, { method: "POST" }],
            [input, { method: "POST", body: { content: "" } }],
            [input, { method: "POST", body: { content: 5 } }],
            [input, { method: "POST", body: { content: "x", kind: "worker" } }],
            [input, { method: "POST", body: { content: "x", extra: 1 } }],
            [input, { method: "POST", body: ["x"] }],
            ["/v1/workers", { method: "POST" }],
            ["/v1/workers", { method: "POST", rawBody: "{", headers: json }],
            ["/v1/workers", { method: "POST", body: { command: ["sh", "-c", "id"] } }],
            ["/v1/workers", { method: "POST", body: { profile: "default", env: { A: "1" } } }],
            ["/v1/workers", { method: "POST", body: { metadata: { k: 1 } } }],
            ["/v1/workers", { method: "POST", body: { profile: "nope" } }],
            [`/v1/workers/${worker.id}/cancel`, { method: "POST", body: { reason: 5 } }],
            [`/v1/workers/${worker.id}/stop`, { method: "POST", body: { reason: "x", force: true } }],
            [`/v1/workers/${worker.id}/stop`, { method: "POST", rawBody: "nope", headers: json }],
            [`/v1/workers/${worker.id}/transcript?limit=0`, {}],
            [`/v1/workers/${worker.id}/transcript?limit=1001`, {}],
            [`/v1/workers/${worker.id}/transcript?limit=abc`, {}],
            [`/v1/workers/${worker.id}/transcript?after=-1`, {}],
            [`/v1/workers/${worker.id}/transcript?after=1.5`, {}],
            ["/v1/workers?limit=0", {}],
            ["/v1/workers?limit=2&limit=3", {}],
            ["/v1/workers?status=asleep", {}]
          ]
          for (const [path, options] of cases) {
            const response = yield* call(path, options)
            expect(response.status, `${path} ${JSON.stringify(options)}: ${response.text}`).toBe(400)
            expect(response.json).toMatchObject({ _tag: "InvalidInput", message: expect.any(String) })
          }
          const decode = yield* call(input, { method: "POST", body: { content: "" } })
          expect(decode.json).toMatchObject({ issues: [expect.objectContaining({ path: ["content"] })] })
          expect((yield* call(`/v1/workers/${worker.id}`)).json).toMatchObject({ lastSeq: 0 })
        }))

      it.effect("shape beats UnknownWorker; UnknownWorker beats oversized content", () =>
        Effect.gen(function*() {
          expectError(
            yield* call("/v1/workers/nope/input", { method: "POST", body: { content: "" } }),
            400,
            "InvalidInput"
          )
          const big = "x".repeat(MAX_INPUT + 1)
          expectError(
            yield* call("/v1/workers/nope/input", { method: "POST", body: { content: big } }),
            404,
            "UnknownWorker"
          )
          const worker = yield* create()
          expectError(
            yield* call(`/v1/workers/${worker.id}/input`, { method: "POST", body: { content: big } }),
            400,
            "InvalidInput"
          )
          const exact = yield* call(`/v1/workers/${worker.id}/input`, {
            method: "POST",
            body: { content: "x".repeat(MAX_INPUT) }
          })
          expect(exact.status).toBe(202)
        }))

      it.effect("a body over the limit is PayloadTooLarge 413, after RouteNotFound and before the rest", () =>
        Effect.gen(function*() {
          const worker = yield* create()
          const huge = JSON.stringify({ content: "x".repeat(BODY_LIMIT) })
          const json = { "content-type": "application/json" }
          expectError(
            yield* call(`/v1/workers/${worker.id}/input`, { method: "POST", rawBody: huge, headers: json }),
            413,
            "PayloadTooLarge"
          )
          expectError(
            yield* call("/v1/workers/nope/input", { method: "POST", rawBody: huge, headers: json }),
            413,
            "PayloadTooLarge"
          )
          expectError(
            yield* call("/v1/workers", { method: "POST", rawBody: `{"x":"${"y".repeat(BODY_LIMIT)}"`, headers: json }),
            413,
            "PayloadTooLarge"
          )
          expectError(
            yield* call("/v1/unknown", { method: "POST", rawBody: huge, headers: json }),
            404,
            "RouteNotFound"
          )
          // Just under the limit: the body is read, the content is judged on its own size.
          const within = JSON.stringify({ content: "x".repeat(BODY_LIMIT - 100) })
          expectError(
            yield* call(`/v1/workers/${worker.id}/input`, { method: "POST", rawBody: within, headers: json }),
            400,
            "InvalidInput"
          )
        }))

      it.effect("Busy 409: of 20 concurrent inputs to one Worker exactly one is 202", () =>
        Effect.gen(function*() {
          const worker = yield* create("slow")
          const responses = yield* Effect.forEach(
            Array.from({ length: 20 }, (_, i) => i),
            (i) => call(`/v1/workers/${worker.id}/input`, { method: "POST", body: { content: `n${i}` } }),
            { concurrency: "unbounded" }
          )
          expect(responses.filter((response) => response.status === 202)).toHaveLength(1)
          const busy = responses.filter((response) => response.status !== 202)
          expect(busy).toHaveLength(19)
          for (const response of busy) {
            expectError(response, 409, "Busy")
            expect(response.json).toMatchObject({ workerId: worker.id, turn: 1 })
          }
          const again = yield* call(`/v1/workers/${worker.id}/input`, { method: "POST", body: { content: "x" } })
          expectError(again, 409, "Busy")
          expect((yield* call(`/v1/workers/${worker.id}`)).json).toMatchObject({ lastSeq: 1, status: "busy" })
          yield* call(`/v1/workers/${worker.id}/stop`, { method: "POST" })
        }))

      it.effect("Unsupported 422 on a stopped Worker, with the operation", () =>
        Effect.gen(function*() {
          const worker = yield* create()
          yield* call(`/v1/workers/${worker.id}/stop`, { method: "POST", body: { reason: "done" } })
          const input = yield* call(`/v1/workers/${worker.id}/input`, { method: "POST", body: { content: "x" } })
          expectError(input, 422, "Unsupported")
          expect(input.json).toMatchObject({ operation: "input", workerId: worker.id })
          const cancel = yield* call(`/v1/workers/${worker.id}/cancel`, { method: "POST" })
          expectError(cancel, 422, "Unsupported")
          expect(cancel.json).toMatchObject({ operation: "cancel" })
          const stop = yield* call(`/v1/workers/${worker.id}/stop`, { method: "POST" })
          expect(stop.json).toMatchObject({ status: "stopped", stopReason: "done" })
        }))
    })

    describe("requests Node's parser rejects", () => {
      const rawSocket = (url: string, request: string) =>
        Effect.promise(() =>
          new Promise<string>((resolve, reject) => {
            const { hostname, port } = new URL(url)
            const socket = connect(Number(port), hostname, () => socket.end(request))
            let response = ""
            socket.on("data", (chunk) => (response += chunk.toString()))
            socket.on("end", () => resolve(response))
            socket.on("error", reject)
          })
        )

      it.effect("still get a JSON body with _tag and message", () =>
        Effect.gen(function*() {
          const url = yield* baseUrl
          for (
            const request of [
              `GET /v1/runtime HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`,
              "POST /v1/workers HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
              "NOT-HTTP\r\n\r\n"
            ]
          ) {
            const response = yield* rawSocket(url, request)
            expect(response).toMatch(/^HTTP\/1\.1 4\d\d /)
            const body = JSON.parse(response.slice(response.indexOf("\r\n\r\n") + 4))
            expect(body).toMatchObject({ _tag: "InvalidInput", message: expect.any(String) })
          }
        }))
    })

    describe("openapi", () => {
      it.effect("serves the document derived from RuntimeApi, equal to docs/openapi.json", () =>
        Effect.gen(function*() {
          const response = yield* call("/openapi.json")
          expect(response.status).toBe(200)
          const committed = JSON.parse(readFileSync(join(projectRoot, "docs", "openapi.json"), "utf8"))
          expect(response.json, "docs/openapi.json drifted: run `npm run openapi`").toEqual(committed)
          const text = JSON.stringify(response.json)
          expect(text).not.toContain("HttpApiDecodeError")
          expect(Object.keys((response.json as { paths: object }).paths).sort()).toEqual([
            "/healthz",
            "/metrics",
            "/openapi.json",
            "/readyz",
            "/v1/runtime",
            "/v1/workers",
            "/v1/workers/{workerId}",
            "/v1/workers/{workerId}/cancel",
            "/v1/workers/{workerId}/events",
            "/v1/workers/{workerId}/input",
            "/v1/workers/{workerId}/stop",
            "/v1/workers/{workerId}/transcript",
            "/v1/workers/{workerId}/turns/{turn}"
          ])
        }))

      it.effect("is exact enough for generated clients and linters", () =>
        Effect.gen(function*() {
          const doc = (yield* call("/openapi.json")).json as OpenApiDocument
          expect(doc.info.license?.name).toBe("MIT")
          expect(doc.servers?.length).toBeGreaterThan(0)
          const text = JSON.stringify(doc)
          expect(text).not.toMatch(/"title":"(?!worker-runtime)/)
          expect(text).not.toContain("HttpApiDecodeError")
          for (const tag of doc.tags) expect(tag.description, tag.name).toEqual(expect.any(String))
          const schemas = doc.components.schemas
          expect(schemas["Timestamp"]).toMatchObject({ type: "string", format: "date-time" })
          expect(schemas["Metadata"]).toMatchObject({
            maxProperties: 32,
            propertyNames: { minLength: 1, maxLength: 64 },
            description: expect.stringContaining("__proto__")
          })
          const visit = (value: unknown) => {
            if (Array.isArray(value)) return value.forEach(visit)
            if (typeof value !== "object" || value === null) return
            const anyOf = (value as { anyOf?: Array<unknown> }).anyOf
            if (anyOf !== undefined) expect(anyOf.length, JSON.stringify(value)).toBeGreaterThan(1)
            expect((value as { type?: string }).type, "numbers are integers here").not.toBe("number")
            Object.values(value).forEach(visit)
          }
          visit(doc)
          const bodyOps = ["workers.create", "workers.input", "workers.cancel", "workers.stop"]
          for (const [path, item] of Object.entries(doc.paths)) {
            for (const [method, operation] of Object.entries(item)) {
              const where = `${method.toUpperCase()} ${path}`
              expect(operation.summary, where).toEqual(expect.any(String))
              expect(operation.description, where).toEqual(expect.any(String))
              for (const parameter of operation.parameters ?? []) {
                expect(parameter.description, `${where} ${parameter.name}`).toEqual(expect.any(String))
              }
              const responses = operation.responses
              const statuses = Object.keys(responses)
              const probe = path === "/healthz" || path === "/readyz"
              expect(statuses.includes("401"), `${where}: 401 only where the token is needed`).toBe(!probe)
              const readsBody = bodyOps.includes(operation.operationId)
              expect(statuses.includes("413"), `${where}: 413`).toBe(readsBody)
              expect(statuses.includes("415"), `${where}: 415`).toBe(readsBody)
              if (responses["503"] !== undefined) expect(responses["503"].headers?.["Retry-After"], where).toBeDefined()
              if (responses["401"] !== undefined) {
                expect(responses["401"].headers?.["WWW-Authenticate"], where).toBeDefined()
              }
              for (const [status, response] of Object.entries(responses)) {
                for (const media of Object.values(response.content ?? {})) {
                  expect(media.example, `${where} ${status} example`).toBeDefined()
                }
              }
              if (operation.requestBody !== undefined) {
                const media = Object.values(operation.requestBody.content)
                for (const body of media) expect(body.example, `${where} request example`).toBeDefined()
                const optional = operation.operationId === "workers.cancel" || operation.operationId === "workers.stop"
                expect(operation.requestBody.required, where).toBe(!optional)
              }
            }
          }
          const integer = (path: string, name: string) =>
            doc.paths[path]!["get"]!.parameters!.find((parameter) => parameter.name === name)!.schema
          expect(integer("/v1/workers", "limit")).toMatchObject({ type: "integer", minimum: 1, maximum: 1000 })
          expect(integer("/v1/workers/{workerId}/transcript", "after")).toMatchObject({ type: "integer", minimum: 0 })
        }))

      it.effect("declares the list's metadata filter as a form-exploded object keyed by the query names", () =>
        Effect.gen(function*() {
          const doc = (yield* call("/openapi.json")).json as OpenApiDocument
          const list = doc.paths["/v1/workers"]!["get"]!
          expect(list.operationId).toBe("workers.list")
          const filter = list.parameters!.find((parameter) => parameter.name === "metadata")
          expect(filter).toMatchObject({
            in: "query",
            required: false,
            style: "form",
            explode: true,
            description: expect.stringContaining("metadata.<key>=<value>"),
            schema: {
              type: "object",
              maxProperties: 4,
              propertyNames: { pattern: "^metadata\\.", minLength: 10, maxLength: 73 },
              additionalProperties: { type: "string" }
            }
          })
          for (const parameter of list.parameters!) expect(parameter.style, parameter.name).not.toBe("deepObject")
          // Sent as declared (form, exploded: one name=value per property), the example filters.
          const example = filter!.example as Record<string, string>
          expect(Object.keys(example).every((name) => /^metadata\./.test(name))).toBe(true)
          const metadata = Object.fromEntries(
            Object.entries(example).map(([name, value]) => [name.slice("metadata.".length), value])
          )
          const match = (yield* call("/v1/workers", { method: "POST", body: { metadata } })).json as { id: string }
          const other = (yield* call("/v1/workers", {
            method: "POST",
            body: { metadata: Object.fromEntries(Object.keys(metadata).map((key) => [key, "other"])) }
          })).json as { id: string }
          const query = new URLSearchParams({ ...example, limit: "1000" })
          const page = yield* call(`/v1/workers?${query}`)
          expect(page.status, page.text).toBe(200)
          const ids = (page.json as { workers: Array<{ id: string }> }).workers.map((worker) => worker.id)
          expect(ids).toContain(match.id)
          expect(ids).not.toContain(other.id)
        }))
    })
  }
)

describe("Unavailable", () => {
  it.live("503 with Retry-After at capacity", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      expect((yield* raw(url, "/v1/workers", { method: "POST", body: {} })).status).toBe(201)
      const full = yield* raw(url, "/v1/workers", { method: "POST", body: {} })
      expectError(full, 503, "Unavailable")
      expect(Number(full.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)
    }).pipe(Effect.provide(httpServer({ maxWorkers: 1 }))))
})

/** A Runtime whose every method dies: what a bug would look like. */
const brokenRuntime: RuntimeService = {
  info: Effect.succeed({
    runtimeId: RuntimeId.make("broken"),
    displayName: null,
    version: "0",
    status: "running",
    store: "memory",
    startedAt: new Date(0).toISOString(),
    profiles: [],
    workers: { total: 0, idle: 0, busy: 0, stopped: 0, failed: 0 },
    limits: { maxWorkers: 1, maxInputBytes: 1024, maxTranscriptPage: 1000 },
    cluster: null
  }),
  list: () => Effect.dieMessage("bug"),
  get: () => Effect.dieMessage("bug"),
  create: () => Effect.dieMessage("bug"),
  input: () => Effect.dieMessage("bug"),
  cancel: () => Effect.dieMessage("bug"),
  stop: () => Effect.dieMessage("bug"),
  transcript: () => Effect.dieMessage("bug"),
  turn: () => Effect.dieMessage("bug"),
  events: () => Stream.dieMessage("bug"),
  delete: () => Effect.dieMessage("bug")
}

describe("defects", () => {
  it.live("an answer that cannot be encoded is a 500, never the client's InvalidInput", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      const response = yield* raw(url, "/v1/workers/x")
      expectError(response, 500, "InternalError")
    }).pipe(
      Effect.provide(
        RuntimeHttpServerLive().pipe(
          Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
          Layer.provide(
            Layer.succeed(Runtime, {
              ...brokenRuntime,
              // Not a Worker: the success schema cannot encode it.
              get: () => Effect.succeed(JSON.parse("{\"id\":5}"))
            })
          )
        )
      )
    ))

  it.live("answer 500 with a typed body", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      const response = yield* raw(url, "/v1/workers/x")
      expectError(response, 500, "InternalError")
      expect(response.text).not.toContain("bug")
    }).pipe(
      Effect.provide(
        RuntimeHttpServerLive().pipe(
          Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
          Layer.provide(Layer.succeed(Runtime, brokenRuntime))
        )
      )
    ))
})

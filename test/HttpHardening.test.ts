/**
 * What outside tools found (a hostile browser page, a fuzzer, generated
 * clients): the Host check against DNS rebinding, bodies that are not JSON,
 * strict query integers, metadata lengths in code points, 405, exact paths,
 * readable errors, and bodies that must be refused before decoding.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { createServer } from "node:http"
import { bodyLimitFor, RuntimeHttpServerLive } from "../src/http/index.js"
import { makeEchoEngine, RuntimeLive } from "../src/index.js"
import { baseUrl } from "./support/httpRuntime.js"
import { nodeRequest, raw, type RawResponse, rawSocket } from "./support/raw.js"

const TOKEN = "hardening-token-0123456789"

const expectError = (response: RawResponse, status: number, tag: string) => {
  expect(response.status, response.text).toBe(status)
  expect(response.headers.get("content-type")).toContain("application/json")
  expect(response.json).toMatchObject({ _tag: tag, message: expect.any(String) })
}

const MAX_INPUT_BYTES = 1024

const server = (options: { token?: string; allowedHosts?: ReadonlyArray<string> } = {}) =>
  RuntimeHttpServerLive({
    token: options.token === undefined ? undefined : Redacted.make(options.token),
    allowedHosts: options.allowedHosts,
    maxInputBytes: MAX_INPUT_BYTES
  }).pipe(
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
    Layer.provideMerge(RuntimeLive({ profiles: { default: makeEchoEngine() }, maxInputBytes: MAX_INPUT_BYTES }))
  )

const REBOUND = [
  "rebind.example:8787",
  "0.0.0.0:8787",
  "[::ffff:127.0.0.1]:8787",
  "127.0.0.1.evil.example",
  "localhost:x"
]
const LOOPBACK = [
  "localhost:8787",
  "LOCALHOST",
  "app.localhost:1",
  "127.0.0.1",
  "127.9.9.9:80",
  "[::1]:8787",
  "localhost."
]

layer(server(), { excludeTestServices: true })("a tokenless runtime on loopback", (it) => {
  it.effect("refuses every rebound Host with 403 Forbidden, on every path", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      for (const host of REBOUND) {
        for (const path of ["/v1/workers", "/v1/runtime", "/healthz", "/readyz", "/openapi.json", "/nope"]) {
          const response = yield* nodeRequest(url, path, { headers: { host } })
          expectError(response, 403, "Forbidden")
          expect(response.text, "no Worker data leaks").not.toContain("workers")
        }
      }
    }))

  it.effect("refuses an empty Host, and a request without one (HTTP/1.0), with 403", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      for (
        const request of [
          "GET /v1/workers HTTP/1.0\r\n\r\n",
          "GET /v1/workers HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n"
        ]
      ) {
        const response = yield* rawSocket(url, request)
        expect(response).toMatch(/^HTTP\/1\.[01] 403 /)
        expect(response).toContain("\"Forbidden\"")
      }
    }))

  it.effect("refuses two Host headers with 400 InvalidInput, whichever comes first", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      const request = (hosts: ReadonlyArray<string>, path = "/v1/workers") =>
        `GET ${path} HTTP/1.1\r\n${hosts.map((host) => `Host: ${host}\r\n`).join("")}Connection: close\r\n\r\n`
      for (
        const hosts of [
          ["localhost", "evil.example"],
          ["evil.example", "localhost"],
          ["localhost", "localhost"],
          ["127.0.0.1:8787", "evil.example"]
        ]
      ) {
        for (const path of ["/v1/workers", "/healthz", "/nope"]) {
          const response = yield* rawSocket(url, request(hosts, path))
          expect(response, `${hosts.join(" + ")} ${path}`).toMatch(/^HTTP\/1\.1 400 /)
          expect(response).toContain("application/json")
          const body = JSON.parse(response.slice(response.indexOf("\r\n\r\n") + 4)) as unknown
          expect(body).toMatchObject({ _tag: "InvalidInput", message: expect.stringContaining("Host") })
          expect(response, "no Worker data leaks").not.toContain("\"workers\"")
        }
      }
      // One Host: as before.
      expect(yield* rawSocket(url, request(["localhost"]))).toMatch(/^HTTP\/1\.1 200 /)
      expect(yield* rawSocket(url, request(["evil.example"]))).toMatch(/^HTTP\/1\.1 403 /)
    }))

  it.effect("takes loopback names with any port, and the bound address", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      for (const host of LOOPBACK) {
        const response = yield* nodeRequest(url, "/v1/workers", { headers: { host } })
        expect(response.status, host).toBe(200)
      }
    }))

  it.effect("takes 127.0.0.0/8 as Node writes it, and refuses what only looks like it (src/Loopback.ts)", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      for (const host of ["127.1.2.3:8787", "127.255.255.255"]) {
        expect((yield* nodeRequest(url, "/v1/workers", { headers: { host } })).status, host).toBe(200)
      }
      for (const host of ["127.0.0.256:8787", "127.1:8787", "127.0.0.01"]) {
        expectError(yield* nodeRequest(url, "/v1/workers", { headers: { host } }), 403, "Forbidden")
      }
    }))

  it.effect("reads a body as JSON only: forms, multipart and text are 415 and record nothing", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      const worker = (yield* raw(url, "/v1/workers", { method: "POST", body: {} })).json as { id: string }
      const input = `/v1/workers/${worker.id}/input`
      const form = yield* nodeRequest(url, input, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "content=hello&kind=system"
      })
      expectError(form, 415, "UnsupportedMediaType")
      const boundary = "----x"
      const multipart = `--${boundary}\r\nContent-Disposition: form-data; name="content"; filename="a.txt"\r\n` +
        `Content-Type: text/plain\r\n\r\nhello\r\n--${boundary}--\r\n`
      const upload = yield* nodeRequest(url, input, {
        method: "POST",
        headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
        body: multipart
      })
      expectError(upload, 415, "UnsupportedMediaType")
      expect(upload.text).not.toMatch(/\/tmp|tmp\//)
      const chunkedHuge = yield* nodeRequest(url, "/v1/workers/nope/input", {
        method: "POST",
        headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
        body: multipart.repeat(2000),
        chunked: true
      })
      expectError(chunkedHuge, 415, "UnsupportedMediaType")
      expectError(
        yield* nodeRequest(url, input, { method: "POST", headers: { "content-type": "text/plain" }, body: "hi" }),
        415,
        "UnsupportedMediaType"
      )
      const transcript = (yield* raw(url, `/v1/workers/${worker.id}/transcript`)).json
      expect(transcript).toMatchObject({ entries: [], lastSeq: 0 })
    }))

  it.effect("takes application/json with parameters, +json types, and no content type at all", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      for (const contentType of ["application/json; charset=utf-8", "application/vnd.worker+json", undefined]) {
        const worker = (yield* raw(url, "/v1/workers", { method: "POST", body: {} })).json as { id: string }
        const response = yield* nodeRequest(url, `/v1/workers/${worker.id}/input`, {
          method: "POST",
          headers: contentType === undefined ? {} : { "content-type": contentType },
          body: JSON.stringify({ content: "hi" })
        })
        expect(response.status, `${contentType}: ${response.text}`).toBe(202)
      }
    }))

  it.effect("refuses JSON nested deeper than 64 levels and bytes that are not UTF-8, as 400 before decoding", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      const worker = (yield* raw(url, "/v1/workers", { method: "POST", body: {} })).json as { id: string }
      const input = `/v1/workers/${worker.id}/input`
      const json = { "content-type": "application/json" }
      const deep = "[".repeat(3000) + "]".repeat(3000)
      const response = yield* nodeRequest(url, input, { method: "POST", headers: json, body: deep })
      expectError(response, 400, "InvalidInput")
      expect((response.json as { message: string }).message).toContain("64")
      const at65 = JSON.stringify({ content: "x", kind: JSON.parse("[".repeat(64) + "]".repeat(64)) })
      expect((yield* nodeRequest(url, input, { method: "POST", headers: json, body: at65 })).json).toMatchObject({
        message: expect.stringContaining("64 levels")
      })
      const notUtf8 = Buffer.concat([Buffer.from("{\"content\":\""), Buffer.from([0xc3, 0x28]), Buffer.from("\"}")])
      const invalid = yield* nodeRequest(url, input, { method: "POST", headers: json, body: notUtf8 })
      expectError(invalid, 400, "InvalidInput")
      expect((invalid.json as { message: string }).message).toContain("UTF-8")
      // A string full of brackets is not nesting.
      const brackets = JSON.stringify({ content: "[".repeat(500) + "{".repeat(500) })
      expect((yield* nodeRequest(url, input, { method: "POST", headers: json, body: brackets })).status).toBe(202)
    }))

  it.effect("takes only plain decimal integers in queries", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      const worker = (yield* raw(url, "/v1/workers", { method: "POST", body: {} })).json as { id: string }
      for (const value of ["0x10", "1e2", "%201", "1.0", "", "+5", "-0", "١٢"]) {
        expectError(yield* raw(url, `/v1/workers?limit=${value}`), 400, "InvalidInput")
        expectError(yield* raw(url, `/v1/workers/${worker.id}/transcript?after=${value}`), 400, "InvalidInput")
      }
      expect((yield* raw(url, "/v1/workers?limit=16")).status).toBe(200)
      expect((yield* raw(url, `/v1/workers/${worker.id}/transcript?after=0&limit=1000`)).status).toBe(200)
    }))

  it.effect("counts metadata lengths in code points and refuses __proto__", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      const smile = "\u{1F600}"
      const ok = yield* raw(url, "/v1/workers", {
        method: "POST",
        body: { metadata: { [smile.repeat(64)]: smile.repeat(1024) } }
      })
      expect(ok.status, ok.text).toBe(201)
      for (
        const metadata of [
          { k: smile.repeat(1025) },
          { [smile.repeat(65)]: "v" },
          JSON.parse("{\"__proto__\":\"x\"}")
        ]
      ) {
        expectError(yield* raw(url, "/v1/workers", { method: "POST", body: { metadata } }), 400, "InvalidInput")
      }
      const proto = yield* raw(url, "/v1/workers", {
        method: "POST",
        rawBody: "{\"metadata\":{\"__proto__\":\"x\"}}",
        headers: { "content-type": "application/json" }
      })
      expect((proto.json as { message: string }).message).toContain("__proto__")
    }))

  it.effect("answers 405 with Allow for a known path and another method", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      const post = yield* raw(url, "/v1/runtime", { method: "POST", body: {} })
      expectError(post, 405, "MethodNotAllowed")
      expect(post.headers.get("allow")).toBe("GET")
      expect(post.json).toMatchObject({ allow: ["GET"], method: "POST", path: "/v1/runtime" })
      const put = yield* raw(url, "/v1/workers", { method: "PUT", body: {} })
      expectError(put, 405, "MethodNotAllowed")
      expect(put.headers.get("allow")?.split(", ").sort()).toEqual(["GET", "POST"])
      expectError(yield* raw(url, "/v1/workers/x/input"), 405, "MethodNotAllowed")
      expectError(yield* raw(url, "/v1/nothing", { method: "POST", body: {} }), 404, "RouteNotFound")
    }))

  it.effect("words errors as one readable sentence with the path of each issue", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      const worker = (yield* raw(url, "/v1/workers", { method: "POST", body: {} })).json as { id: string }
      const input = `/v1/workers/${worker.id}/input`
      const cases: Array<[unknown, string, Array<string | number>]> = [
        [{ content: 5 }, "Invalid input: content must be a string.", ["content"]],
        [{ content: "" }, "Invalid input: content must not be empty.", ["content"]],
        [{ content: "x", kind: "worker" }, "Invalid input: kind must be \"user\" or \"system\".", ["kind"]],
        [{ content: "x", extra: 1 }, "Invalid input: extra is not allowed.", ["extra"]],
        [{}, "Invalid input: content is required.", ["content"]],
        [["x"], "Invalid input: the body must be a JSON object.", []]
      ]
      for (const [body, message, path] of cases) {
        const response = yield* raw(url, input, { method: "POST", body })
        expectError(response, 400, "InvalidInput")
        expect(response.json).toMatchObject({ message, issues: [{ path }] })
        expect(response.text).not.toMatch(/Expected|readonly|undefined/)
      }
      const query = yield* raw(url, "/v1/workers?limit=0")
      expect((query.json as { message: string }).message).toBe(
        "Invalid request: limit must be an integer from 1 to 1000."
      )
    }))
})

layer(server({ token: TOKEN, allowedHosts: ["runtime.internal", "Other.Example:9"] }), { excludeTestServices: true })(
  "a runtime with a token and allowed hosts",
  (it) => {
    it.effect("checks Host before auth, and takes the names given", () =>
      Effect.gen(function*() {
        const url = yield* baseUrl
        expectError(yield* nodeRequest(url, "/v1/runtime", { headers: { host: "rebind.example" } }), 403, "Forbidden")
        const auth = { authorization: `Bearer ${TOKEN}` }
        for (const host of ["runtime.internal", "runtime.internal:8787", "other.example", "localhost"]) {
          expect((yield* nodeRequest(url, "/v1/runtime", { headers: { host, ...auth } })).status, host).toBe(200)
        }
        expectError(
          yield* nodeRequest(url, "/v1/runtime", { headers: { host: "runtime.internal" } }),
          401,
          "Unauthorized"
        )
      }))

    it.effect("sends WWW-Authenticate: Bearer with every 401", () =>
      Effect.gen(function*() {
        const url = yield* baseUrl
        for (const path of ["/v1/runtime", "/nope", "/openapi.json"]) {
          const response = yield* raw(url, path)
          expectError(response, 401, "Unauthorized")
          expect(response.headers.get("www-authenticate")).toBe("Bearer")
        }
      }))

    it.effect("treats a trailing slash as another path: after auth, a 404", () =>
      Effect.gen(function*() {
        const url = yield* baseUrl
        expectError(yield* raw(url, "/healthz/"), 401, "Unauthorized")
        expectError(yield* raw(url, "/healthz/", { token: TOKEN }), 404, "RouteNotFound")
        expectError(yield* raw(url, "/v1/workers/", { token: TOKEN }), 404, "RouteNotFound")
        expect((yield* raw(url, "/healthz")).status).toBe(200)
      }))
  }
)

layer(server({ token: TOKEN, allowedHosts: ["*"] }), { excludeTestServices: true })("allowed hosts *", (it) => {
  it.effect("takes any Host (a token guards it)", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      const response = yield* nodeRequest(url, "/v1/runtime", {
        headers: { host: "anything.example", authorization: `Bearer ${TOKEN}` }
      })
      expect(response.status).toBe(200)
    }))

  it.effect("but not two: 400 InvalidInput, with the token or without (before 401)", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      for (const auth of [`Authorization: Bearer ${TOKEN}\r\n`, ""]) {
        const response = yield* rawSocket(
          url,
          `GET /v1/runtime HTTP/1.1\r\nHost: a.example\r\n${auth}Host: b.example\r\nConnection: close\r\n\r\n`
        )
        expect(response).toMatch(/^HTTP\/1\.1 400 /)
        expect(response).toContain("\"InvalidInput\"")
      }
    }))
})

describe("allowed hosts * without a token", () => {
  it.effect("is refused when the server is built", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Layer.build(server({ allowedHosts: ["*"] })).pipe(Effect.scoped))
      expect(exit._tag).toBe("Failure")
    }))
})

describe("the body limit", () => {
  const serverOver = (serverMaxInputBytes: number | undefined, runtimeMaxInputBytes: number | undefined) =>
    RuntimeHttpServerLive({ maxInputBytes: serverMaxInputBytes }).pipe(
      Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
      Layer.provideMerge(
        RuntimeLive({ profiles: { default: makeEchoEngine() }, maxInputBytes: runtimeMaxInputBytes })
      )
    )
  // Over the limit for 1024 bytes of input, well under the default's.
  const body = JSON.stringify({ content: "x".repeat(bodyLimitFor(MAX_INPUT_BYTES)) })
  const json = { "content-type": "application/json" }

  it.live("is the server's own option, not the Runtime's", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      const worker = (yield* raw(url, "/v1/workers", { method: "POST", body: {} })).json as { id: string }
      expectError(
        yield* raw(url, `/v1/workers/${worker.id}/input`, { method: "POST", rawBody: body, headers: json }),
        413,
        "PayloadTooLarge"
      )
    }).pipe(Effect.provide(serverOver(MAX_INPUT_BYTES, undefined))))

  it.live("is the default's when the option is absent, whatever the Runtime takes", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      const worker = (yield* raw(url, "/v1/workers", { method: "POST", body: {} })).json as { id: string }
      // Read whole, then refused by the Runtime for its content.
      expectError(
        yield* raw(url, `/v1/workers/${worker.id}/input`, { method: "POST", rawBody: body, headers: json }),
        400,
        "InvalidInput"
      )
    }).pipe(Effect.provide(serverOver(undefined, MAX_INPUT_BYTES))))
})

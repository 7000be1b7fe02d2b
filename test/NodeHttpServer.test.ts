/**
 * The runtime's Node server answers 503 `Unavailable` with `Retry-After`
 * while no request handler is attached (the platform listens before it
 * attaches its handler, and detaches it before closing): a request in that
 * window must not wait for the client's timeout.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { ServerResponse } from "node:http"
import { createRuntimeHttpServer } from "../src/node/index.js"
import { listenScoped } from "./support/listen.js"

const get = (port: number) =>
  Effect.promise(async () => {
    const response = await fetch(`http://127.0.0.1:${port}/v1/workers`)
    return { status: response.status, retryAfter: response.headers.get("retry-after"), json: await response.json() }
  })

describe("createRuntimeHttpServer", () => {
  it.scopedLive("answers 503 Unavailable before a handler is attached and after it is gone, and only then", () =>
    Effect.gen(function*() {
      const server = createRuntimeHttpServer()
      const port = yield* listenScoped(server)
      const starting = yield* get(port)
      expect(starting.status).toBe(503)
      expect(starting.retryAfter).toBe("1")
      expect(starting.json).toMatchObject({ _tag: "Unavailable", retryAfterMs: 1000 })

      const handler = (_: unknown, response: ServerResponse) => {
        response.writeHead(200, { "content-type": "application/json" })
        response.end(JSON.stringify({ workers: [] }))
      }
      server.on("request", handler)
      expect(server.listenerCount("request")).toBe(1)
      const serving = yield* get(port)
      expect(serving).toMatchObject({ status: 200, json: { workers: [] } })

      server.off("request", handler)
      expect(server.listenerCount("request")).toBe(1)
      expect((yield* get(port)).status).toBe(503)
    }))
})

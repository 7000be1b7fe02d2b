/** The derived client's error mapping: what cannot be a declared error becomes `Unavailable`. */
import { createServer } from "node:net"

import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"

import { RuntimeHttpClientLive } from "../src/http/index.js"
import { Runtime, Unavailable, UnknownWorker, WorkerId } from "../src/index.js"
import { baseUrl, httpServer } from "./support/httpRuntime.js"

/** A loopback port nothing listens on. */
const closedPort = Effect.promise(() =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
)

describe("RuntimeHttpClient", () => {
  it.live("turns a refused connection into Unavailable", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      const error = yield* Effect.flip(
        Effect.flatMap(Runtime, (rt) => rt.get(WorkerId.make("any"))).pipe(
          Effect.provide(
            RuntimeHttpClientLive({ baseUrl: `http://127.0.0.1:${port}` }).pipe(Layer.provide(FetchHttpClient.layer))
          )
        )
      )
      expect(error).toBeInstanceOf(Unavailable)
      expect(error.message).toContain("unreachable")
    }))

  it.live("turns a wrong token (an undeclared answer for get) into Unavailable, keeps declared errors", () =>
    Effect.gen(function*() {
      const url = yield* baseUrl
      const client = (token: string) =>
        RuntimeHttpClientLive({ baseUrl: url, token }).pipe(Layer.provide(FetchHttpClient.layer))
      const wrong = yield* Effect.flip(
        Effect.flatMap(Runtime, (rt) => rt.get(WorkerId.make("any"))).pipe(Effect.provide(client("wrong")))
      )
      expect(wrong).toBeInstanceOf(Unavailable)
      expect(wrong.message).toContain("token")
      const unknown = yield* Effect.flip(
        Effect.flatMap(Runtime, (rt) => rt.get(WorkerId.make("any"))).pipe(Effect.provide(client("right")))
      )
      expect(unknown).toBeInstanceOf(UnknownWorker)
    }).pipe(Effect.provide(httpServer({}, "right"))))
})

/**
 * Configuration checks that need no process: durations, the loopback rule
 * for listening and for Host names (one definition, `src/Loopback.ts`), and
 * `--allowed-hosts *` refused at start without a token.
 */
import * as CliConfig from "@effect/cli/CliConfig"
import * as Options from "@effect/cli/Options"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as FileSystem from "@effect/platform/FileSystem"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Either, Option } from "effect"

import { hostAllowed, makeHostPolicy } from "../src/http/Hosts.js"
import { isLoopbackBindHost, isLoopbackHostName } from "../src/Loopback.js"
import { isLoopback, options, parseDuration, type RawOptions, resolveConfig, StartupError } from "../src/node/Config.js"

const DURATION_ERROR = /^--retain-stopped must be a duration such as 7d, 12h, 30m, 45s or 500ms, got /

describe("parseDuration", () => {
  it.effect("takes a positive whole number and one of ms, s, m, h, d, as a Duration", () =>
    Effect.gen(function*() {
      const cases: Array<[string, Duration.Duration]> = [
        ["7d", Duration.days(7)],
        ["12h", Duration.hours(12)],
        ["30m", Duration.minutes(30)],
        ["45s", Duration.seconds(45)],
        ["500ms", Duration.millis(500)],
        [" 1d ", Duration.hours(24)]
      ]
      for (const [text, expected] of cases) {
        const duration = yield* parseDuration("retain-stopped", text)
        expect(Duration.equals(duration, expected), text).toBe(true)
      }
      expect(Duration.toMillis(yield* parseDuration("retain-stopped", "7d"))).toBe(604_800_000)
    }))

  it.effect("refuses anything else with the same message", () =>
    Effect.gen(function*() {
      for (const text of ["", "0d", "0ms", "7", "d", "7 days", "7D", "1.5h", "-1h", "1w", "99999999999999999999d"]) {
        const error = yield* Effect.flip(parseDuration("retain-stopped", text))
        expect(error, text).toBeInstanceOf(StartupError)
        expect(error.message, text).toMatch(DURATION_ERROR)
        expect(error.message, text).toContain(JSON.stringify(text))
      }
    }))
})

describe("loopback", () => {
  it("to listen on: loopback addresses and localhost, nothing a resolver could send elsewhere", () => {
    for (const host of ["127.0.0.1", "127.1.2.3", "127.255.255.255", "localhost", "::1", "[::1]"]) {
      expect(isLoopback(host), host).toBe(true)
    }
    for (const host of ["::ffff:127.0.0.1", "::FFFF:127.1.2.3", "[::ffff:127.0.0.1]"]) {
      expect(isLoopback(host), host).toBe(true)
    }
    const refused = [
      "0.0.0.0",
      "::",
      "10.0.0.1",
      "128.0.0.1",
      "127.0.0.256",
      "127.999.0.1",
      "127.0.0.08",
      "127.1",
      "127.0.0.1.evil.example",
      "app.localhost",
      "localhost.evil.example",
      "::ffff:10.0.0.1",
      "::2",
      "[127.0.0.1]",
      ""
    ]
    for (const host of refused) expect(isLoopback(host), host).toBe(false)
    expect(isLoopback).toBe(isLoopbackBindHost)
  })

  it("as a Host name: localhost, *.localhost, 127.0.0.0/8 and [::1]", () => {
    for (const name of ["localhost", "app.localhost", "127.0.0.1", "127.1.2.3", "[::1]"]) {
      expect(isLoopbackHostName(name), name).toBe(true)
    }
    for (const name of ["127.0.0.256", "127.0.0.01", "127.1", "[::ffff:127.0.0.1]", "::1", "localhost.example"]) {
      expect(isLoopbackHostName(name), name).toBe(false)
    }
  })

  it("the Host check takes the loopback names with any port, and nothing else by itself", () => {
    const policy = makeHostPolicy([], "127.0.0.1")
    for (const host of ["127.1.2.3:8787", "App.Localhost:1", "[::1]", "localhost."]) {
      expect(hostAllowed(policy, host), host).toBe(true)
    }
    for (const host of ["127.0.0.256", "[::ffff:127.0.0.1]:8787", "127.1:8787", "rebind.example"]) {
      expect(hostAllowed(policy, host), host).toBe(false)
    }
  })
})

const rawOptions = (overrides: Partial<RawOptions> = {}): RawOptions => ({
  host: "127.0.0.1",
  port: 0,
  runtimeId: Option.none(),
  displayName: Option.none(),
  store: "memory",
  storePoolSize: 20,
  tokenFile: Option.none(),
  profiles: Option.none(),
  maxWorkers: 10,
  maxInputBytes: 1024,
  allowedHosts: "",
  maxQueuedInputs: 0,
  maxQueuedBytes: 0,
  maxConnections: 1024,
  maxStreams: 512,
  logFormat: "pretty",
  retainStopped: Option.none(),
  passivateAfter: "60s",
  shutdownGraceMs: 0,
  cluster: false,
  runnerAddress: Option.none(),
  logLevel: "info",
  ...overrides
})

const resolve = (overrides: Partial<RawOptions>, env: Record<string, string> = {}) =>
  resolveConfig(rawOptions(overrides)).pipe(
    Effect.provide(FileSystem.layerNoop({})),
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
  )

describe("resolveConfig", () => {
  it.effect("refuses --allowed-hosts * without a token, and takes it with one", () =>
    Effect.gen(function*() {
      for (const allowedHosts of ["*", "a.example, * "]) {
        const error = yield* Effect.flip(resolve({ allowedHosts }))
        expect(error.message).toMatch(/^--allowed-hosts \* needs a token/)
      }
      const config = yield* resolve({ allowedHosts: "a.example,*" }, {
        WORKER_RUNTIME_TOKEN: "a-long-enough-token-0123"
      })
      expect(config.allowedHosts).toEqual(["a.example", "*"])
    }))

  it.effect("refuses a host that is not loopback without a token", () =>
    Effect.gen(function*() {
      for (const host of ["0.0.0.0", "app.localhost", "127.0.0.256"]) {
        const error = yield* Effect.flip(resolve({ host }))
        expect(error.message, host).toMatch(/^refusing to listen on .* without a token/)
      }
      for (const host of ["127.1.2.3", "localhost", "::1", "::ffff:127.0.0.1"]) {
        expect(Either.isRight(yield* Effect.either(resolve({ host }))), host).toBe(true)
      }
    }))

  it.effect("gives --retain-stopped in milliseconds", () =>
    Effect.gen(function*() {
      const config = yield* resolve({ retainStopped: Option.some("12h") })
      expect(config.retainStoppedMs).toEqual(Option.some(12 * 3_600_000))
      const error = yield* Effect.flip(resolve({ retainStopped: Option.some("12 hours") }))
      expect(error.message).toMatch(DURATION_ERROR)
    }))

  it.effect("takes --store-pool-size of 2 or more (one connection is the lock's), refuses less in one line", () =>
    Effect.gen(function*() {
      expect((yield* resolve({ storePoolSize: 3 })).storePoolSize).toBe(3)
      expect((yield* resolve({ storePoolSize: 2 })).storePoolSize).toBe(2)
      for (const storePoolSize of [1, 0, -5]) {
        const error = yield* Effect.flip(resolve({ storePoolSize }))
        expect(error, String(storePoolSize)).toBeInstanceOf(StartupError)
        expect(error.message).toBe(`--store-pool-size must be an integer >= 2, got ${storePoolSize}`)
      }
    }))

  it.effect("reads --store-pool-size from the flag, else WORKER_RUNTIME_STORE_POOL_SIZE, else 20", () =>
    Effect.gen(function*() {
      const parse = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
        Options.processCommandLine(options.storePoolSize, [...args], CliConfig.defaultConfig).pipe(
          Effect.map(([, , value]) => value),
          Effect.provide(NodeContext.layer),
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
        )
      expect(yield* parse([])).toBe(20)
      expect(yield* parse(["--store-pool-size", "5"])).toBe(5)
      expect(yield* parse([], { WORKER_RUNTIME_STORE_POOL_SIZE: "7" })).toBe(7)
      expect(yield* parse(["--store-pool-size", "5"], { WORKER_RUNTIME_STORE_POOL_SIZE: "7" })).toBe(5)
      expect(Either.isLeft(yield* Effect.either(parse(["--store-pool-size", "many"])))).toBe(true)
      expect(Either.isLeft(yield* Effect.either(parse([], { WORKER_RUNTIME_STORE_POOL_SIZE: "many" })))).toBe(true)
    }))
  it.effect("takes --cluster with a PostgreSQL store; the runner address defaults to the next port", () =>
    Effect.gen(function*() {
      const pg = "postgres://wr@127.0.0.1:5432/wr"
      const config = yield* resolve({ cluster: true, store: pg, port: 8787 })
      expect(config.cluster).toEqual(
        Option.some({ url: pg, runnerHost: "127.0.0.1", runnerPort: 8788, failureDetectionMs: 10_000 })
      )
      const given = yield* resolve(
        { cluster: true, store: pg, runnerAddress: Option.some("[::1]:9000") },
        { WORKER_RUNTIME_FAILURE_DETECTION: "3s" }
      )
      expect(given.cluster).toEqual(
        Option.some({ url: pg, runnerHost: "::1", runnerPort: 9000, failureDetectionMs: 3000 })
      )
      expect((yield* resolve({})).cluster).toEqual(Option.none())
    }))

  it.effect("refuses a cluster it cannot run, each in one line", () =>
    Effect.gen(function*() {
      const pg = "postgres://wr@127.0.0.1:5432/wr"
      const refused = (overrides: Partial<RawOptions>, env: Record<string, string> = {}) =>
        Effect.map(Effect.flip(resolve(overrides, env)), (error) => {
          expect(error).toBeInstanceOf(StartupError)
          expect(error.message).not.toContain("\n")
          return error.message
        })
      expect(yield* refused({ cluster: true })).toBe(
        "--cluster needs a PostgreSQL store shared by the runners (--store postgres://…), got --store memory"
      )
      expect(yield* refused({ cluster: true, store: "sqlite:/tmp/x.db" })).toContain("--cluster needs a PostgreSQL")
      expect(yield* refused({ runnerAddress: Option.some("127.0.0.1:9000") })).toBe(
        "--runner-address is for a runner of a cluster: add --cluster"
      )
      for (const address of ["9000", "host:", "host:70000", "a b:1", ":1"]) {
        expect(yield* refused({ cluster: true, store: pg, port: 8787, runnerAddress: Option.some(address) })).toBe(
          `--runner-address must be host:port, got ${JSON.stringify(address)}`
        )
      }
      expect(yield* refused({ cluster: true, store: pg, port: 0 })).toBe(
        "--cluster with --port 0 needs --runner-address host:port"
      )
      expect(yield* refused({ cluster: true, store: pg, port: 8787 }, { WORKER_RUNTIME_FAILURE_DETECTION: "soon" }))
        .toBe(
          `WORKER_RUNTIME_FAILURE_DETECTION must be a duration such as 10s or 3s, got "soon"`
        )
    }))
})

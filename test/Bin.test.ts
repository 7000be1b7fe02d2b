/** The runtime process from outside: the built bin with flags and signals. */
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

import * as Options from "@effect/cli/Options"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"

import { options } from "../src/node/Config.js"

import { cleanEnv, exitOf, runBin, startBin } from "./support/bin.js"
import { eventuallyLive } from "./support/eventually.js"
import { raw } from "./support/raw.js"

const scratch = () => mkdtempSync(join(tmpdir(), "worker-runtime-bin-"))

describe("the worker-runtime bin", () => {
  it.scopedLive("serves a Worker through create, input, transcript and stop, then exits 0 on SIGTERM", () =>
    Effect.gen(function*() {
      const dir = scratch()
      const tokenFile = join(dir, "token")
      writeFileSync(tokenFile, "bin-token\n")
      const bin = yield* startBin(["--token-file", tokenFile, "--display-name", "bin test", "--runtime-id", "rt-bin"])
      const call = (path: string, options: Parameters<typeof raw>[2] = {}) =>
        raw(bin.url, path, { token: "bin-token", ...options })
      expect((yield* raw(bin.url, "/healthz")).json).toEqual({ status: "ok" })
      expect((yield* raw(bin.url, "/v1/runtime")).status).toBe(401)
      const info = yield* call("/v1/runtime")
      expect(info.json).toMatchObject({ runtimeId: "rt-bin", displayName: "bin test", store: "memory" })
      const created = yield* call("/v1/workers", { method: "POST", body: {} })
      expect(created.status).toBe(201)
      const { id } = created.json as { id: string }
      const input = yield* call(`/v1/workers/${id}/input`, { method: "POST", body: { content: "hello" } })
      expect(input.status).toBe(202)
      const page = yield* eventuallyLive(
        call(`/v1/workers/${id}/transcript`),
        (response) => (response.json as { entries: Array<unknown> }).entries.length === 3,
        "the echo in the transcript",
        { everyMs: 10 }
      )
      expect(page.json).toMatchObject({
        entries: [
          { seq: 1, role: "user", content: "hello" },
          { seq: 2, role: "worker", content: "hello" },
          { seq: 3, role: "runtime", content: "completed", outcome: "completed" }
        ]
      })
      const stopped = yield* call(`/v1/workers/${id}/stop`, { method: "POST", body: { reason: "bye" } })
      expect(stopped.json).toMatchObject({ status: "stopped", stopReason: "bye" })
      bin.child.kill("SIGTERM")
      expect(yield* exitOf(bin)).toBe(0)
      expect(bin.output()).not.toContain("bin-token")
    }))

  it.scopedLive("drains on SIGTERM: refuses new work, lets a turn finish within the grace, exits 0", () =>
    Effect.gen(function*() {
      const dir = scratch()
      const profiles = join(dir, "profiles.json")
      // A turn long enough that the checks below happen while it runs, on a loaded machine too.
      writeFileSync(profiles, JSON.stringify({ default: { engine: "echo" }, slow: { engine: "echo", delayMs: 5000 } }))
      // A durable store, so what the drain recorded can be read after the exit.
      const args = ["--store", `sqlite:${join(dir, "runtime.db")}`, "--profiles", profiles]
      const bin = yield* startBin([...args, "--shutdown-grace-ms", "60000"])
      const created = yield* raw(bin.url, "/v1/workers", { method: "POST", body: { profile: "slow" } })
      const { id } = created.json as { id: string }
      const idle = (yield* raw(bin.url, "/v1/workers", { method: "POST", body: {} })).json as { id: string }
      yield* raw(bin.url, `/v1/workers/${id}/input`, { method: "POST", body: { content: "finish me" } })
      bin.child.kill("SIGTERM")
      const ready = yield* eventuallyLive(
        raw(bin.url, "/readyz"),
        (response) => response.status === 503,
        "/readyz answering 503 after SIGTERM",
        { everyMs: 10 }
      )
      expect(ready.json).toMatchObject({ _tag: "Unavailable" })
      const refused = yield* raw(bin.url, `/v1/workers/${idle.id}/input`, { method: "POST", body: { content: "x" } })
      expect(refused.status).toBe(503)
      expect(refused.headers.get("retry-after")).not.toBeNull()
      expect((yield* raw(bin.url, "/v1/workers", { method: "POST", body: {} })).status).toBe(503)
      expect((yield* raw(bin.url, `/v1/workers/${id}`)).status).toBe(200)
      const info = yield* raw(bin.url, "/v1/runtime")
      expect(info.json).toMatchObject({ status: "draining" })
      expect(yield* exitOf(bin)).toBe(0)
      // The turn finished: its output is recorded, nothing interrupted it, the Worker is idle.
      const after = yield* startBin(args)
      const worker = yield* raw(after.url, `/v1/workers/${id}`)
      expect(worker.json).toMatchObject({ status: "idle", turn: 1, lastSeq: 3 })
      const page = (yield* raw(after.url, `/v1/workers/${id}/transcript`)).json as { entries: Array<unknown> }
      expect(page.entries).toMatchObject([
        { seq: 1, role: "user", content: "finish me", turn: 1 },
        { seq: 2, role: "worker", content: "finish me", turn: 1 },
        { seq: 3, role: "runtime", content: "completed", turn: 1, outcome: "completed" }
      ])
    }))

  it.scopedLive("logs one line per request at debug level, never the token", () =>
    Effect.gen(function*() {
      const bin = yield* startBin(["--log-level", "debug"], cleanEnv({ WORKER_RUNTIME_TOKEN: "debug-secret" }))
      yield* raw(bin.url, "/v1/runtime", { token: "debug-secret" })
      yield* raw(bin.url, "/v1/workers/nope", { token: "debug-secret" })
      yield* eventuallyLive(
        Effect.sync(() => bin.output()),
        (output) => output.includes("workerId: nope"),
        "the log line of GET /v1/workers/nope",
        { everyMs: 10 }
      )
      expect(bin.output()).toMatch(
        /request\n\s+durationMs: [0-9.]+\n\s+status: 200\n\s+method: GET\n\s+route: \/v1\/runtime/
      )
      expect(bin.output()).toMatch(
        /status: 404\n\s+method: GET\n\s+route: \/v1\/workers\/\{workerId\}\n\s+workerId: nope/
      )
      expect(bin.output()).not.toContain("debug-secret")
    }))

  it.scopedLive("runs a process profile from the operator's profiles file", () =>
    Effect.gen(function*() {
      const dir = scratch()
      const profiles = join(dir, "profiles.json")
      const script =
        "process.stdin.on('data', (d) => { console.log('got ' + d); console.log('turn ' + process.env.WORKER_TURN) })"
      writeFileSync(
        profiles,
        JSON.stringify({ agent: { engine: "process", command: [process.execPath, "-e", script] } })
      )
      const bin = yield* startBin(["--profiles", profiles])
      const created = yield* raw(bin.url, "/v1/workers", { method: "POST", body: { profile: "agent" } })
      expect(created.status).toBe(201)
      const { id } = created.json as { id: string }
      expect((yield* raw(bin.url, `/v1/workers/${id}/input`, { method: "POST", body: { content: "hi" } })).status)
        .toBe(202)
      yield* eventuallyLive(
        raw(bin.url, `/v1/workers/${id}`),
        (r) => (r.json as { status: string }).status === "idle",
        "the process turn ending",
        { everyMs: 10 }
      )
      const page = (yield* raw(bin.url, `/v1/workers/${id}/transcript`)).json as { entries: Array<{ content: string }> }
      expect(page.entries.map((entry) => entry.content)).toEqual(["hi", "got hi", "turn 1", "completed"])
      const refused = yield* raw(bin.url, "/v1/workers", {
        method: "POST",
        body: { profile: "agent", command: ["sh"] }
      })
      expect(refused.status).toBe(400)
    }))

  it.live("prints its flags with --help: one entry each, with its default, in under 60 lines, no colour in a pipe", () =>
    Effect.gen(function*() {
      const { code, output } = yield* runBin(["--help"])
      expect(code).toBe(0)
      expect(output).not.toContain("\u001b[")
      expect(output.split("\n").length).toBeLessThan(60)
      expect(output).toMatch(/^worker-runtime \d+\.\d+\.\d+\n/)
      expect(output).toContain("\n  worker-runtime [options]\n")
      // @effect/cli's boilerplate, which it adds to every flag: in no line, nor in any.
      for (
        const boilerplate of [
          "A user-defined piece of text.",
          "An integer.",
          "A true or false value.",
          "This setting is optional.",
          "This option can be set from environment variables."
        ]
      ) {
        expect(output, boilerplate).not.toContain(boilerplate)
      }
      // Each flag's entry: its heading line (`  --port integer  Port to ...`) and the indented lines after it.
      const entries = output.split(/\n(?= {2}-)/).filter((text) => text.startsWith("  -"))
        .map((text) => text.split("\n\n")[0]!)
      const entry = (flag: string) => entries.filter((text) => text.trimStart().split(/,? /)[0] === flag)
      // Every flag of `options`, by its name, so a new one cannot be forgotten here.
      const flags = Object.values(options).map((option: Options.Options<unknown>) =>
        Option.getOrThrow(Options.getIdentifier(option))
      )
      expect(flags).toContain("--log-format")
      for (const flag of flags) {
        expect(entry(flag), flag).toHaveLength(1)
        expect(output.match(new RegExp(`(?<![\\w-])${flag}(?![\\w-])`, "g")), flag).toHaveLength(1)
        expect(entry(flag)[0]!.replace(/\s+/g, " "), flag).toMatch(
          / Env WORKER_RUNTIME_[A-Z_]+\. (Default|Without it): \S[^\n]*\.$/
        )
      }
      // The built-in flags that matter; one --log-level, @effect/cli's own, with its levels.
      for (const flag of ["--log-level", "-h", "--version", "--completions"]) expect(entry(flag), flag).toHaveLength(1)
      expect(output.match(/--log-level/g)).toHaveLength(1)
      expect(entry("--log-level")[0]).toContain("all | trace | debug | info | warning | error | fatal | none")
      expect(entry("-h")[0]).toMatch(/^ {2}-h, --help /)
      // Its fallback and default are told below the flags.
      expect(output).toMatch(/\nLOG LEVEL\n {2}.*falls back to WORKER_RUNTIME_LOG_LEVEL\. Default: info\./)
    }))

  it.live("prints the same help for -h, and for --help after other flags", () =>
    Effect.gen(function*() {
      const help = yield* runBin(["--help"])
      for (const args of [["-h"], ["--port", "0", "--help"], ["--log-level", "debug", "--store", "memory", "-h"]]) {
        const { code, output } = yield* runBin(args)
        expect(code, args.join(" ")).toBe(0)
        expect(output, args.join(" ")).toBe(help.output)
      }
    }))

  it.live("names the closest flag for a mistyped one, in one line, and exits non-zero", () =>
    Effect.gen(function*() {
      const cases: Array<[ReadonlyArray<string>, string]> = [
        [["--prot", "8080"], "unknown flag --prot; did you mean --port?"],
        [["--max-worker", "3"], "unknown flag --max-worker; did you mean --max-workers?"],
        [["--port", "0", "--log-levle=debug"], "unknown flag --log-levle; did you mean --log-level?"],
        [["--frobnicate"], "unknown flag --frobnicate; worker-runtime --help lists the flags"]
      ]
      for (const [args, message] of cases) {
        const { code, output } = yield* runBin(args)
        expect(code, args.join(" ")).not.toBe(0)
        expect(output, args.join(" ")).toBe(`worker-runtime: ${message}\n`)
      }
    }))

  it.live("refuses to start with a clear message when misconfigured", () =>
    Effect.gen(function*() {
      const dir = scratch()
      const badJson = join(dir, "bad.json")
      writeFileSync(badJson, "{ nope")
      const badProfile = join(dir, "profiles.json")
      writeFileSync(badProfile, JSON.stringify({ default: { engine: "echo" }, broken: { engine: "teleport" } }))
      const cases: Array<[ReadonlyArray<string>, Record<string, string>, RegExp]> = [
        [["--host", "0.0.0.0"], {}, /without a token/],
        [[], { WORKER_RUNTIME_HOST: "0.0.0.0" }, /without a token/],
        [["--store", "postgres://x"], {}, /--store/],
        [["--profiles", join(dir, "missing.json")], {}, /missing\.json/],
        [["--profiles", badJson], {}, /bad\.json/],
        [["--profiles", badProfile], {}, /broken/],
        [["--token-file", join(dir, "no-token")], {}, /no-token/],
        [["--max-workers", "0"], {}, /max-workers/],
        [["--store-pool-size", "1"], {}, /--store-pool-size must be an integer >= 2, got 1/],
        [[], { WORKER_RUNTIME_STORE_POOL_SIZE: "many" }, /WORKER_RUNTIME_STORE_POOL_SIZE/],
        [["--allowed-hosts", "*"], {}, /needs a token/],
        [[], { WORKER_RUNTIME_ALLOWED_HOSTS: "a.example,*" }, /needs a token/],
        [["--host", "app.localhost"], {}, /without a token/],
        [["--host", "127.0.0.256"], {}, /without a token/],
        [["--retain-stopped", "7 days"], {}, /--retain-stopped must be a duration such as 7d/]
      ]
      for (const [args, env, message] of cases) {
        const { code, output } = yield* runBin(["--port", "0", ...args], cleanEnv(env))
        expect(code, `${args.join(" ")}: ${output}`).not.toBe(0)
        expect(output, args.join(" ")).toMatch(message)
      }
    }))

  it.scopedLive("warns at start about a token file others can read, and a short token", () =>
    Effect.gen(function*() {
      const dir = scratch()
      const loose = join(dir, "loose-token")
      writeFileSync(loose, "short\n")
      chmodSync(loose, 0o644)
      const warned = yield* startBin(["--token-file", loose])
      yield* eventuallyLive(Effect.sync(warned.output), (output) => output.includes("shorter than 16"), "the warnings")
      expect(warned.output()).toContain("readable by other users")
      expect(warned.output()).not.toContain("short\n")
      const tight = join(dir, "tight-token")
      writeFileSync(tight, "a-long-random-token-0123456789\n")
      chmodSync(tight, 0o600)
      const quiet = yield* startBin(["--token-file", tight])
      expect(quiet.output()).not.toMatch(/readable by other users|shorter than/)
    }))

  it.scopedLive("binds a non-loopback host when a token is set", () =>
    Effect.gen(function*() {
      const bin = yield* startBin(["--host", "0.0.0.0"], cleanEnv({ WORKER_RUNTIME_TOKEN: "env-token" }))
      const url = bin.url.replace("0.0.0.0", "127.0.0.1")
      expect((yield* raw(url, "/v1/runtime")).status).toBe(401)
      expect((yield* raw(url, "/v1/runtime", { token: "env-token" })).status).toBe(200)
      expect(bin.output()).not.toContain("env-token")
    }))
})

/**
 * Profiles: parsing the operator's profiles (the file's JSON and the file
 * itself), the errors that name the profile and file at fault, and the
 * engines built from them. Nothing here starts a process.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"

import { buildEngines, DEFAULT_PROFILES, loadProfilesFile, parseProfiles, ProfilesError } from "../src/node/Profiles.js"

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "profiles-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

describe("profiles", () => {
  const command = ["agent"]

  it.effect("accepts both engines and keeps unset options unset", () =>
    Effect.gen(function*() {
      const profiles = yield* parseProfiles({
        default: { engine: "echo" },
        slow: { engine: "echo", delayMs: 10 },
        "coder.v2_x-1": {
          engine: "process",
          command: ["python3", "-u", "agent.py"],
          cwd: "/srv/agent",
          env: { MODEL: "small" },
          input: "transcript",
          turnTimeoutMs: 600000,
          maxOutputBytes: 1048576
        },
        bare: { engine: "process", command: ["agent"] }
      })
      expect(profiles["bare"]).toEqual({ engine: "process", command: ["agent"] })
      expect(Object.keys(profiles)).toEqual(["default", "slow", "coder.v2_x-1", "bare"])
      expect(DEFAULT_PROFILES).toEqual({ default: { engine: "echo" } })
    }))

  it.effect("names the profile at fault and what is wrong with it", () =>
    Effect.gen(function*() {
      const bad: Array<readonly [unknown, string]> = [
        [{ engine: "shell", command }, "engine"],
        [{ command }, "engine"],
        [{ engine: "process" }, "command"],
        [{ engine: "process", command: [] }, "command"],
        [{ engine: "process", command: "python3 agent.py" }, "command"],
        [{ engine: "process", command: ["python3", ""] }, "command.1"],
        [{ engine: "process", comand: command }, "comand"],
        [{ engine: "process", command, input: "stdin" }, "input"],
        [{ engine: "process", command, turnTimeoutMs: 0 }, "turnTimeoutMs"],
        [{ engine: "process", command, turnTimeoutMs: 1.5 }, "turnTimeoutMs"],
        [{ engine: "process", command, maxOutputBytes: -1 }, "maxOutputBytes"],
        [{ engine: "process", command, cwd: "" }, "cwd"],
        [{ engine: "process", command, env: { A: 1 } }, "env.A"],
        [{ engine: "process", command, env: { WORKER_ID: "x" } }, "WORKER_ID is reserved"],
        [{ engine: "process", command, env: { WORKER_RUNTIME_TOKEN: "x" } }, "WORKER_RUNTIME_TOKEN is reserved"],
        [{ engine: "process", command, env: { "A=B": "x" } }, "\"A=B\" is not a valid variable name"],
        [{ engine: "process", command: ["agent\u0000"] }, "NUL"],
        [{ engine: "echo", delayMs: -1 }, "delayMs"],
        [{ engine: "echo", command }, "command"],
        ["echo", "profile \"bad\""],
        [null, "profile \"bad\""]
      ]
      for (const [profile, detail] of bad) {
        const error = yield* Effect.flip(parseProfiles({ good: { engine: "echo" }, bad: profile }))
        expect(error, JSON.stringify(profile)).toBeInstanceOf(ProfilesError)
        expect(error.profile).toBe("bad")
        expect(error.message).toContain("profile \"bad\"")
        expect(error.message, error.message).toContain(detail)
      }
    }))

  it.effect("refuses bad names, an empty file and a file that is not an object", () =>
    Effect.gen(function*() {
      for (const name of ["", "a b", "x/y", "é"]) {
        const error = yield* Effect.flip(parseProfiles({ [name]: { engine: "echo" } }))
        expect(error.profile).toBe(name)
        expect(error.message).toContain(JSON.stringify(name))
      }
      for (const json of [{}, [], null, "default", 1]) {
        expect(yield* Effect.flip(parseProfiles(json))).toBeInstanceOf(ProfilesError)
      }
    }))

  it.scoped("reads a profiles file, naming the file in every error", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const good = join(dir, "good.json")
      writeFileSync(good, JSON.stringify({ coder: { engine: "process", command: ["agent"], input: "content" } }))
      const broken = join(dir, "broken.json")
      writeFileSync(broken, "{ \"coder\": ")
      const invalid = join(dir, "invalid.json")
      writeFileSync(invalid, JSON.stringify({ coder: { engine: "process", command: ["agent"], extra: 1 } }))

      expect(yield* loadProfilesFile(good)).toEqual({
        coder: { engine: "process", command: ["agent"], input: "content" }
      })
      for (const path of [join(dir, "missing.json"), broken, invalid]) {
        const error = yield* Effect.flip(loadProfilesFile(path))
        expect(error).toBeInstanceOf(ProfilesError)
        expect(error.message).toContain(path)
      }
      expect((yield* Effect.flip(loadProfilesFile(invalid))).message).toContain("profile \"coder\"")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("builds an engine per profile", () =>
    Effect.gen(function*() {
      const engines = yield* buildEngines({ ...DEFAULT_PROFILES, p: { engine: "process", command: ["agent"] } })
      expect(Object.keys(engines)).toEqual(["default", "p"])
      expect(engines["default"]!.name).toBe("echo")
      expect(engines["p"]!.name).toBe("process")
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe("model profiles", () => {
  const model = "gpt-4.1-mini"

  it.effect("accept every option, and fail in one line naming the profile and the field", () =>
    Effect.gen(function*() {
      const full = {
        engine: "openai",
        model,
        apiUrl: "http://127.0.0.1:9999/v1",
        apiKeyEnv: "OPENAI_API_KEY",
        instructions: "Be brief.",
        maxOutputTokens: 1024,
        temperature: 0.2,
        timeoutMs: 120000,
        maxRetries: 0
      }
      const profiles = yield* parseProfiles({ a: full, c: { engine: "anthropic", model: "claude-sonnet-4-5" } })
      expect(profiles["a"]).toEqual(full)
      expect(profiles["c"]).toEqual({ engine: "anthropic", model: "claude-sonnet-4-5" })
      const bad: Array<readonly [unknown, string]> = [
        [{ engine: "gemini", model }, "engine: \"gemini\" is not one of"],
        [{ engine: "openai" }, "model"],
        [{ engine: "anthropic", model: "" }, "model"],
        [{ engine: "openai", model, apiUrl: "not a url" }, "apiUrl"],
        [{ engine: "openai", model, apiUrl: "ftp://host/v1" }, "apiUrl"],
        [{ engine: "openai", model, maxOutputTokens: -1 }, "maxOutputTokens"],
        [{ engine: "anthropic", model, temperature: -0.5 }, "temperature"],
        [{ engine: "openai", model, timeoutMs: -1 }, "timeoutMs"],
        [{ engine: "anthropic", model, maxRetries: -1 }, "maxRetries"],
        [{ engine: "openai", model, apiKeyEnv: "" }, "apiKeyEnv"],
        [{ engine: "openai", model, apiKey: "sk-inline" }, "apiKey"]
      ]
      for (const [profile, detail] of bad) {
        const error = yield* Effect.flip(parseProfiles({ good: { engine: "echo" }, bad: profile }))
        expect(error.profile).toBe("bad")
        expect(error.message).toContain("profile \"bad\"")
        expect(error.message, error.message).toContain(detail)
        expect(error.message).not.toContain("\n")
      }
    }))

  it.effect("build their engines, loaded only now; a key variable that is unset fails naming it", () =>
    Effect.gen(function*() {
      const engines = yield* buildEngines({
        gpt: { engine: "openai", model, apiKeyEnv: "TEST_MODEL_KEY" },
        claude: { engine: "anthropic", model: "claude-sonnet-4-5" }
      }, { env: { TEST_MODEL_KEY: "sk-x" } })
      expect(engines["gpt"]!.name).toBe("openai")
      expect(engines["claude"]!.name).toBe("anthropic")
      for (const env of [{}, { TEST_MODEL_KEY: "" }]) {
        const error = yield* Effect.flip(
          buildEngines({ gpt: { engine: "openai", model, apiKeyEnv: "TEST_MODEL_KEY" } }, { env })
        )
        expect(error.profile).toBe("gpt")
        expect(error.message).toBe("profile \"gpt\": apiKeyEnv: the variable TEST_MODEL_KEY is not set")
      }
    }).pipe(Effect.provide(NodeContext.layer)))
})

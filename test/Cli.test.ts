/** The bin's subcommands (docs/cli.md) against a real running bin, as a person runs them: piped, and in a terminal. */
import { execFile } from "node:child_process"
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"

import { RuntimeInfo, TranscriptEntry, Worker } from "../src/Domain.js"

import { BIN, runBin, startBin } from "./support/bin.js"
import { cliEnv, hasScript, resultOf, runCli, runCliInTerminal, startCli, waitForStdout } from "./support/cli.js"
import { eventuallyLive, HANG_MS } from "./support/eventually.js"
import { makeGate, makeModelServer, reply } from "./support/modelServer.js"
import { projectRoot } from "./support/packed.js"

const scratch = () => mkdtempSync(join(tmpdir(), "worker-runtime-cli-"))

/** Piped output carries no ANSI escape and no carriage return. */
const expectPlain = (text: string) => {
  expect(text).not.toContain("\u001b")
  expect(text).not.toContain("\r")
}

const jsonLines = <A, I>(schema: Schema.Schema<A, I>, text: string): Array<A> =>
  text.trimEnd().split("\n").map((line) => Schema.decodeUnknownSync(Schema.parseJson(schema))(line))

/** Profiles for the turns the tests follow: echo, a slow one, one that fails, one that prints over time. */
const profilesFile = () => {
  const file = join(scratch(), "profiles.json")
  writeFileSync(
    file,
    JSON.stringify({
      default: { engine: "echo" },
      slow: { engine: "echo", delayMs: 600_000 },
      fail: { engine: "process", command: [process.execPath, "-e", "console.log('partial'); process.exit(3)"] },
      tick: {
        engine: "process",
        command: [
          process.execPath,
          "-e",
          "let i = 0; const t = setInterval(() => { console.log('tick ' + ++i); if (i === 3) clearInterval(t) }, 300)"
        ]
      }
    })
  )
  return file
}

const startRuntime = () => startBin(["--profiles", profilesFile()])

describe("worker-runtime subcommands", () => {
  it.scopedLive("info, create, list, send, transcript, cancel, stop and delete: piped text, and --json", () =>
    Effect.gen(function*() {
      const bin = yield* startRuntime()
      const env = cliEnv(bin.url)
      const run = (...args: ReadonlyArray<string>) => runCli(args, env)

      const info = yield* run("info")
      expect(info).toMatchObject({ code: 0, stderr: "" })
      expect(info.stdout).toMatch(/^id: \S+\n/)
      expect(info.stdout).toContain("\nstatus: running\n")
      expect(info.stdout).toContain("\nstore: memory\n")
      expect(info.stdout).toContain("\nworkers: 0 (idle 0, busy 0, stopped 0, failed 0)")
      expect(jsonLines(RuntimeInfo, (yield* run("info", "--json")).stdout)[0]).toMatchObject({ status: "running" })

      const created = yield* run("create", "--metadata", "team=docs", "--metadata", "tier=1")
      expect(created).toMatchObject({ code: 0, stderr: "" })
      const id = created.stdout.trim()
      expect(created.stdout).toBe(`${id}\n`)
      const other = (yield* run("create", "--idempotency-key", "cli-1")).stdout.trim()
      expect((yield* run("create", "--idempotency-key", "cli-1")).stdout.trim()).toBe(other)

      const table = yield* run("list")
      expect(table.code).toBe(0)
      expectPlain(table.stdout)
      const [header, ...rows] = table.stdout.trimEnd().split("\n")
      expect(header!.split(/\s+/)).toEqual(["ID", "PROFILE", "STATUS", "TURN", "QUEUED", "UPDATED", "METADATA"])
      expect(rows).toHaveLength(2)
      expect(rows[0]!.split(/\s+/)).toMatchObject([
        id,
        "default",
        "idle",
        "0",
        "0",
        expect.any(String),
        "team=docs,tier=1"
      ])
      const listed = jsonLines(Worker, (yield* run("list", "--json", "--metadata", "team=docs")).stdout)
      expect(listed.map((worker) => worker.id)).toEqual([id])
      expect((yield* run("list", "--status", "busy")).stdout.trimEnd().split("\n")).toHaveLength(1)

      const sent = yield* run("send", id, "hello")
      expect(sent).toEqual({ code: 0, stdout: "1\n", stderr: "" })
      const followed = yield* run("send", id, "again", "--follow")
      expect(followed).toEqual({ code: 0, stdout: "worker: again\n", stderr: "" })

      const transcript = yield* run("transcript", id)
      expect(transcript).toEqual({
        code: 0,
        stdout: "user: hello\nworker: hello\nruntime: completed\nuser: again\nworker: again\nruntime: completed\n",
        stderr: ""
      })
      const entries = jsonLines(TranscriptEntry, (yield* run("transcript", id, "--json")).stdout)
      expect(entries.map((entry) => entry.seq)).toEqual([1, 2, 3, 4, 5, 6])

      expect(yield* run("cancel", id)).toEqual({ code: 0, stdout: "nothing to cancel\n", stderr: "" })
      expect(yield* run("stop", id, "--reason", "done")).toEqual({ code: 0, stdout: "stopped\n", stderr: "" })
      expect(yield* run("delete", id)).toEqual({ code: 0, stdout: "", stderr: "" })
      const gone = yield* run("transcript", id)
      expect(gone.code).toBe(3)
    }))

  it.scopedLive("exits 2 on bad usage and 3 with `<_tag>: <message>` on an error answer", () =>
    Effect.gen(function*() {
      const bin = yield* startRuntime()
      const env = cliEnv(bin.url)
      const usage: ReadonlyArray<ReadonlyArray<string>> = [
        ["lst"],
        ["list", "--bogus"],
        ["send"],
        ["send", "some-id"],
        ["send", "some-id", "hi", "--if-busy", "maybe"],
        ["follow", "some-id", "--after", "soon"],
        ["list", "--status", "sleeping"],
        ["info", "--url", "not a url"]
      ]
      for (const args of usage) {
        const result = yield* runCli(args, env)
        expect(result.code, args.join(" ")).toBe(2)
        expect(result.stdout, args.join(" ")).toBe("")
        expect(result.stderr, args.join(" ")).not.toBe("")
        expectPlain(result.stderr)
      }
      expect((yield* runCli(["lst"], env)).stderr).toMatch(/^worker-runtime: unknown command lst; /)

      for (const args of [["send", "nope", "hi"], ["transcript", "nope"], ["follow", "nope"], ["stop", "nope"]]) {
        const result = yield* runCli(args, env)
        expect(result, args.join(" ")).toEqual({
          code: 3,
          stdout: "",
          stderr: `UnknownWorker: There is no Worker "nope".\n`
        })
      }
      const id = (yield* runCli(["create"], env)).stdout.trim()
      const busy = yield* runCli(["delete", id], env)
      expect(busy.code).toBe(3)
      expect(busy.stderr).toMatch(/^Unsupported: [^\n]+\n$/)
    }))

  it.scopedLive("send --follow: 1 for a failing turn, 130 for a cancelled one; follow ends 0 when the Worker stops", () =>
    Effect.gen(function*() {
      const bin = yield* startRuntime()
      const env = cliEnv(bin.url)
      const failing = (yield* runCli(["create", "--profile", "fail"], env)).stdout.trim()
      const failed = yield* runCli(["send", failing, "go", "--follow"], env)
      expect(failed).toMatchObject({ code: 1, stderr: "" })
      expect(failed.stdout).toMatch(/^worker: partial\nruntime: failed: [^\n]+\n$/)

      const ticking = (yield* runCli(["create", "--profile", "tick"], env)).stdout.trim()
      const ticked = yield* runCli(["send", ticking, "go", "--follow", "--json"], env)
      expect(ticked.code).toBe(0)
      expect(jsonLines(TranscriptEntry, ticked.stdout).map((entry) => entry.content)).toEqual([
        "tick 1",
        "tick 2",
        "tick 3",
        "completed"
      ])

      const slow = (yield* runCli(["create", "--profile", "slow"], env)).stdout.trim()
      const follower = yield* startCli(["follow", slow], env)
      const turn = yield* startCli(["send", slow, "wait", "--follow"], env)
      yield* waitForStdout(follower, "user: wait\n")
      expect(yield* runCli(["send", slow, "later", "--if-busy", "enqueue"], env)).toMatchObject({
        code: 0,
        stdout: "queued 1\n"
      })
      expect(yield* runCli(["cancel", slow, "--reason", "enough"], env)).toMatchObject({
        code: 0,
        stdout: "cancelled\n"
      })
      const cancelled = yield* resultOf(turn)
      expect(cancelled).toEqual({ code: 130, stdout: "runtime: cancelled: enough\n", stderr: "" })
      yield* waitForStdout(follower, "user: later\n")
      expect(yield* runCli(["stop", slow], env)).toMatchObject({ code: 0, stdout: "stopped\n" })
      const followed = yield* resultOf(follower)
      expect(followed.code).toBe(0)
      expectPlain(followed.stdout)
      expect(followed.stdout).toMatch(
        /^user: wait\nruntime: cancelled: enough\nuser: later\nruntime: stopped[^\n]*\n$/
      )
    }))

  it.scopedLive("send --follow and follow print a model's deltas as they come, and its text once; --json a line each", () =>
    Effect.gen(function*() {
      const model = yield* makeModelServer()
      const file = join(scratch(), "profiles.json")
      writeFileSync(file, JSON.stringify({ model: { engine: "openai", model: "test-model", apiUrl: model.openAiUrl } }))
      const bin = yield* startBin(["--profiles", file])
      const env = cliEnv(bin.url)
      // Deltas are live only: the model's reply waits until the followers are there.
      const streamsOpen = (count: number) =>
        eventuallyLive(
          Effect.promise(() => fetch(`${bin.url}/metrics`).then((response) => response.text())),
          (text) => Number(/^worker_runtime_event_streams(?:\{[^}]*\})? (\d+)/m.exec(text)?.[1] ?? 0) >= count,
          `${count} event streams open`
        )
      const id = (yield* runCli(["create", "--profile", "model"], env)).stdout.trim()
      const follower = yield* startCli(["follow", id], env)
      yield* streamsOpen(1)

      const first = makeGate()
      yield* model.script(reply("Hello there, friend.", { gate: first }))
      const turn = yield* startCli(["send", id, "hi", "--follow"], env)
      yield* streamsOpen(2)
      yield* model.awaitCount(1)
      first.release(1)
      // The first word shows while the rest of the reply is still held back.
      yield* waitForStdout(turn, "worker: Hello")
      yield* waitForStdout(follower, "user: hi\nworker: Hello")
      expect(turn.stdout()).toBe("worker: Hello")
      first.release()
      expect(yield* resultOf(turn)).toEqual({ code: 0, stdout: "worker: Hello there, friend.\n", stderr: "" })

      const second = makeGate()
      yield* model.script(reply("Fine, thanks.", { gate: second }))
      const json = yield* startCli(["send", id, "how are you?", "--follow", "--json"], env)
      yield* streamsOpen(2)
      yield* model.awaitCount(2)
      second.release()
      const lines = (yield* resultOf(json)).stdout.trimEnd().split("\n").map((line): unknown => JSON.parse(line))
      expect(lines.slice(0, 2)).toEqual([
        { type: "delta", turn: 2, text: "Fine," },
        { type: "delta", turn: 2, text: " thanks." }
      ])
      expect(lines.slice(2)).toMatchObject([
        { role: "worker", turn: 2, content: "Fine, thanks." },
        { role: "runtime", turn: 2, outcome: "completed" }
      ])

      expect(yield* runCli(["stop", id], env)).toMatchObject({ code: 0, stdout: "stopped\n" })
      const followed = yield* resultOf(follower)
      expect(followed.code).toBe(0)
      expectPlain(followed.stdout)
      expect(followed.stdout).toMatch(
        /^user: hi\nworker: Hello there, friend\.\nruntime: completed\nuser: how are you\?\nworker: Fine, thanks\.\nruntime: completed\nruntime: stopped[^\n]*\n$/
      )
    }))

  it.scopedLive("follow and send --follow end with 130 on SIGINT, and the turn runs on", () =>
    Effect.gen(function*() {
      const bin = yield* startRuntime()
      const env = cliEnv(bin.url)
      const slow = (yield* runCli(["create", "--profile", "slow"], env)).stdout.trim()
      const follower = yield* startCli(["follow", slow], env)
      const turn = yield* startCli(["send", slow, "wait", "--follow"], env)
      yield* waitForStdout(follower, "user: wait\n")
      follower.child.kill("SIGINT")
      turn.child.kill("SIGINT")
      expect((yield* resultOf(follower)).code).toBe(130)
      expect(yield* resultOf(turn)).toMatchObject({ code: 130, stdout: "" })
      const [worker] = jsonLines(Worker, (yield* runCli(["list", "--json"], env)).stdout)
      expect(worker).toMatchObject({ id: slow, status: "busy", turn: 1 })
      const transcript = yield* runCli(["transcript", slow], env)
      expect(transcript.stdout).toBe("user: wait\n")
    }))

  it.scopedLive("takes the token from --token-file or WORKER_RUNTIME_TOKEN, and the first of several URLs", () =>
    Effect.gen(function*() {
      const tokenFile = join(scratch(), "token")
      writeFileSync(tokenFile, "cli-secret-token-0123456789\n")
      chmodSync(tokenFile, 0o600)
      const bin = yield* startBin(["--token-file", tokenFile])
      const env = cliEnv(bin.url)
      const withFile = yield* runCli(["info", "--token-file", tokenFile], env)
      expect(withFile).toMatchObject({ code: 0, stderr: "" })
      const fromEnv = yield* runCli(["list"], cliEnv(bin.url, { WORKER_RUNTIME_TOKEN: "cli-secret-token-0123456789" }))
      expect(fromEnv).toMatchObject({ code: 0, stderr: "" })
      // Nothing listens on port 1: only the first URL is used.
      const several = yield* runCli(["info", "--url", `${bin.url},http://127.0.0.1:1`, "--token-file", tokenFile], env)
      expect(several.code).toBe(0)
      const without = yield* runCli(["info"], env)
      expect(without.code).toBe(3)
      expect(without.stderr).toMatch(/^RuntimeMisconfigured: [^\n]*401[^\n]*\n$/)
      expect(without.stderr).not.toContain("cli-secret")
      const unreadable = yield* runCli(["info", "--token-file", join(scratch(), "missing")], env)
      expect(unreadable.code).toBe(2)
      expect(unreadable.stderr).toMatch(/^worker-runtime: cannot read --token-file /)
    }))

  it.scopedLive.skipIf(!hasScript)(
    "in a terminal: roles in colour on stdout, a spinner on stderr",
    () =>
      Effect.gen(function*() {
        const bin = yield* startRuntime()
        const env = cliEnv(bin.url)
        const first = (yield* runCli(["create", "--profile", "tick"], env)).stdout.trim()
        // stderr in the terminal, stdout to a pipe: the spinner shows, stdout stays plain.
        const out = join(scratch(), "stdout")
        const spinning = yield* runCliInTerminal(["send", first, "go", "--follow"], env, `> ${out}`)
        expect(spinning.code).toBe(0)
        expect(spinning.stdout).toMatch(/\r[|/\\-] /)
        const piped = yield* runCli(["transcript", first], env)
        expectPlain(piped.stdout)
        const second = (yield* runCli(["create", "--profile", "tick"], env)).stdout.trim()
        // stdout in the terminal, stderr to /dev/null: roles in colour, no spinner.
        const coloured = yield* runCliInTerminal(["send", second, "go", "--follow"], env, "2>/dev/null")
        expect(coloured.code).toBe(0)
        expect(coloured.stdout).toContain("\u001b[32mworker\u001b[39m: tick 1")
        expect(coloured.stdout).not.toMatch(/[|/\\-] \r/)
      })
  )

  it.live("prints each subcommand's --help with an example, without @effect/cli's boilerplate", () =>
    Effect.gen(function*() {
      const commands = ["info", "list", "create", "send", "follow", "transcript", "cancel", "stop", "delete"]
      for (const command of commands) {
        const { code, output } = yield* runBin([command, "--help"])
        expect(code, command).toBe(0)
        expectPlain(output)
        expect(output, command).toMatch(new RegExp(`^worker-runtime ${command}\\n`))
        expect(output, command).toContain(`\n  worker-runtime ${command} [options]`)
        expect(output, command).toMatch(new RegExp(`\\nEXAMPLE\\n {2}worker-runtime ${command} `))
        expect(output, command).toContain("--url")
        expect(output, command).not.toContain("This setting is optional.")
        expect(output, command).not.toContain("A user-defined piece of text.")
      }
      const serve = yield* runBin(["serve", "--help"])
      expect(serve.output).toBe((yield* runBin(["--help"])).output)
    }))

  it.scopedLive("the README's From a terminal block runs as written, each command printing what its comment says", () =>
    Effect.gen(function*() {
      const readme = readFileSync(join(projectRoot, "README.md"), "utf8")
      const start = readme.indexOf("## From a terminal")
      const open = readme.indexOf("```sh\n", start)
      const lines = readme.slice(open + 6, readme.indexOf("\n```", open)).split("\n")
      const commands = lines.map((line) => line.replace(/\s+#.*$/, ""))
      // `worker-runtime` on PATH, as installed.
      const shimDir = scratch()
      const shim = join(shimDir, "worker-runtime")
      writeFileSync(shim, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} "$@"\n`)
      chmodSync(shim, 0o755)
      const runtime = yield* startRuntime()
      const MARK = "<<<end>>>"
      const script = commands.map((command) => `${command}\nprintf '%s\\n' '${MARK}'`).join("\n")
      const outputs = yield* Effect.promise(() =>
        new Promise<Array<string>>((resolve, reject) =>
          execFile("bash", ["-euo", "pipefail", "-c", script], {
            env: cliEnv(runtime.url, { PATH: `${shimDir}:${process.env["PATH"] ?? ""}` }),
            timeout: HANG_MS
          }, (error, stdout, stderr) =>
            error === null
              ? resolve(stdout.split(`${MARK}\n`).slice(0, commands.length))
              : reject(new Error(`${error.message}\n${stdout}\n${stderr}`)))
        )
      )
      const [info, created, followed, sent, listed, transcript, stopped, deleted] = outputs
      expect(info).toMatch(/^id: .*\nstatus: running\n/s)
      expect(created).toBe("")
      expect(followed).toBe("worker: hello\n")
      expect(sent).toBe("4\n")
      expect(listed).toMatch(/^ID .*\n\S+ +default +idle +2 +0 +\S+ +team=docs\n$/)
      expect(jsonLines(TranscriptEntry, transcript!)).toHaveLength(6)
      expect(stopped).toBe("stopped\n")
      expect(deleted).toBe("")
    }))
})

/**
 * The `process` engine through the Runtime, with real child processes (so
 * real time: `it.live`, bounded polling). Every test kills what it saw
 * spawned in a finalizer, so a failing test leaves nothing behind.
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Context, Effect, Either, Exit, Layer, Scope, Stream } from "effect"

import {
  InvalidInput,
  Runtime,
  RuntimeLive,
  type RuntimeService,
  type TranscriptEntry,
  type Worker,
  type WorkerId
} from "../src/index.js"
import { DEFAULT_KILL_GRACE_MS } from "../src/node/ProcessEngine.js"
import { buildEngines, type ProcessProfile, type ProfileConfigs, ProfilesError } from "../src/node/Profiles.js"
import { type OutputLimits, stdoutLines } from "../src/node/StdoutLines.js"
import { eventuallyLive } from "./support/eventually.js"

const NODE = process.execPath

/** A profile running `node -e source args...`. */
const script = (source: string, extra: Partial<ProcessProfile> = {}, args: Array<string> = []): ProcessProfile => ({
  engine: "process",
  command: [NODE, "-e", source, ...args],
  ...extra
})

const RuntimeFromConfigLive = (profiles: ProfileConfigs, killGraceMs?: number) =>
  Layer.unwrapEffect(
    Effect.map(buildEngines(profiles, { killGraceMs }), (engines) =>
      RuntimeLive({ runtimeId: "rt-process", profiles: engines }))
  ).pipe(Layer.provide(NodeContext.layer))

/** A Runtime that lives as long as the test's scope. */
const scopedRuntime = (profiles: ProfileConfigs, killGraceMs?: number) =>
  Effect.map(Layer.build(RuntimeFromConfigLive(profiles, killGraceMs)), Context.get(Runtime))

const withRuntime = (profiles: ProfileConfigs, killGraceMs?: number) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.provide(effect, RuntimeFromConfigLive(profiles, killGraceMs))

const entriesOf = (runtime: RuntimeService, workerId: WorkerId) =>
  Effect.map(runtime.transcript(workerId, { limit: 1000 }), (page) => page.entries)

const awaitIdle = (runtime: RuntimeService, workerId: WorkerId) =>
  eventuallyLive(runtime.get(workerId), (worker) => worker.status === "idle", "Worker idle")

const contents = (entries: ReadonlyArray<TranscriptEntry>, role: TranscriptEntry["role"]) =>
  entries.filter((entry) => entry.role === role).map((entry) => entry.content)

/**
 * Running: signalable and not a zombie. A killed grandchild is an orphan, and
 * an init that never reaps (this sandbox's) keeps it as a zombie for good.
 */
const running = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  if (process.platform !== "linux") return true
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3)
    return state !== "Z" && state !== "X"
  } catch {
    return false
  }
}

const killQuietly = (pid: number) => {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, "SIGKILL")
    } catch {
      // already gone
    }
  }
}

/** Waits for the child's `pids a b ...` line in `turn`; the test's end kills them whatever happens. */
const awaitPids = (runtime: RuntimeService, workerId: WorkerId, turn = 1) =>
  Effect.gen(function*() {
    const isPids = (entry: TranscriptEntry) => entry.turn === turn && entry.content.startsWith("pids ")
    const entries = yield* eventuallyLive(entriesOf(runtime, workerId), (all) => all.some(isPids), "the child's pids")
    const pids = (entries.find(isPids)?.content ?? "").split(" ").slice(1).map(Number)
    yield* Effect.addFinalizer(() => Effect.sync(() => pids.forEach(killQuietly)))
    return pids
  })

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "process-engine-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

const withEnv = (vars: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const before = Object.fromEntries(Object.keys(vars).map((key) => [key, process.env[key]]))
      Object.assign(process.env, vars)
      return before
    }),
    (before) =>
      Effect.sync(() => {
        for (const [key, value] of Object.entries(before)) {
          if (value === undefined) delete process.env[key]
          else process.env[key] = value
        }
      })
  )

// Child scripts ------------------------------------------------------------------

const READ_STDIN = `let input = ""; process.stdin.setEncoding("utf8");
process.stdin.on("data", (d) => { input += d });`

/** A child that ignores SIGTERM and has a grandchild that does too; prints both pids once both are set. */
const STUBBORN = `process.on("SIGTERM", () => {});
const grandchild = require("child_process").spawn(process.execPath,
  ["-e", "process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000)"],
  { stdio: ["ignore", "pipe", "ignore"] });
grandchild.stdout.once("data", () => console.log("pids " + process.pid + " " + grandchild.pid));
setInterval(() => {}, 1000);`

const SLEEPER = `console.log("pids " + process.pid); setInterval(() => {}, 1000);`

const bytes = (text: string) => new TextEncoder().encode(text)

const NO_LIMITS: OutputLimits = { maxBytes: Number.MAX_SAFE_INTEGER, maxEntries: Number.MAX_SAFE_INTEGER }

/** What `stdoutLines` yields for stdout read as these chunks, then `failed: ...` if it fails. */
const linesOf = (reads: ReadonlyArray<string | Uint8Array>, limits: OutputLimits = NO_LIMITS) =>
  Stream.fromChunks(...reads.map((read) => Chunk.of(typeof read === "string" ? bytes(read) : read))).pipe(
    (stdout) => stdoutLines(stdout, limits),
    Stream.either,
    Stream.runCollect,
    Effect.map(Chunk.map(Either.match({ onLeft: (failure) => `failed: ${failure.message}`, onRight: (line) => line })))
  )

// The process engine's splitting of stdout, one read at a time: exact lines across read boundaries, in time
// linear in the output, within the limits.
describe("stdout lines", () => {
  it.effect("splits at newlines across reads and multi-byte characters, and keeps the rest for the end", () =>
    Effect.gen(function*() {
      const text = bytes("one\ntw\u00f6\n\nthr\u{1F600}e\r\nlast")
      // One byte at a time: every boundary, inside characters too.
      const reads = Array.from(text, (_, i) => text.subarray(i, i + 1))
      expect(Chunk.toReadonlyArray(yield* linesOf(reads))).toEqual(["one", "tw\u00f6", "thr\u{1F600}e", "last"])
    }))

  it.effect("takes \\r\\n split between reads as one newline, and keeps a lone \\r", () =>
    Effect.gen(function*() {
      expect(Chunk.toReadonlyArray(yield* linesOf(["a\r", "\nb\rc\r", "\r\n\r", "\n", "last\r"]))).toEqual([
        "a",
        "b\rc\r",
        "last"
      ])
    }))

  it.effect("takes 64 MiB without a newline in 64 KiB reads (quadratic joining would not finish)", () =>
    Effect.gen(function*() {
      const read = new Uint8Array(64 * 1024).fill(0x78)
      const lines = yield* linesOf([...Array.from({ length: 1024 }, () => read), "\n"])
      expect(lines.length).toBe(1)
      expect(Chunk.unsafeHead(lines)).toHaveLength(64 * 1024 * 1024)
    }))

  it.effect("past maxBytes: the lines complete within it, not the partial line at the cut, then the failure", () =>
    Effect.gen(function*() {
      const tooLarge = (max: number) => `failed: output exceeded maxOutputBytes (${max} bytes); the process was stopped`
      const cut = (reads: ReadonlyArray<string>, maxBytes: number) =>
        Effect.map(linesOf(reads, { ...NO_LIMITS, maxBytes }), Chunk.toReadonlyArray)
      expect(yield* cut(["aa\nbb", "b\ncc"], 8)).toEqual(["aa", "bbb", tooLarge(8)])
      // The partial line began in an earlier read.
      expect(yield* cut(["aa\nbbbb", "bbbbb\n"], 9)).toEqual(["aa", tooLarge(9)])
      expect(yield* cut(["aa\n", "bb\n"], 3)).toEqual(["aa", tooLarge(3)])
      // Cut between \r and \n: that line is not complete.
      expect(yield* cut(["aa\r\n"], 3)).toEqual([tooLarge(3)])
      // Cut inside a character.
      expect(yield* cut(["a\n\u00f6\n"], 3)).toEqual(["a", tooLarge(3)])
      // Exactly the limit is within it.
      expect(yield* cut(["aa\n", "bb"], 5)).toEqual(["aa", "bb"])
    }))

  it.effect("past maxEntries: that many lines, then the failure; and it stops reading when it fails", () =>
    Effect.gen(function*() {
      const tooMany = "failed: output exceeded maxOutputEntries (2 entries); the process was stopped"
      expect(Chunk.toReadonlyArray(yield* linesOf(["a\nb\n\nc\nd\n"], { ...NO_LIMITS, maxEntries: 2 }))).toEqual([
        "a",
        "b",
        tooMany
      ])
      expect(Chunk.toReadonlyArray(yield* linesOf(["a\n\n", "b"], { ...NO_LIMITS, maxEntries: 2 }))).toEqual(["a", "b"])
      let reads = 0
      const stdout = Stream.fromChunks(...["x\n", "y\n", "z\n", "w\n"].map((read) => Chunk.of(bytes(read)))).pipe(
        Stream.tap(() => Effect.sync(() => reads++))
      )
      const lines = yield* stdoutLines(stdout, { maxBytes: 4, maxEntries: 10 }).pipe(Stream.either, Stream.runCollect)
      expect(lines.length).toBe(3)
      expect(reads).toBe(3)
    }))
})

describe("process engine", () => {
  describe("output", () => {
    it.scopedLive("records stdout lines in order, skips empty ones, and keeps a final line without newline", () =>
      Effect.gen(function*() {
        const runtime = yield* Runtime
        const worker = yield* runtime.create({ profile: "p" })
        yield* runtime.input(worker.id, { content: "hi" })
        const idle = yield* awaitIdle(runtime, worker.id)
        const entries = yield* entriesOf(runtime, worker.id)
        expect(entries.map(({ content, role, seq, turn }) => ({ seq, role, content, turn }))).toEqual([
          { seq: 1, role: "user", content: "hi", turn: 1 },
          { seq: 2, role: "worker", content: "one", turn: 1 },
          { seq: 3, role: "worker", content: "two  ", turn: 1 },
          { seq: 4, role: "worker", content: "3:\"hi\"", turn: 1 },
          { seq: 5, role: "worker", content: "last", turn: 1 },
          { seq: 6, role: "runtime", content: "completed", turn: 1 }
        ])
        expect(idle.lastSeq).toBe(6)
      }).pipe(withRuntime({
        p: script(`${READ_STDIN} process.stdin.on("end", () => {
          process.stdout.write("one\\n\\n" + "two  \\r\\n\\r\\n\\n" + "3:" + JSON.stringify(input) + "\\n\\nlast")
        })`)
      })))

    it.scopedLive("records lines as they arrive, while the turn still runs", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const release = join(dir, "release")
        const runtime = yield* scopedRuntime({
          p: script(
            `console.log("started");
            const timer = setInterval(() => {
              if (require("fs").existsSync(process.argv[1])) { console.log("done"); clearInterval(timer) }
            }, 20)`,
            {},
            [release]
          )
        })
        const worker = yield* runtime.create({ profile: "p" })
        yield* runtime.input(worker.id, { content: "go" })
        yield* eventuallyLive(
          entriesOf(runtime, worker.id),
          (entries) => contents(entries, "worker").includes("started"),
          "the first line"
        )
        expect((yield* runtime.get(worker.id)).status).toBe("busy")
        writeFileSync(release, "")
        yield* awaitIdle(runtime, worker.id)
        expect(contents(yield* entriesOf(runtime, worker.id), "worker")).toEqual(["started", "done"])
      }))

    it.scopedLive("stops the turn past maxOutputBytes, keeping the lines within it", () =>
      Effect.gen(function*() {
        const runtime = yield* Runtime
        const worker = yield* runtime.create({ profile: "p" })
        yield* runtime.input(worker.id, { content: "flood" })
        yield* awaitIdle(runtime, worker.id)
        const entries = yield* entriesOf(runtime, worker.id)
        const lines = contents(entries, "worker")
        const [pid] = lines[0]!.split(" ").slice(1).map(Number)
        yield* Effect.addFinalizer(() => Effect.sync(() => killQuietly(pid!)))
        expect(lines.length).toBeGreaterThan(1)
        const bytes = lines.reduce((sum, line) => sum + Buffer.byteLength(line) + 1, 0)
        expect(bytes).toBeLessThanOrEqual(2000)
        expect(lines.slice(1).every((line) => line === "y".repeat(99))).toBe(true)
        expect(contents(entries, "runtime")).toEqual([
          "failed: output exceeded maxOutputBytes (2000 bytes); the process was stopped"
        ])
        expect(running(pid!)).toBe(false)
      }).pipe(withRuntime({
        p: script(
          `console.log("pids " + process.pid);
          setInterval(() => { for (let i = 0; i < 10; i++) console.log("y".repeat(99)) }, 5)`,
          { maxOutputBytes: 2000 }
        )
      })))
  })

  describe("input and environment", () => {
    it.scopedLive("gives the child exactly the allowed environment", () =>
      Effect.gen(function*() {
        yield* withEnv({ WORKER_RUNTIME_TOKEN: "secret-token", WORKER_RUNTIME_PORT: "1", SECRET_X: "x" })
        const runtime = yield* Runtime
        const info = yield* runtime.info
        const worker = yield* runtime.create({ profile: "p" })
        const envOf = (entries: ReadonlyArray<TranscriptEntry>): Record<string, string> =>
          JSON.parse(contents(entries, "worker").at(-1)!)

        yield* runtime.input(worker.id, { content: "first" })
        yield* awaitIdle(runtime, worker.id)
        const env = envOf(yield* entriesOf(runtime, worker.id))
        const inherited = ["PATH", "HOME", "LANG"].filter((name) => process.env[name] !== undefined)
        expect(Object.keys(env).sort()).toEqual(
          [...inherited, "WORKER_ID", "WORKER_TURN", "WORKER_INPUT_KIND", "RUNTIME_ID", "MODEL"].sort()
        )
        expect(env).toMatchObject({
          WORKER_ID: worker.id,
          WORKER_TURN: "1",
          WORKER_INPUT_KIND: "user",
          RUNTIME_ID: info.runtimeId,
          MODEL: "small"
        })
        for (const name of inherited) expect(env[name]).toBe(process.env[name])
        expect(JSON.stringify(env)).not.toContain("secret-token")

        yield* runtime.input(worker.id, { content: "second", kind: "system" })
        yield* awaitIdle(runtime, worker.id)
        expect(envOf(yield* entriesOf(runtime, worker.id))).toMatchObject({
          WORKER_TURN: "2",
          WORKER_INPUT_KIND: "system"
        })
      }).pipe(withRuntime({
        p: script(`console.log(JSON.stringify(process.env))`, { env: { MODEL: "small" } })
      })))

    it.scopedLive.skipIf(process.getuid?.() !== 0)(
      "runs the child as the profile's user and group (the runtime runs as root)",
      () =>
        Effect.gen(function*() {
          const runtime = yield* Runtime
          const worker = yield* runtime.create({ profile: "p" })
          yield* runtime.input(worker.id, { content: "who" })
          yield* awaitIdle(runtime, worker.id)
          const ids = contents(yield* entriesOf(runtime, worker.id), "worker")
          expect(ids).toEqual([`${execFileSync("id", ["-u", "nobody"], { encoding: "utf8" }).trim()} 65534 65534`])
        }).pipe(withRuntime({
          p: script(`console.log(process.getuid() + " " + process.getgid() + " " + process.getgroups().join(","))`, {
            user: "nobody",
            group: "65534"
          })
        }))
    )

    it.effect("refuses a profile whose user does not exist, naming the profile", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(
          buildEngines({ p: script("0", { user: "no-such-user-here" }) }).pipe(Effect.provide(NodeContext.layer))
        )
        expect(error).toBeInstanceOf(ProfilesError)
        expect(error.message).toMatch(process.getuid?.() === 0 ? /no user "no-such-user-here"/ : /root/)
      }))

    it.scopedLive("feeds the transcript as JSON lines in transcript mode", () =>
      Effect.gen(function*() {
        const runtime = yield* Runtime
        const worker = yield* runtime.create({ profile: "p" })
        const seen = Effect.map(
          entriesOf(runtime, worker.id),
          (entries): Array<Record<string, unknown>> => JSON.parse(contents(entries, "worker").at(-1)!)
        )
        yield* runtime.input(worker.id, { content: "a" })
        yield* awaitIdle(runtime, worker.id)
        const first = yield* seen
        expect(first).toHaveLength(1)
        expect(Object.keys(first[0]!).sort()).toEqual(["at", "content", "role", "seq", "turn"])
        expect(first[0]).toMatchObject({ seq: 1, role: "user", content: "a", turn: 1 })

        yield* runtime.input(worker.id, { content: "b", kind: "system" })
        yield* awaitIdle(runtime, worker.id)
        const second = yield* seen
        expect(second).toMatchObject([
          { seq: 1, role: "user", turn: 1, content: "a" },
          { seq: 2, role: "worker", turn: 1, content: JSON.stringify(first) },
          { seq: 3, role: "runtime", turn: 1, content: "completed", outcome: "completed" },
          { seq: 4, role: "system", turn: 2, content: "b" }
        ])
        expect(second[0]).not.toHaveProperty("outcome")
      }).pipe(withRuntime({
        p: script(
          `${READ_STDIN} process.stdin.on("end", () => {
            const lines = input.split("\\n").filter((line) => line !== "").map((line) => JSON.parse(line));
            console.log(JSON.stringify(lines))
          })`,
          { input: "transcript" }
        )
      })))

    it.scopedLive("runs in the profile's cwd", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const runtime = yield* scopedRuntime({
          here: script(`console.log(process.cwd())`, { cwd: dir }),
          nowhere: script(`console.log(process.cwd())`, { cwd: join(dir, "missing") })
        })
        const here = yield* runtime.create({ profile: "here" })
        yield* runtime.input(here.id, { content: "x" })
        yield* awaitIdle(runtime, here.id)
        expect(contents(yield* entriesOf(runtime, here.id), "worker")).toEqual([realpathSync(dir)])

        const nowhere = yield* runtime.create({ profile: "nowhere" })
        yield* runtime.input(nowhere.id, { content: "x" })
        yield* awaitIdle(runtime, nowhere.id)
        const [failure] = contents(yield* entriesOf(runtime, nowhere.id), "runtime")
        expect(failure).toMatch(/^failed: could not start /)
      }))

    it.scopedLive("does not mind a child that never reads its stdin", () =>
      Effect.gen(function*() {
        const runtime = yield* Runtime
        const worker = yield* runtime.create({ profile: "p" })
        for (let i = 0; i < 3; i++) {
          yield* runtime.input(worker.id, { content: "z".repeat(900_000) })
          yield* awaitIdle(runtime, worker.id)
        }
        const entries = yield* entriesOf(runtime, worker.id)
        expect(contents(entries, "worker")).toEqual(["ok", "ok", "ok"])
        expect(contents(entries, "runtime")).toEqual(["completed", "completed", "completed"])
        // the write still pending when the child is killed fails quietly
        const sleepy = yield* runtime.create({ profile: "sleepy" })
        yield* runtime.input(sleepy.id, { content: "z".repeat(900_000) })
        const [pid] = yield* awaitPids(runtime, sleepy.id)
        yield* runtime.cancel(sleepy.id)
        expect(running(pid!)).toBe(false)
        yield* runtime.input(sleepy.id, { content: "again" })
        yield* awaitPids(runtime, sleepy.id, 2)
      }).pipe(withRuntime({ p: script(`console.log("ok")`), sleepy: script(SLEEPER) }, 200)))

    it.scopedLive("rejects a create request that tries to choose a command", () =>
      Effect.gen(function*() {
        const runtime = yield* Runtime
        for (const request of [{ profile: "p", command: ["sh"] }, { profile: "p", env: { A: "b" } }]) {
          // deliberately untyped: what a hostile caller could send
          const error = yield* Effect.flip(runtime.create(request as never))
          expect(error).toBeInstanceOf(InvalidInput)
        }
        expect((yield* runtime.info).workers.total).toBe(0)
      }).pipe(withRuntime({ p: script(`console.log("ok")`) })))
  })

  describe("failures", () => {
    it.scopedLive("records a non-zero exit with the tail of stderr, and the Worker stays usable", () =>
      Effect.gen(function*() {
        const runtime = yield* Runtime
        const worker = yield* runtime.create({ profile: "p" })
        yield* runtime.input(worker.id, { content: "fail" })
        const idle = yield* awaitIdle(runtime, worker.id)
        const entries = yield* entriesOf(runtime, worker.id)
        expect(entries.map((entry) => entry.role)).toEqual(["user", "worker", "runtime"])
        expect(entries[1]!.content).toBe("partial")
        const failure = entries[2]!.content
        expect(failure).toMatch(/^failed: exited with code 3; stderr: x+\nlast words$/)
        expect(failure.length).toBeLessThan(4096 + 100)
        expect(idle.lastSeq).toBe(3)

        yield* runtime.input(worker.id, { content: "fine" })
        yield* awaitIdle(runtime, worker.id)
        expect(contents(yield* entriesOf(runtime, worker.id), "worker")).toEqual(["partial", "ok:fine"])
      }).pipe(withRuntime({
        p: script(`${READ_STDIN} process.stdin.on("end", () => {
          if (input !== "fail") return console.log("ok:" + input);
          process.stderr.write("x".repeat(10000) + "\\nlast words\\n");
          console.log("partial");
          process.exitCode = 3
        })`)
      })))

    it.scopedLive("records death by a signal", () =>
      Effect.gen(function*() {
        const runtime = yield* Runtime
        const worker = yield* runtime.create({ profile: "p" })
        yield* runtime.input(worker.id, { content: "x" })
        yield* awaitIdle(runtime, worker.id)
        expect(contents(yield* entriesOf(runtime, worker.id), "runtime")).toEqual([
          "failed: killed by signal SIGKILL; stderr: dying"
        ])
      }).pipe(withRuntime({
        p: script(`process.stderr.write("dying\\n", () => process.kill(process.pid, "SIGKILL"))`)
      })))

    it.scopedLive("accepts input for a missing executable, then records why the turn failed", () =>
      Effect.gen(function*() {
        const runtime = yield* Runtime
        const worker = yield* runtime.create({ profile: "p" })
        const accepted = yield* runtime.input(worker.id, { content: "x" })
        expect(accepted.entry).toMatchObject({ seq: 1, role: "user" })
        yield* awaitIdle(runtime, worker.id)
        const failures = contents(yield* entriesOf(runtime, worker.id), "runtime")
        expect(failures).toHaveLength(1)
        expect(failures[0]).toBe(
          "failed: could not start /nonexistent/agent-xyz: not found (spawn /nonexistent/agent-xyz ENOENT)"
        )
        // still usable: the next input is accepted and fails the same way
        yield* runtime.input(worker.id, { content: "y" })
        yield* awaitIdle(runtime, worker.id)
      }).pipe(withRuntime({ p: { engine: "process", command: ["/nonexistent/agent-xyz", "--flag"] } })))

    it.scopedLive("stops a turn past turnTimeoutMs", () =>
      Effect.gen(function*() {
        const runtime = yield* Runtime
        const worker = yield* runtime.create({ profile: "p" })
        yield* runtime.input(worker.id, { content: "x" })
        const [pid] = yield* awaitPids(runtime, worker.id)
        yield* awaitIdle(runtime, worker.id)
        expect(contents(yield* entriesOf(runtime, worker.id), "runtime")).toEqual([
          "failed: timed out after 500 ms; the process was stopped"
        ])
        expect(running(pid!)).toBe(false)
      }).pipe(withRuntime({ p: script(SLEEPER, { turnTimeoutMs: 500 }) })))
  })

  describe("stopping the process", () => {
    const KILL_GRACE_MS = 500

    it.scopedLive("cancel kills a child that ignores SIGTERM, and its child, before it returns", () =>
      Effect.gen(function*() {
        const runtime = yield* Runtime
        const worker = yield* runtime.create({ profile: "p" })
        yield* runtime.input(worker.id, { content: "x" })
        const pids = yield* awaitPids(runtime, worker.id)
        expect(pids).toHaveLength(2)
        expect(pids.every(running)).toBe(true)
        const started = Date.now()
        const result = yield* runtime.cancel(worker.id, { reason: "enough" })
        const elapsed = Date.now() - started
        expect(pids.map(running)).toEqual([false, false])
        expect(result).toMatchObject({ cancelled: true, worker: { status: "idle" } })
        // SIGTERM first, SIGKILL once the grace ran out
        expect(elapsed).toBeGreaterThanOrEqual(KILL_GRACE_MS - 50)
        expect(elapsed).toBeLessThan(KILL_GRACE_MS + 1500)
        expect(contents(yield* entriesOf(runtime, worker.id), "runtime")).toEqual(["cancelled: enough"])
      }).pipe(withRuntime({ p: script(STUBBORN) }, KILL_GRACE_MS)))

    it.scopedLive("cancel gives a child that honours SIGTERM the chance to exit", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const marker = join(dir, "terminated")
        const runtime = yield* scopedRuntime({
          p: script(
            `process.on("SIGTERM", () => { require("fs").writeFileSync(process.argv[1], "term"); process.exit(0) });
            ${SLEEPER}`,
            {},
            [marker]
          )
        })
        const worker = yield* runtime.create({ profile: "p" })
        yield* runtime.input(worker.id, { content: "x" })
        const [pid] = yield* awaitPids(runtime, worker.id)
        const started = Date.now()
        yield* runtime.cancel(worker.id)
        expect(Date.now() - started).toBeLessThan(DEFAULT_KILL_GRACE_MS)
        expect(running(pid!)).toBe(false)
        expect(readFileSync(marker, "utf8")).toBe("term")
      }))

    it.scopedLive("stop escalates to SIGKILL within the default 2 s", () =>
      Effect.gen(function*() {
        const runtime = yield* Runtime
        const worker = yield* runtime.create({ profile: "p" })
        yield* runtime.input(worker.id, { content: "x" })
        const pids = yield* awaitPids(runtime, worker.id)
        const started = Date.now()
        const stopped = yield* runtime.stop(worker.id, { reason: "bye" })
        const elapsed = Date.now() - started
        expect(pids.map(running)).toEqual([false, false])
        expect(stopped).toMatchObject({ status: "stopped", stopReason: "bye" })
        expect(elapsed).toBeGreaterThanOrEqual(DEFAULT_KILL_GRACE_MS - 50)
        expect(elapsed).toBeLessThan(DEFAULT_KILL_GRACE_MS + 1500)
      }).pipe(withRuntime({ p: script(STUBBORN) })))

    it.scopedLive("shutdown leaves no process behind", () =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
        const context = yield* Layer.buildWithScope(
          RuntimeFromConfigLive({ p: script(STUBBORN) }, KILL_GRACE_MS),
          scope
        )
        const runtime = Context.get(context, Runtime)
        const workers: Array<Worker> = []
        for (let i = 0; i < 3; i++) {
          const worker = yield* runtime.create({ profile: "p" })
          yield* runtime.input(worker.id, { content: "x" })
          workers.push(worker)
        }
        const pids = (yield* Effect.forEach(workers, (worker) => awaitPids(runtime, worker.id))).flat()
        expect(pids).toHaveLength(6)
        yield* Scope.close(scope, Exit.void)
        expect(pids.filter(running)).toEqual([])
      }))
  })
})

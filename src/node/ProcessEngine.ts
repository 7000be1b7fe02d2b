/**
 * The `process` engine: one child process per turn, argv without a shell,
 * chosen only by the operator's profile. stdout lines become `worker` entries
 * as they arrive; the exit decides how the turn ends.
 *
 * The executor of `@effect/platform-node` spawns the child `detached`, so it
 * leads its own process group. Whatever ends the turn (exit, cancel, stop,
 * timeout, output limit, shutdown), the turn's scope does not close before
 * that group is gone: SIGTERM to the group, SIGKILL after the grace period.
 */
import { readdirSync, readFileSync } from "node:fs"

import * as Command from "@effect/platform/Command"
import * as CommandExecutor from "@effect/platform/CommandExecutor"
import type { PlatformError } from "@effect/platform/Error"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"

import type { TranscriptEntry } from "../Domain.js"
import * as Metrics from "../Metrics.js"
import { type TurnContext, TurnFailed, type WorkerEngine } from "../WorkerEngine.js"
import type { ProcessProfile } from "./Profiles.js"

export const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024
export const DEFAULT_MAX_OUTPUT_ENTRIES = 10_000
export const DEFAULT_KILL_GRACE_MS = 2000
const STDERR_TAIL_BYTES = 4096
const POLL_MS = 20
/**
 * The longest a turn's ingest of its output runs before it lets the event
 * loop serve I/O. Effect's scheduler runs ready fibers for thousands of
 * rounds between two timer turns, so a child printing a million lines a
 * second would otherwise hold requests of every other Worker for hundreds
 * of milliseconds at a time.
 */
const INGEST_SLICE_MS = 0.5
/** Lines recorded between two looks at the clock. */
const LINES_PER_CHECK = 64
/** How long to wait for the kernel after SIGKILL, which cannot be ignored. */
const AFTER_KILL_MS = 2000
/** The only variables of the runtime's own environment a child sees. */
const INHERITED_ENV = ["PATH", "HOME", "LANG"] as const

export interface ProcessEngineOptions {
  /** Between SIGTERM and SIGKILL (default 2000 ms). */
  readonly killGraceMs?: number | undefined
  /** Run the children as this user and group (the runtime runs as root). */
  readonly runAs?: RunAs | undefined
}

export interface RunAs {
  readonly uid: number
  readonly gid: number
}

// --- the process group -------------------------------------------------------

/** True when the signal reached the group; false once it is empty (or not ours to signal). */
const signalGroup = (pgid: number, signal: NodeJS.Signals | 0) =>
  Effect.try(() => process.kill(-pgid, signal)).pipe(
    Effect.as(true),
    Effect.orElseSucceed(() => false)
  )

/**
 * Zombies keep a group signalable until reaped, and an init that does not
 * reap orphans (as in many containers) keeps them forever. On Linux, /proc
 * tells a dead member from a running one.
 */
const hasRunningMember = (pgid: number): boolean => {
  let names: Array<string>
  try {
    names = readdirSync("/proc")
  } catch {
    return true
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue
    let stat: string
    try {
      stat = readFileSync(`/proc/${name}/stat`, "utf8")
    } catch {
      continue // gone meanwhile
    }
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    if (pgrp === String(pgid) && state !== "Z" && state !== "X") return true
  }
  return false
}

const groupRunning = (pgid: number) =>
  Effect.map(signalGroup(pgid, 0), (alive) => alive && (process.platform !== "linux" || hasRunningMember(pgid)))

const awaitGroupGone = (pgid: number, ms: number) =>
  Effect.gen(function*() {
    const deadline = (yield* Clock.currentTimeMillis) + ms
    while (yield* groupRunning(pgid)) {
      if ((yield* Clock.currentTimeMillis) >= deadline) return false
      yield* Effect.sleep(POLL_MS)
    }
    return true
  })

/** SIGTERM to the group, SIGKILL after `graceMs`; completes once nothing in it runs. */
const terminateGroup = (pgid: number, graceMs: number) =>
  Effect.gen(function*() {
    if (!(yield* groupRunning(pgid))) return
    yield* signalGroup(pgid, "SIGTERM")
    if (yield* awaitGroupGone(pgid, graceMs)) return
    yield* signalGroup(pgid, "SIGKILL")
    yield* awaitGroupGone(pgid, AFTER_KILL_MS)
  }).pipe(
    // Real time even under a TestClock: the child lives in real time, and a
    // finalizer waiting on a clock nobody advances would never end.
    Effect.withClock(Clock.make()),
    // Once SIGTERM is sent, SIGKILL follows within the grace period whoever
    // interrupts: a restart from scratch would grant a second grace period.
    Effect.uninterruptible
  )

// --- one turn ----------------------------------------------------------------

const environmentOf = (profile: Omit<ProcessProfile, "engine">, context: TurnContext): Record<string, string> => {
  const inherited: Record<string, string> = {}
  for (const name of INHERITED_ENV) {
    const value = process.env[name]
    if (value !== undefined) inherited[name] = value
  }
  return {
    ...inherited,
    ...profile.env,
    WORKER_ID: context.workerId,
    WORKER_TURN: String(context.turn),
    WORKER_INPUT_KIND: context.input.kind,
    RUNTIME_ID: context.runtimeId
  }
}

const commandOf = (profile: Omit<ProcessProfile, "engine">, context: TurnContext, runAs: RunAs | undefined) => {
  // The platform's executor does not pass uid and gid to spawn: util-linux's
  // setpriv switches, then execs the command (same pid, same process group).
  const argv = runAs === undefined
    ? profile.command
    : ["setpriv", `--reuid=${runAs.uid}`, `--regid=${runAs.gid}`, "--clear-groups", "--", ...profile.command]
  const [file = "", ...args] = argv
  const command = Command.make(file, ...args).pipe(
    Command.env(environmentOf(profile, context), { extendEnv: false })
  )
  return profile.cwd === undefined ? command : Command.workingDirectory(command, profile.cwd)
}

const jsonLine = ({ at, content, outcome, role, seq, turn }: TranscriptEntry) =>
  JSON.stringify({ seq, at, role, content, turn, ...(outcome === undefined ? {} : { outcome }) }) + "\n"

const stdinOf = (profile: Omit<ProcessProfile, "engine">, context: TurnContext) =>
  profile.input === "transcript"
    ? Effect.map(context.transcript, (entries) => new TextEncoder().encode(entries.map(jsonLine).join("")))
    : Effect.succeed(new TextEncoder().encode(context.input.content))

/**
 * Splits a byte stream into lines in time linear in its size, with or without
 * newlines: the unterminated rest is kept as pieces, joined once its line ends.
 */
export const makeLineSplitter = () => {
  const decoder = new TextDecoder()
  let rest: Array<string> = []
  const lines = (text: string): Array<string> => {
    const out: Array<string> = []
    let start = 0
    for (let newline = text.indexOf("\n"); newline >= 0; newline = text.indexOf("\n", start)) {
      const piece = text.slice(start, newline)
      out.push(rest.length === 0 ? piece : rest.join("") + piece)
      rest = []
      start = newline + 1
    }
    if (start < text.length) rest.push(text.slice(start))
    return out
  }
  return {
    /** The lines `bytes` completes. */
    push: (bytes: Uint8Array): Array<string> => lines(decoder.decode(bytes, { stream: true })),
    /** What is left at the end: the last line without a newline, if any. */
    end: (): Array<string> => {
      const last = rest.join("") + decoder.decode()
      rest = []
      return last === "" ? [] : [last]
    }
  }
}

/** Resumes after the event loop has polled for I/O once (`setImmediate` runs after the poll phase). */
const yieldToIo: Effect.Effect<void> = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

interface OutputLimits {
  readonly maxBytes: number
  readonly maxEntries: number
}

/**
 * Records each complete line as it arrives and the unterminated rest at the
 * end. Past `maxBytes` it records the lines complete within the limit and
 * fails, the partial line at the cut not recorded; past `maxEntries` it
 * records that many and fails.
 */
const recordLines = (stdout: Stream.Stream<Uint8Array, PlatformError>, limits: OutputLimits, context: TurnContext) =>
  Effect.suspend(() => {
    const splitter = makeLineSplitter()
    let seen = 0
    let recorded = 0
    let sliceStart = performance.now()
    /** Yields to I/O once this slice of ingest has run long enough. */
    const pace = Effect.suspend(() => {
      if (performance.now() - sliceStart < INGEST_SLICE_MS) return Effect.void
      return Effect.zipRight(yieldToIo, Effect.sync(() => (sliceStart = performance.now())))
    })
    const tooMany = new TurnFailed({
      message: `output exceeded maxOutputEntries (${limits.maxEntries} entries); the process was stopped`
    })
    const tooLarge = new TurnFailed({
      message: `output exceeded maxOutputBytes (${limits.maxBytes} bytes); the process was stopped`
    })
    const record = (lines: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        for (const raw of lines) {
          const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw
          if (line === "") continue
          if (recorded === limits.maxEntries) return yield* tooMany
          recorded++
          yield* context.emit(line)
          if (recorded % LINES_PER_CHECK === 0) yield* pace
        }
        yield* pace
      })
    return stdout.pipe(
      Stream.mapError((error) => new TurnFailed({ message: `could not read stdout: ${error.message}` })),
      Stream.runForEach((bytes) => {
        const room = limits.maxBytes - seen
        seen += bytes.length
        const lines = splitter.push(bytes.length <= room ? bytes : bytes.subarray(0, room))
        return bytes.length <= room ? record(lines) : Effect.zipRight(record(lines), Effect.fail(tooLarge))
      }),
      Effect.zipRight(Effect.suspend(() => record(splitter.end())))
    )
  })

const stderrTail = (stderr: Stream.Stream<Uint8Array, PlatformError>) =>
  stderr.pipe(
    Stream.runFold(new Uint8Array(0), (tail, chunk) => {
      if (chunk.length >= STDERR_TAIL_BYTES) return chunk.slice(chunk.length - STDERR_TAIL_BYTES)
      const keep = tail.subarray(Math.max(0, tail.length + chunk.length - STDERR_TAIL_BYTES))
      const next = new Uint8Array(keep.length + chunk.length)
      next.set(keep)
      next.set(chunk, keep.length)
      return next
    }),
    Effect.orElseSucceed(() => new Uint8Array(0)),
    // The cut may split a character: drop the replacement it decodes to.
    Effect.map((bytes) => new TextDecoder().decode(bytes).replace(/^\uFFFD+/, "").trim())
  )

const outcome = (
  exit: Either.Either<CommandExecutor.ExitCode, PlatformError>,
  stderr: string
): Effect.Effect<void, TurnFailed> => {
  if (Either.isRight(exit) && exit.right === 0) return Effect.void
  // The executor reports death by a signal only in its error's text.
  const what = Either.isRight(exit)
    ? `exited with code ${exit.right}`
    : `killed by signal ${/signal: (\w+)/.exec(exit.left.message)?.[1] ?? exit.left.message}`
  return Effect.fail(new TurnFailed(stderr === "" ? { message: what } : { message: what, detail: `stderr: ${stderr}` }))
}

/**
 * Why a command could not start, for people: the platform's own message
 * repeats the command line (with a stray space when it has no arguments).
 */
const whyNot = (error: PlatformError): string => {
  if (error._tag === "BadArgument") return error.description ?? "bad argument"
  const reason = error.reason.replace(/(?<=[a-z])(?=[A-Z])/g, " ").toLowerCase()
  return error.description === undefined ? reason : `${reason} (${error.description})`
}

const runTurn = (
  profile: Omit<ProcessProfile, "engine">,
  graceMs: number,
  runAs: RunAs | undefined,
  context: TurnContext
) =>
  Effect.gen(function*() {
    const input = yield* stdinOf(profile, context)
    const scope = yield* Effect.scope
    // Forked before the process starts so that it closes after the process is
    // dead: a write still pending then fails with EPIPE while someone listens.
    const stdinScope = yield* Scope.fork(scope, ExecutionStrategy.sequential)
    const child = yield* Command.start(commandOf(profile, context, runAs)).pipe(
      Effect.tap((child) => {
        Metrics.childProcesses.unsafeModify(1, [])
        return Effect.addFinalizer(() =>
          Effect.ensuring(
            terminateGroup(child.pid, graceMs),
            Effect.sync(() => Metrics.childProcesses.unsafeModify(-1, []))
          )
        )
      }),
      // Between the spawn and the finalizer nothing may interrupt us.
      Effect.uninterruptible,
      Effect.mapError((error) => new TurnFailed({ message: `could not start ${profile.command[0]}: ${whyNot(error)}` }))
    )
    // A child that never reads stdin is fine: EPIPE is ignored.
    yield* Effect.forkIn(Effect.ignore(Stream.run(Stream.succeed(input), child.stdin)), stdinScope)
    const [, stderr, exit] = yield* Effect.all([
      recordLines(child.stdout, {
        maxBytes: profile.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES,
        maxEntries: profile.maxOutputEntries ?? DEFAULT_MAX_OUTPUT_ENTRIES
      }, context),
      stderrTail(child.stderr),
      // Leftovers of the group would hold stdout open: the turn ends with its command.
      Effect.tap(Effect.either(child.exitCode), () => terminateGroup(child.pid, graceMs))
    ], { concurrency: "unbounded" })
    return yield* outcome(exit, stderr)
  }).pipe(Effect.scoped)

/** The engine of one `process` profile; it runs its children with the `CommandExecutor` in context now. */
export const makeProcessEngine = (
  profile: Omit<ProcessProfile, "engine">,
  options: ProcessEngineOptions = {}
): Effect.Effect<WorkerEngine, never, CommandExecutor.CommandExecutor> =>
  Effect.map(CommandExecutor.CommandExecutor, (executor) => {
    Metrics.childProcesses.unsafeModify(0, [])
    const graceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS
    const timeoutMs = profile.turnTimeoutMs
    return {
      name: "process",
      run: (context) => {
        const turn = runTurn(profile, graceMs, options.runAs, context).pipe(
          Effect.provideService(CommandExecutor.CommandExecutor, executor)
        )
        return timeoutMs === undefined ? turn : Effect.timeoutFail(turn, {
          duration: timeoutMs,
          onTimeout: () => new TurnFailed({ message: `timed out after ${timeoutMs} ms; the process was stopped` })
        })
      }
    }
  })

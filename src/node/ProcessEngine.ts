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
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"

import type { TranscriptEntry } from "../Domain.js"
import * as Metrics from "../Metrics.js"
import { type TurnContext, TurnFailed, TurnOutput, type WorkerEngine } from "../WorkerEngine.js"
import type { ProcessProfile } from "./Profiles.js"
import { stdoutLines } from "./StdoutLines.js"

export const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024
export const DEFAULT_MAX_OUTPUT_ENTRIES = 10_000
export const DEFAULT_KILL_GRACE_MS = 2000
const STDERR_TAIL_BYTES = 4096
const POLL_MS = 20
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
): Stream.Stream<TurnOutput, TurnFailed, CommandExecutor.CommandExecutor> =>
  Stream.unwrapScoped(Effect.gen(function*() {
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
    const stderr = yield* Effect.forkIn(stderrTail(child.stderr), scope)
    // Leftovers of the group would hold stdout open: the turn ends with its command.
    const exit = yield* Effect.forkIn(
      Effect.tap(Effect.either(child.exitCode), () => terminateGroup(child.pid, graceMs)),
      scope
    )
    const stdout = Stream.mapError(
      child.stdout,
      (error) => new TurnFailed({ message: `could not read stdout: ${error.message}` })
    )
    return stdoutLines(stdout, {
      maxBytes: profile.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES,
      maxEntries: profile.maxOutputEntries ?? DEFAULT_MAX_OUTPUT_ENTRIES
    }).pipe(
      Stream.map(TurnOutput.line),
      // Once stdout is done: the exit decides how the turn ends.
      Stream.concat(Stream.execute(
        Effect.flatMap(Effect.zip(Fiber.join(stderr), Fiber.join(exit)), ([tail, code]) => outcome(code, tail))
      ))
    )
  }))

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
          Stream.provideService(CommandExecutor.CommandExecutor, executor)
        )
        // Whatever the turn is doing then (reading, waiting for room): it is interrupted, its process stopped.
        return timeoutMs === undefined ? turn : Stream.interruptWhen(
          turn,
          Effect.zipRight(
            Effect.sleep(timeoutMs),
            Effect.fail(new TurnFailed({ message: `timed out after ${timeoutMs} ms; the process was stopped` }))
          )
        )
      }
    }
  })

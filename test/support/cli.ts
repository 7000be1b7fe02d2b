/** Runs the built bin's subcommands (`worker-runtime info`, ...) as a person would, stdout and stderr apart. */
import { type ChildProcess, spawn } from "node:child_process"
import { spawnSync } from "node:child_process"

import { Effect } from "effect"

import { BIN, cleanEnv } from "./bin.js"
import { eventuallyLive, within } from "./eventually.js"

export interface RunningCli {
  readonly child: ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  /** Resolves with the exit code (or signal name) once the process is gone. */
  readonly exited: Promise<number | string>
}

export interface CliResult {
  readonly code: number | string
  readonly stdout: string
  readonly stderr: string
}

/** The environment a subcommand runs with: the runtime's URL, none of the tester's WORKER_RUNTIME_*. */
export const cliEnv = (url: string, extra: Record<string, string> = {}) =>
  cleanEnv({ WORKER_RUNTIME_URL: url, ...extra })

const spawnWith = (command: string, args: ReadonlyArray<string>, env: Record<string, string>): RunningCli => {
  const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] })
  let stdout = ""
  let stderr = ""
  child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<number | string>((resolve) =>
    child.once("close", (code, signal) => resolve(code ?? signal ?? "unknown"))
  )
  return { child, stdout: () => stdout, stderr: () => stderr, exited }
}

const gone = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null

const killed = (running: RunningCli) =>
  Effect.promise(async () => {
    if (!gone(running.child)) {
      running.child.kill("SIGKILL")
      await running.exited
    }
  })

/** Starts `worker-runtime <args>`; the scope's end kills it if it still runs. */
export const startCli = (args: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.acquireRelease(Effect.sync(() => spawnWith(process.execPath, [BIN, ...args], env)), killed)

/** Its exit code and output, once it has exited; only a hang makes the test give up. */
export const resultOf = (running: RunningCli) =>
  Effect.promise(() => running.exited).pipe(
    within(() => `the subcommand exiting; stdout:\n${running.stdout()}\nstderr:\n${running.stderr()}`),
    Effect.map((code): CliResult => ({ code, stdout: running.stdout(), stderr: running.stderr() }))
  )

/** Runs `worker-runtime <args>` to its end. */
export const runCli = (args: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.scoped(Effect.flatMap(startCli(args, env), resultOf))

/** Waits until the running subcommand's stdout holds `text`. */
export const waitForStdout = (running: RunningCli, text: string) =>
  eventuallyLive(
    Effect.sync(() => running.stdout()),
    (stdout) => stdout.includes(text),
    () => `${JSON.stringify(text)} on stdout; stdout:\n${running.stdout()}\nstderr:\n${running.stderr()}`
  )

/** util-linux `script`, which runs a command in a pseudo-terminal, when installed. */
export const hasScript = spawnSync("script", ["--version"], { stdio: "ignore" }).status === 0

const quote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`

/**
 * Runs `worker-runtime <args>` in a pseudo-terminal (`script -qfec`), with
 * `redirect` (e.g. `2>/dev/null`) applied inside it: the result's stdout is
 * what the terminal showed.
 */
export const runCliInTerminal = (args: ReadonlyArray<string>, env: Record<string, string>, redirect: string) =>
  Effect.scoped(
    Effect.flatMap(
      Effect.acquireRelease(
        Effect.sync(() =>
          spawnWith(
            "script",
            ["-qfec", [process.execPath, BIN, ...args].map(quote).join(" ") + ` ${redirect}`, "/dev/null"],
            env
          )
        ),
        killed
      ),
      resultOf
    )
  )

/** Runs the built bin as a child process, as an operator would. */
import { type ChildProcess, spawn } from "node:child_process"
import { join } from "node:path"

import { Effect } from "effect"

import { eventuallyLive, HANG_MS, within } from "./eventually.js"
import { projectRoot } from "./packed.js"

export const BIN = join(projectRoot, "dist", "node", "main.js")

export interface RunningBin {
  readonly child: ChildProcess
  readonly url: string
  readonly output: () => string
  /** Resolves with the exit code (or signal name) once the process is gone. */
  readonly exited: Promise<number | string>
}

/** Environment without the runtime's own variables, so tests decide them. */
export const cleanEnv = (extra: Record<string, string> = {}): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith("WORKER_RUNTIME_")) env[key] = value
  }
  return { ...env, ...extra }
}

const spawnBin = (args: ReadonlyArray<string>, env: Record<string, string>) => {
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ["ignore", "pipe", "pipe"] })
  let output = ""
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()))
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()))
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown"))
  )
  return { child, output: () => output, exited }
}

const gone = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null

/** Kills the bin unless it is gone already, and waits until it is. */
const kill = (running: ReturnType<typeof spawnBin>) =>
  Effect.promise(async () => {
    if (!gone(running.child)) {
      running.child.kill("SIGKILL")
      await running.exited
    }
  })

/** Runs the bin to completion (start-up failures, `--help`); only a hang makes it give up. */
export const runBin = (args: ReadonlyArray<string>, env = cleanEnv()) =>
  Effect.acquireUseRelease(
    Effect.sync(() => spawnBin(args, env)),
    (running) =>
      Effect.promise(() => running.exited).pipe(
        within(() => `the bin exiting; its output:\n${running.output()}`),
        Effect.map((code) => ({ code, output: running.output() }))
      ),
    kill
  )

const listeningUrl = (output: string): string | undefined => /listening on (http:\/\/[^\s"]+)/.exec(output)?.[1]

/**
 * Starts the bin (on a free port unless `args` name one) and waits for it to listen;
 * the scope's end kills it if the test did not stop it itself.
 */
export const startBin = (args: ReadonlyArray<string>, env = cleanEnv()) =>
  Effect.gen(function*() {
    const port = args.includes("--port") ? [] : ["--port", "0"]
    const running = yield* Effect.acquireRelease(Effect.sync(() => spawnBin([...port, ...args], env)), kill)
    const url = yield* eventuallyLive(
      Effect.sync(() => listeningUrl(running.output())),
      (url) => url !== undefined || gone(running.child),
      () => `the bin listening; its output:\n${running.output()}`
    )
    if (url === undefined) return yield* Effect.dieMessage(`the bin did not start:\n${running.output()}`)
    return { ...running, url } satisfies RunningBin
  })

/** The bin's exit code (or signal name), once it has exited: within `withinMs`, or the test fails. */
export const exitOf = (bin: RunningBin, withinMs = HANG_MS) =>
  Effect.promise(() => bin.exited).pipe(within("the bin exiting", withinMs))

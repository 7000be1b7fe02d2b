/** Runs the built bin as a child process, as an operator would. */
import { type ChildProcess, spawn } from "node:child_process"
import { join } from "node:path"

import { Effect } from "effect"

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

/** Runs the bin to completion (for start-up failures and `--help`). */
export const runBin = (args: ReadonlyArray<string>, env = cleanEnv()) =>
  Effect.promise(async () => {
    const { exited, output } = spawnBin(args, env)
    const code = await exited
    return { code, output: output() }
  })

/**
 * Starts the bin on a free port and waits for it to listen; the scope's end
 * kills it if the test did not stop it itself.
 */
export const startBin = (args: ReadonlyArray<string>, env = cleanEnv()) =>
  Effect.acquireRelease(
    Effect.promise(async (): Promise<RunningBin> => {
      const running = spawnBin(["--port", "0", ...args], env)
      const deadline = Date.now() + 30_000
      for (;;) {
        const match = /listening on (http:\/\/[^\s"]+)/.exec(running.output())
        if (match?.[1] !== undefined) return { ...running, url: match[1] }
        if (running.child.exitCode !== null || Date.now() > deadline) {
          throw new Error(`the bin did not start:\n${running.output()}`)
        }
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    }),
    (running) =>
      Effect.promise(async () => {
        if (running.child.exitCode === null && running.child.signalCode === null) {
          running.child.kill("SIGKILL")
          await running.exited
        }
      })
  )

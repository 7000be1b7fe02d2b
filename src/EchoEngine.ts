/** The `echo` engine: after `delayMs`, one `worker` entry equal to the input. */
import * as Effect from "effect/Effect"

import type { WorkerEngine } from "./WorkerEngine.js"

export interface EchoOptions {
  readonly delayMs?: number
}

export const makeEchoEngine = (options: EchoOptions = {}): WorkerEngine => {
  const delayMs = Math.max(0, options.delayMs ?? 0)
  return {
    name: "echo",
    run: delayMs === 0
      ? (context) => Effect.succeed([context.input.content])
      : (context) => Effect.as(Effect.sleep(delayMs), [context.input.content])
  }
}

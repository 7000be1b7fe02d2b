/** The `echo` engine: after `delayMs`, one `worker` entry equal to the input. */
import * as Effect from "effect/Effect"
import { outputAtOnce, outputNow, TurnOutput, type WorkerEngine } from "./WorkerEngine.js"

export interface EchoOptions {
  readonly delayMs?: number
}

export const makeEchoEngine = (options: EchoOptions = {}): WorkerEngine => {
  const delayMs = Math.max(0, options.delayMs ?? 0)
  return {
    name: "echo",
    run: delayMs === 0
      ? (context) => outputNow([TurnOutput.line(context.input.content)])
      : (context) => outputAtOnce(Effect.as(Effect.sleep(delayMs), [TurnOutput.line(context.input.content)]))
  }
}

/**
 * Whether a Worker can take an input or a cancel now, in docs/rest.md's order of
 * precedence (Unsupported before Busy). Pure: `RuntimeLive` asks before and
 * again under the Worker's lock.
 */
import * as Effect from "effect/Effect"

import type { InputKind, Worker } from "./Domain.js"
import { Busy, Unsupported } from "./Errors.js"
import type { WorkerEngine } from "./WorkerEngine.js"

/** The engine to run the turn, or why the input is refused. */
export const admitInput = (
  worker: Worker,
  engine: WorkerEngine | undefined,
  kind: InputKind
): Effect.Effect<WorkerEngine, Unsupported | Busy> => {
  if (worker.status === "stopped" || worker.status === "failed") {
    return Effect.fail(
      new Unsupported({ operation: "input", workerId: worker.id, message: `Worker ${worker.id} is ${worker.status}` })
    )
  }
  if (engine === undefined) {
    return Effect.fail(
      new Unsupported({
        operation: "input",
        workerId: worker.id,
        message: `profile ${JSON.stringify(worker.profile)} is no longer configured`
      })
    )
  }
  if (engine.kinds !== undefined && !engine.kinds.includes(kind)) {
    return Effect.fail(
      new Unsupported({
        operation: `input:${kind}`,
        workerId: worker.id,
        message: `the ${engine.name} engine does not take ${kind} input`
      })
    )
  }
  if (worker.status === "busy") {
    return Effect.fail(
      new Busy({ workerId: worker.id, turn: worker.turn, message: `Worker ${worker.id} has a turn in flight` })
    )
  }
  return Effect.succeed(engine)
}

/** Why a cancel is refused, if it is. */
export const refuseCancel = (worker: Worker, engine: WorkerEngine | undefined): Unsupported | undefined => {
  if (worker.status === "stopped" || worker.status === "failed") {
    return new Unsupported({
      operation: "cancel",
      workerId: worker.id,
      message: `Worker ${worker.id} is ${worker.status}`
    })
  }
  if (engine?.cancellable === false) {
    return new Unsupported({
      operation: "cancel",
      workerId: worker.id,
      message: `the ${engine.name} engine cannot cancel a turn`
    })
  }
  return undefined
}

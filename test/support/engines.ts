/** Engines the behavioural suite configures, one per behaviour it needs to provoke. */
import { Effect } from "effect"
import { makeEchoEngine, type Profiles, TurnFailed } from "../../src/index.js"

export const SLOW_MS = 1000

export const suiteProfiles: Profiles = {
  default: makeEchoEngine(),
  slow: makeEchoEngine({ delayMs: SLOW_MS }),
  chatty: {
    name: "chatty",
    run: (context) =>
      Effect.gen(function*() {
        yield* context.emit(`one:${context.input.content}`)
        yield* context.emit(`two:${context.input.kind}`)
        return [`three:${context.turn}`]
      })
  },
  failing: {
    name: "failing",
    run: (context) =>
      Effect.zipRight(context.emit("partial"), Effect.fail(new TurnFailed({ message: "boom" })))
  },
  fatal: {
    name: "fatal",
    run: () => Effect.fail(new TurnFailed({ message: "cannot continue", fatal: true }))
  },
  defect: {
    name: "defect",
    run: () => Effect.die(new Error("engine bug"))
  },
  userOnly: { ...makeEchoEngine(), name: "user-only", kinds: ["user"] },
  uncancellable: { ...makeEchoEngine({ delayMs: SLOW_MS }), name: "uncancellable", cancellable: false }
}

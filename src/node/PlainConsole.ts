/** The console the bin prints through: without colour codes when they go to a pipe or a file. */
import * as Effect from "effect/Effect"
import { stripVTControlCharacters } from "node:util"

/** Text for `stream` as it should appear there: without ANSI styles unless it is a terminal (and NO_COLOR is unset). */
const plainUnlessTerminal = (stream: NodeJS.WriteStream) => (args: ReadonlyArray<unknown>) =>
  stream.isTTY && !process.env["NO_COLOR"]
    ? args
    : args.map((arg) => (typeof arg === "string" ? stripVTControlCharacters(arg) : arg))

/** `effect` with a console (@effect/cli prints help and errors to it) that strips styles off a pipe. */
export const withPlainConsole = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.consoleWith((console) => {
    const toStdout = plainUnlessTerminal(process.stdout)
    const toStderr = plainUnlessTerminal(process.stderr)
    return Effect.withConsole(effect, {
      ...console,
      log: (...args) => console.log(...toStdout(args)),
      info: (...args) => console.info(...toStdout(args)),
      debug: (...args) => console.debug(...toStdout(args)),
      error: (...args) => console.error(...toStderr(args)),
      warn: (...args) => console.warn(...toStderr(args))
    })
  })

/**
 * `worker-runtime <command> ...`: the subcommands that drive a running
 * runtime (CliCommands.ts), their help pages, and their exit codes
 * (docs/cli.md): 0 success, 1 a followed turn failed, 2 bad usage, 3 an
 * error answer, 130 interrupted or a followed turn cancelled.
 */
import * as Args from "@effect/cli/Args"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Ref from "effect/Ref"

import { RuntimeMisconfigured } from "../http/Errors.js"
import { ExitCode, type Subcommand, subcommands } from "./CliCommands.js"
import { flagHelp, renderHelp } from "./Help.js"
import { withPlainConsole } from "./PlainConsole.js"

const NAME = "worker-runtime"

export const EXIT = { ok: 0, failed: 1, usage: 2, error: 3, interrupted: 130 } as const

/** The subcommand named `name`, if there is one. */
export const subcommandNamed = (name: string): Subcommand | undefined =>
  subcommands.find((subcommand) => subcommand.name === name)

export const subcommandNames = subcommands.map(({ name }) => name)

/** A subcommand's `--help`: its arguments, its flags, an example; nothing of @effect/cli's own. */
const helpOf = (subcommand: Subcommand): string =>
  renderHelp({
    name: `${NAME} ${subcommand.name}`,
    description: subcommand.description,
    usage: subcommand.usage,
    options: [
      { title: "ARGUMENTS", flags: flagHelp(Args.getHelp(subcommand.args)) },
      { title: "OPTIONS", flags: flagHelp(Options.getHelp(subcommand.options)) }
    ].filter(({ flags }) => flags.length > 0),
    notes: [{ title: "EXAMPLE", text: subcommand.example }]
  })

/** `<_tag>: <message>`, one line. */
const oneLine = (tag: string, message: string) => `${tag}: ${message.replace(/\s*\n\s*/g, " ")}`

/** The tag and message of an error the runtime answered (or the client raised for it). */
const tagged = (error: unknown): Option.Option<{ readonly tag: string; readonly message: string }> =>
  Predicate.hasProperty(error, "_tag") && typeof error._tag === "string" &&
    Predicate.hasProperty(error, "message") && typeof error.message === "string"
    ? Option.some({ tag: error._tag, message: error.message })
    : Option.none()

/** Runs `subcommand` with `args` (what follows its name): its exit code. */
const runSubcommand = (subcommand: Subcommand, args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const end = args.indexOf("--")
    const own = end === -1 ? args : args.slice(0, end)
    if (own.includes("--help") || own.includes("-h")) {
      yield* Console.log(helpOf(subcommand))
      return EXIT.ok
    }
    const code = yield* Ref.make<number>(EXIT.ok)
    return yield* subcommand.run(["node", NAME, ...args]).pipe(
      Effect.provideService(ExitCode, code),
      Effect.zipRight(Ref.get(code)),
      Effect.catchAll((error) =>
        ValidationError.isValidationError(error)
          // @effect/cli printed why; where to read more is ours to say.
          ? Effect.as(Console.error(`${NAME} ${subcommand.name} --help shows its usage.`), EXIT.usage)
          : error._tag === "CliUsageError"
          ? Effect.as(Console.error(`${NAME}: ${error.message}`), EXIT.usage)
          : Effect.as(Console.error(oneLine(error._tag, error.message)), EXIT.error)
      ),
      // A wrong token, URL or version is a defect of the client (loud), and still an error answer here.
      Effect.catchSomeDefect((defect) =>
        defect instanceof RuntimeMisconfigured
          ? Option.some(Effect.as(Console.error(oneLine(defect._tag, defect.message)), EXIT.error))
          : Option.map(
            tagged(defect),
            ({ message, tag }) => Effect.as(Console.error(oneLine(tag, message)), EXIT.error)
          )
      )
    )
  })

/** The exit code of the program: its value, 130 when interrupted (Ctrl-C), else 1. */
const exitCode = <E, A>(exit: Exit.Exit<A, E>): number =>
  Exit.isSuccess(exit)
    ? typeof exit.value === "number" ? exit.value : EXIT.ok
    : Cause.isInterruptedOnly(exit.cause)
    ? EXIT.interrupted
    : EXIT.failed

/** `worker-runtime <name> <args>` for a known subcommand `name`, or a one-line usage error (2) for another. */
export const runClient = (name: string, args: ReadonlyArray<string>): void => {
  const subcommand = subcommandNamed(name)
  const program = subcommand === undefined
    ? Effect.as(
      Console.error(
        `${NAME}: unknown command ${name}; the commands are serve (the default), ${subcommandNames.join(", ")}`
      ),
      EXIT.usage
    )
    : runSubcommand(subcommand, args)
  program.pipe(
    withPlainConsole,
    Effect.provide(NodeContext.layer),
    NodeRuntime.runMain({
      disableErrorReporting: true,
      disablePrettyLogger: true,
      // Always exits, with the code: an idle keep-alive socket must not hold the process open.
      teardown: (exit, onExit) => {
        onExit(exitCode(exit))
        process.exit(exitCode(exit))
      }
    })
  )
}

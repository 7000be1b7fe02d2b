#!/usr/bin/env node
/** The `worker-runtime` bin: parse flags, start the process, run until SIGTERM/SIGINT. */
// First: V8's settings apply to what is allocated after them.
import "./V8Flags.js"
import * as AutoCorrect from "@effect/cli/AutoCorrect"
import * as BuiltInOptions from "@effect/cli/BuiltInOptions"
import * as CliConfig from "@effect/cli/CliConfig"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as Usage from "@effect/cli/Usage"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"

import { VERSION } from "../version.js"
import { runClient, subcommandNames } from "./CliMain.js"
import { LOG_LEVEL_HELP, logLevelFromEnv, logLevelName, options, resolveConfig, StartupError } from "./Config.js"
import { flagHelp, renderHelp } from "./Help.js"
import { NodeRuntimeLive } from "./NodeRuntime.js"
import { withPlainConsole } from "./PlainConsole.js"

const NAME = "worker-runtime"
const DESCRIPTION = "Hosts long-lived Workers behind a REST command API. Backends only: browsers are refused."
/** The subcommands that drive a running runtime (docs/cli.md), named under the server's own flags. */
const COMMANDS_HELP = `${subcommandNames.join(", ")}; each with --help.`

const command = Command.make(NAME, options, (flags) =>
  Effect.gen(function*() {
    // Validates WORKER_RUNTIME_LOG_LEVEL even when --log-level overrides it: a bad value is a mistake either way.
    yield* logLevelFromEnv
    // @effect/cli's built-in --log-level, else WORKER_RUNTIME_LOG_LEVEL or info (set by `main` below).
    const level = yield* FiberRef.get(FiberRef.currentMinimumLogLevel)
    const config = yield* resolveConfig({ ...flags, logLevel: logLevelName(level) })
    return yield* Layer.launch(NodeRuntimeLive(config)).pipe(
      // A defect (a library's own failure while starting, e.g. the cluster's
      // tables) still ends the process in one readable line, not silently.
      Effect.catchAllDefect((defect) =>
        Effect.fail(
          new StartupError({
            message: `stopped by an unexpected error: ${
              (defect instanceof Error ? defect.message : String(defect)).split("\n")[0]
            }`
          })
        )
      )
    )
  }).pipe(
    Effect.tapError((error) => Console.error(`${NAME}: ${error.message}`))
  )).pipe(
    Command.withDescription(DESCRIPTION)
  )

/** `--help` prints `help` instead: @effect/cli's own help runs to some 200 lines. */
const cli = Command.run(command, { name: NAME, version: VERSION })

/** @effect/cli's built-in flags: `--log-level`, `--help`, `--version`, `--completions`, `--wizard`. */
const builtIns = BuiltInOptions.builtInOptions(command.descriptor, Usage.empty, HelpDoc.empty)

/** What `--help` and `-h` print: each flag in a line or two, from the flags' own descriptions. */
const help = (): string =>
  renderHelp({
    name: NAME,
    version: VERSION,
    // The subcommands under the description: a section of their own would cost the 60 lines two more.
    description: `${DESCRIPTION}\nCommands: ${COMMANDS_HELP}`,
    usage: Command.getUsage(command),
    options: [
      { title: "OPTIONS", flags: flagHelp(Options.getHelp(Options.all(options))) },
      // --wizard (an interactive command builder) works, but is no use to a server.
      {
        title: "BUILT-IN OPTIONS",
        flags: flagHelp(Options.getHelp(builtIns)).filter(({ heading }) => heading !== "--wizard")
      }
    ],
    notes: [
      { title: "LOG LEVEL", text: LOG_LEVEL_HELP }
    ]
  })

interface Flag {
  readonly takesValue: boolean
  /** One of @effect/cli's own: `--log-level`, `--help`, `--version`, ... */
  readonly builtIn: boolean
}

/** Every flag of the command, ours and @effect/cli's built-in ones, by name (`--port`, `-h`). */
const flags = (): ReadonlyMap<string, Flag> => {
  const found = new Map<string, Flag>()
  const walk = (usage: Usage.Usage, builtIn: boolean): void => {
    switch (usage._tag) {
      case "Named":
        for (const name of usage.names) found.set(name, { takesValue: usage.acceptedValues._tag === "Some", builtIn })
        return
      case "Optional":
      case "Repeated":
        return walk(usage.usage, builtIn)
      case "Alternation":
      case "Concat":
        walk(usage.left, builtIn)
        return walk(usage.right, builtIn)
      case "Empty":
      case "Mixed":
        return
    }
  }
  walk(Command.getUsage(command), false)
  walk(Options.getUsage(builtIns), true)
  return found
}

/**
 * A flag no option has, as a one-line message naming the closest flag when
 * @effect/cli's own auto-correction would (edit distance within
 * `autoCorrectLimit`): @effect/cli notices such a near miss only when the
 * parse fails otherwise, and with every flag optional it would just report
 * "Received unknown argument".
 */
const unknownFlag = (flag: string, known: ReadonlyMap<string, Flag>, config: CliConfig.CliConfig): string => {
  const closest = [...known.keys()]
    .map((name) => ({ name, distance: AutoCorrect.levensteinDistance(flag, name, config) }))
    .filter(({ distance, name }) =>
      distance <= config.autoCorrectLimit && name.replace(/^-+/, "").length > config.autoCorrectLimit + 1
    )
    .sort((a, b) => a.distance - b.distance)[0]
  return closest === undefined
    ? `unknown flag ${flag}; ${NAME} --help lists the flags`
    : `unknown flag ${flag}; did you mean ${closest.name}?`
}

/**
 * The arguments as @effect/cli 0.77 can parse them: its built-in flags
 * (`--log-level`, `--help`, ...) first, since it looks for them only before
 * the command's own (`--port 0 --log-level debug` would be "Received unknown
 * argument: '--log-level'"), then the others; or, for a flag no option has,
 * why not.
 */
const arrange = (
  args: ReadonlyArray<string>,
  config = CliConfig.defaultConfig
): Either.Either<{ readonly builtIns: ReadonlyArray<string>; readonly rest: ReadonlyArray<string> }, string> => {
  const known = flags()
  const byName = new Map([...known].map(([name, flag]) => [CliConfig.normalizeCase(config, name), flag]))
  const builtIns: Array<string> = []
  const rest: Array<string> = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === "--") {
      rest.push(...args.slice(i))
      break
    }
    // As @effect/cli reads `--flag` and `--flag=value`; other arguments (`-h`, values) are its to judge.
    const [, name = arg, inline] = /^(--[^=]+)(?:=(.+))?$/.exec(arg) ?? []
    const flag = byName.get(CliConfig.normalizeCase(config, name))
    if (flag === undefined && arg.startsWith("--")) return Either.left(unknownFlag(name, known, config))
    const taken = flag?.takesValue === true && inline === undefined ? args.slice(i, i + 2) : [arg]
    i += taken.length - 1
    ;(flag?.builtIn === true ? builtIns : rest).push(...taken)
  }
  return Either.right({ builtIns, rest })
}

/** Serves with `given`, the flags after the bin's name (and after `serve`). */
const serve = (given: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const [runtime = "node", script = NAME] = process.argv
    const args = arrange(given)
    if (Either.isLeft(args)) {
      yield* Console.error(`${NAME}: ${args.left}`)
      return yield* new StartupError({ message: args.left })
    }
    const { builtIns, rest } = args.right
    // --help is answered here, compactly (Help.ts); the other built-in flags by @effect/cli.
    if (builtIns.some((arg) => arg === "--help" || arg === "-h")) return yield* Console.log(help())
    // A bad WORKER_RUNTIME_LOG_LEVEL fails in the handler, so that --help and --version still work.
    const level = yield* Effect.orElseSucceed(logLevelFromEnv, () => LogLevel.Info)
    yield* cli([runtime, script, ...builtIns, ...rest]).pipe(Logger.withMinimumLogLevel(level))
  })

const [first, ...after] = process.argv.slice(2)
// A first argument that is not a flag names a subcommand (docs/cli.md): the server takes flags only.
if (first !== undefined && !first.startsWith("-") && first !== "serve") {
  runClient(first, after)
} else {
  serve(first === "serve" ? after : process.argv.slice(2)).pipe(
    withPlainConsole,
    Effect.provide(NodeContext.layer),
    // The process picks its own logger (--log-format): runMain installs none.
    NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
  )
}

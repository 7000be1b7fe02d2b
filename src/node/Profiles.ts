/**
 * The operator's profiles file (`--profiles`): profile name to engine
 * configuration. It is the only place a command is chosen; API callers name a
 * profile and nothing else. Checked for shape at start, one profile at a time,
 * so an error names the profile at fault.
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { execFileSync } from "node:child_process"

import { makeEchoEngine } from "../EchoEngine.js"
import type { Profiles, WorkerEngine } from "../WorkerEngine.js"
import { makeProcessEngine, type ProcessEngineOptions, type RunAs } from "./ProcessEngine.js"

/** Unknown fields are errors, so a typo in the file is caught at start. */
const strict = { parseOptions: { onExcessProperty: "error" } } as const

// The longest delay a Node timer takes.
const MAX_TIMER_MS = 2 ** 31 - 1

// JSON has no undefined: an absent field is the only way to leave one out.
const optional = <S extends Schema.Schema.Any>(schema: S) => Schema.optionalWith(schema, { exact: true })

const NoNul = Schema.String.pipe(
  Schema.filter((value) => !value.includes("\0") || "must not contain NUL characters")
)
const NonEmpty = NoNul.pipe(Schema.minLength(1, { message: () => "must not be empty" }))

/** Set by the Runtime for every turn; a profile cannot override them or name the runtime's own variables. */
export const RESERVED_ENV = ["WORKER_ID", "WORKER_TURN", "WORKER_INPUT_KIND", "RUNTIME_ID"] as const

const envNameProblem = (name: string): string | undefined =>
  name === "" || name.includes("=") || name.includes("\0")
    ? `${JSON.stringify(name)} is not a valid variable name`
    : RESERVED_ENV.some((reserved) => reserved === name) || name.startsWith("WORKER_RUNTIME_")
    ? `${name} is reserved for the Runtime`
    : undefined

// Names are checked as a whole: a failing key schema would read as "unexpected".
const Env = Schema.Record({ key: Schema.String, value: NoNul }).pipe(
  Schema.filter((env) => {
    const problems = Object.keys(env).flatMap((name) => envNameProblem(name) ?? [])
    return problems.length === 0 || problems.join(", ")
  })
)

export const EchoProfile = Schema.Struct({
  engine: Schema.Literal("echo"),
  delayMs: optional(Schema.Int.pipe(Schema.between(0, MAX_TIMER_MS)))
}).annotations({ identifier: "EchoProfile", ...strict })
export type EchoProfile = typeof EchoProfile.Type

export const ProcessProfile = Schema.Struct({
  engine: Schema.Literal("process"),
  /** argv, run without a shell. */
  command: Schema.NonEmptyArray(NonEmpty).annotations({
    message: () => "must be an argv array: the executable, then its arguments, as non-empty strings"
  }),
  cwd: optional(NonEmpty),
  env: optional(Env),
  /** What the child reads on stdin: the input's content (default) or the transcript as JSON lines. */
  input: optional(Schema.Literal("content", "transcript")),
  turnTimeoutMs: optional(Schema.Int.pipe(Schema.between(1, MAX_TIMER_MS))),
  /** stdout bytes a turn may produce (default 1 MiB). */
  maxOutputBytes: optional(Schema.Int.pipe(Schema.positive())),
  /** stdout lines (entries) a turn may produce (default 10,000). */
  maxOutputEntries: optional(Schema.Int.pipe(Schema.positive())),
  /** The user the child runs as (name or id); the runtime must run as root. */
  user: optional(NonEmpty),
  /** The child's group (name or id), with `user`; default: the user's primary group. */
  group: optional(NonEmpty)
}).pipe(
  Schema.filter((profile) => profile.group === undefined || profile.user !== undefined || "group needs user")
).annotations({ identifier: "ProcessProfile", ...strict })
export type ProcessProfile = typeof ProcessProfile.Type

const HttpUrl = Schema.String.pipe(
  Schema.filter((value) => {
    try {
      const url = new URL(value)
      return url.protocol === "http:" || url.protocol === "https:" || "must be an http:// or https:// URL"
    } catch {
      return "must be an http:// or https:// URL"
    }
  })
)

/** A model profile's fields (docs/engines.md); the engine itself is loaded only when a profile uses it. */
const modelFields = {
  model: NonEmpty,
  apiUrl: optional(HttpUrl),
  /** The variable holding the key; it must be set when the runtime starts. */
  apiKeyEnv: optional(
    NonEmpty.pipe(
      Schema.filter((name) => !name.includes("=") || `${JSON.stringify(name)} is not a valid variable name`)
    )
  ),
  instructions: optional(Schema.String),
  maxOutputTokens: optional(Schema.Int.pipe(Schema.positive())),
  temperature: optional(Schema.Number.pipe(Schema.finite(), Schema.nonNegative())),
  timeoutMs: optional(Schema.Int.pipe(Schema.between(1, MAX_TIMER_MS))),
  maxRetries: optional(Schema.Int.pipe(Schema.nonNegative()))
}

export const OpenAiProfile = Schema.Struct({ engine: Schema.Literal("openai"), ...modelFields })
  .annotations({ identifier: "OpenAiProfile", ...strict })
export type OpenAiProfile = typeof OpenAiProfile.Type

export const AnthropicProfile = Schema.Struct({ engine: Schema.Literal("anthropic"), ...modelFields })
  .annotations({ identifier: "AnthropicProfile", ...strict })
export type AnthropicProfile = typeof AnthropicProfile.Type

export type ModelProfile = OpenAiProfile | AnthropicProfile

export const ProfileConfig = Schema.Union(EchoProfile, ProcessProfile, OpenAiProfile, AnthropicProfile)
  .annotations({ identifier: "ProfileConfig" })
export type ProfileConfig = typeof ProfileConfig.Type

export const ProfileName = Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9._-]+$/)).annotations({
  identifier: "ProfileName",
  description: "Letters, digits, '.', '_' and '-'"
})

/** A checked profiles file. */
export type ProfileConfigs = Readonly<Record<string, ProfileConfig>>

export class ProfilesError extends Schema.TaggedError<ProfilesError>()("ProfilesError", {
  message: Schema.String,
  /** The profile at fault, when one is. */
  profile: Schema.optional(Schema.String)
}) {}

/** What the Runtime serves when no profiles file is given. */
export const DEFAULT_PROFILES: ProfileConfigs = { default: { engine: "echo" } }

const decodeWith = <A extends ProfileConfig, I>(schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknown(schema, { errors: "all", onExcessProperty: "error" })
  return (value: unknown): Effect.Effect<ProfileConfig, string> => Effect.mapError(decode(value), describeIssues)
}

const ENGINES = {
  echo: decodeWith(EchoProfile),
  process: decodeWith(ProcessProfile),
  openai: decodeWith(OpenAiProfile),
  anthropic: decodeWith(AnthropicProfile)
}
const ENGINE_NAMES = Object.keys(ENGINES).map((name) => JSON.stringify(name)).join(", ")

const isEngine = (name: unknown): name is keyof typeof ENGINES =>
  typeof name === "string" && Object.prototype.hasOwnProperty.call(ENGINES, name)

/** By its engine's schema, so that an error names the field at fault rather than every engine's. */
const decodeProfile = (value: Readonly<Record<string, unknown>>): Effect.Effect<ProfileConfig, string> => {
  const engine = value.engine
  if (!isEngine(engine)) {
    return Effect.fail(
      engine === undefined
        ? `engine: is missing (one of ${ENGINE_NAMES})`
        : `engine: ${JSON.stringify(engine)} is not one of ${ENGINE_NAMES}`
    )
  }
  return ENGINES[engine](value)
}

const describeIssues = (error: ParseResult.ParseError) =>
  ParseResult.ArrayFormatter.formatErrorSync(error)
    .map(({ message, path }) => (path.length === 0 ? message : `${path.map(String).join(".")}: ${message}`))
    .join("; ")

const isRecord = (json: unknown): json is Readonly<Record<string, unknown>> =>
  typeof json === "object" && json !== null && !Array.isArray(json)

/** Checks the parsed JSON of a profiles file. */
export const parseProfiles = (json: unknown): Effect.Effect<ProfileConfigs, ProfilesError> =>
  Effect.gen(function*() {
    if (!isRecord(json)) {
      return yield* new ProfilesError({ message: "profiles must be a JSON object of profile name to profile" })
    }
    const entries = Object.entries(json)
    if (entries.length === 0) return yield* new ProfilesError({ message: "no profiles are defined" })
    const checked: Array<readonly [string, ProfileConfig]> = []
    for (const [name, value] of entries) {
      if (!Schema.is(ProfileName)(name)) {
        return yield* new ProfilesError({
          profile: name,
          message: `profile name ${JSON.stringify(name)} must be letters, digits, '.', '_' or '-'`
        })
      }
      if (!isRecord(value)) {
        return yield* new ProfilesError({
          profile: name,
          message: `profile ${JSON.stringify(name)} must be an object with "engine": one of ${ENGINE_NAMES}`
        })
      }
      const config = yield* decodeProfile(value).pipe(
        Effect.mapError((issues) =>
          new ProfilesError({ profile: name, message: `profile ${JSON.stringify(name)}: ${issues}` })
        )
      )
      checked.push([name, config])
    }
    // fromEntries defines own properties, so a name like "__proto__" stays a plain key.
    return Object.fromEntries(checked)
  })

const decodeJson = Schema.decodeUnknown(Schema.parseJson())

/** Reads and checks a profiles file; every error names the file. */
export const loadProfilesFile = (
  path: string
): Effect.Effect<ProfileConfigs, ProfilesError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(path).pipe(
      Effect.mapError((error) => new ProfilesError({ message: `cannot read profiles file ${path}: ${error.message}` }))
    )
    const json = yield* decodeJson(text).pipe(
      Effect.mapError((error) =>
        new ProfilesError({ message: `profiles file ${path} is not valid JSON: ${describeIssues(error)}` })
      )
    )
    return yield* parseProfiles(json).pipe(
      Effect.mapError((error) => new ProfilesError({ profile: error.profile, message: `${path}: ${error.message}` }))
    )
  })

/** Numeric ids of a user name or id, through `id` (the system's own lookup, NSS included). */
const lookupId = (flag: "-u" | "-g", name: string): number | undefined => {
  try {
    const id = Number(
      execFileSync("id", [flag, name], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim()
    )
    return Number.isInteger(id) ? id : undefined
  } catch {
    return undefined
  }
}

const groupId = (name: string): number | undefined => {
  if (/^[0-9]+$/.test(name)) return Number(name)
  try {
    const line = execFileSync("getent", ["group", name], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })
    const id = Number(line.split(":")[2])
    return Number.isInteger(id) ? id : undefined
  } catch {
    return undefined
  }
}

/** The uid and gid a profile's children run as, checked at start; undefined when it names no user. */
const runAsOf = (name: string, config: ProcessProfile): Effect.Effect<RunAs | undefined, ProfilesError> =>
  Effect.suspend(() => {
    if (config.user === undefined) return Effect.succeed(undefined)
    const fail = (message: string) => Effect.fail(new ProfilesError({ profile: name, message }))
    if (process.getuid?.() !== 0) {
      return fail(`profile ${JSON.stringify(name)} sets user: switching users needs the runtime to run as root`)
    }
    const uid = lookupId("-u", config.user)
    if (uid === undefined) return fail(`profile ${JSON.stringify(name)}: no user ${JSON.stringify(config.user)}`)
    const gid = config.group === undefined ? lookupId("-g", config.user) : groupId(config.group)
    if (gid === undefined) {
      return fail(`profile ${JSON.stringify(name)}: no group ${JSON.stringify(config.group ?? config.user)}`)
    }
    return Effect.succeed({ uid, gid })
  })

/** Where `buildEngines` reads the variables model profiles name (default: the process's environment). */
export interface EngineOptions extends ProcessEngineOptions {
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
}

/**
 * A model profile's engine. Its packages are imported only now, so that the
 * runtime runs without them when no profile names a model engine.
 */
const modelEngineOf = (
  name: string,
  config: ModelProfile,
  env: Readonly<Record<string, string | undefined>>
): Effect.Effect<WorkerEngine, ProfilesError> =>
  Effect.gen(function*() {
    const fail = (message: string) =>
      new ProfilesError({ profile: name, message: `profile ${JSON.stringify(name)}: ${message}` })
    let apiKey: Redacted.Redacted | undefined
    if (config.apiKeyEnv !== undefined) {
      const value = env[config.apiKeyEnv]
      if (value === undefined || value === "") {
        return yield* fail(`apiKeyEnv: the variable ${config.apiKeyEnv} is not set`)
      }
      apiKey = Redacted.make(value)
    }
    const options = {
      model: config.model,
      apiUrl: config.apiUrl,
      apiKey,
      instructions: config.instructions,
      maxOutputTokens: config.maxOutputTokens,
      temperature: config.temperature,
      timeoutMs: config.timeoutMs,
      maxRetries: config.maxRetries
    }
    const packages = config.engine === "openai"
      ? "@effect/ai and @effect/ai-openai"
      : "@effect/ai and @effect/ai-anthropic"
    const loaded = (error: unknown) =>
      fail(
        `engine: ${JSON.stringify(config.engine)} needs ${packages} installed (${
          error instanceof Error ? error.message.split("\n")[0] : String(error)
        })`
      )
    return config.engine === "openai"
      ? yield* Effect.tryPromise({ try: () => import("../ai/OpenAiEngine.js"), catch: loaded }).pipe(
        Effect.map(({ makeOpenAiEngine }) => makeOpenAiEngine(options))
      )
      : yield* Effect.tryPromise({ try: () => import("../ai/AnthropicEngine.js"), catch: loaded }).pipe(
        Effect.map(({ makeAnthropicEngine }) => makeAnthropicEngine(options))
      )
  })

/** The engine one profile describes. */
const engineOf = (
  name: string,
  config: ProfileConfig,
  options: EngineOptions
): Effect.Effect<WorkerEngine, ProfilesError, CommandExecutor.CommandExecutor> => {
  switch (config.engine) {
    case "echo":
      return Effect.succeed(makeEchoEngine(config.delayMs === undefined ? {} : { delayMs: config.delayMs }))
    case "process":
      return Effect.flatMap(runAsOf(name, config), (runAs) => makeProcessEngine(config, { ...options, runAs }))
    case "openai":
    case "anthropic":
      return modelEngineOf(name, config, options.env ?? process.env)
  }
}

/**
 * The engines `RuntimeLive` takes, one per profile. Fails when a profile's
 * `user` cannot be switched to (not root, or no such user or group), when a
 * model profile's key variable is unset, or when its engine's packages are
 * not installed.
 */
export const buildEngines = (
  profiles: ProfileConfigs,
  options: EngineOptions = {}
): Effect.Effect<Profiles, ProfilesError, CommandExecutor.CommandExecutor> =>
  Effect.map(
    Effect.forEach(
      Object.entries(profiles),
      ([name, config]) =>
        Effect.map(engineOf(name, config, options), (engine): readonly [string, WorkerEngine] => [name, engine])
    ),
    Object.fromEntries
  )

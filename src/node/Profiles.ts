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

export const ProfileConfig = Schema.Union(EchoProfile, ProcessProfile).annotations({ identifier: "ProfileConfig" })
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

const decodeProfile = Schema.decodeUnknown(ProfileConfig, { errors: "all", onExcessProperty: "error" })

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
          message: `profile ${JSON.stringify(name)} must be an object with "engine": "echo" or "process"`
        })
      }
      const config = yield* decodeProfile(value).pipe(
        Effect.mapError((error) =>
          new ProfilesError({ profile: name, message: `profile ${JSON.stringify(name)}: ${describeIssues(error)}` })
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

/** The engine one profile describes. */
const engineOf = (
  name: string,
  config: ProfileConfig,
  options: ProcessEngineOptions
): Effect.Effect<WorkerEngine, ProfilesError, CommandExecutor.CommandExecutor> =>
  config.engine === "echo"
    ? Effect.succeed(makeEchoEngine(config.delayMs === undefined ? {} : { delayMs: config.delayMs }))
    : Effect.flatMap(runAsOf(name, config), (runAs) => makeProcessEngine(config, { ...options, runAs }))

/**
 * The engines `RuntimeLive` takes, one per profile. Fails when a profile's
 * `user` cannot be switched to (not root, or no such user or group).
 */
export const buildEngines = (
  profiles: ProfileConfigs,
  options: ProcessEngineOptions = {}
): Effect.Effect<Profiles, ProfilesError, CommandExecutor.CommandExecutor> =>
  Effect.map(
    Effect.forEach(
      Object.entries(profiles),
      ([name, config]) =>
        Effect.map(engineOf(name, config, options), (engine): readonly [string, WorkerEngine] => [name, engine])
    ),
    Object.fromEntries
  )

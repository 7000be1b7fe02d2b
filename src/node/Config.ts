/**
 * The runtime process's configuration: flags (`@effect/cli`, with `--help`)
 * falling back to `WORKER_RUNTIME_*` environment variables, then defaults.
 * `resolveConfig` checks what flags cannot: the store spec, the token, the
 * loopback rule. Every failure is a `StartupError` with a message for humans.
 */
import * as Options from "@effect/cli/Options"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

import { allowsAnyHost } from "../http/Hosts.js"
import { DEFAULT_MAX_STREAMS } from "../http/Server.js"
import { isLoopbackBindHost } from "../Loopback.js"
import { maskUrl, urlProblem } from "../postgres/Url.js"
import {
  DEFAULT_MAX_INPUT_BYTES,
  DEFAULT_MAX_QUEUED_BYTES,
  DEFAULT_MAX_QUEUED_INPUTS,
  DEFAULT_MAX_WORKERS
} from "../RuntimeOptions.js"
import { DEFAULT_MAX_CONNECTIONS } from "./HttpServer.js"

/**
 * `--store-pool-size`: the connections a runtime opens to PostgreSQL, one of
 * which holds its lock (docs/configuration.md); the rest run statements.
 */
export const DEFAULT_STORE_POOL_SIZE = 20
const MIN_STORE_POOL_SIZE = 2

/** The process cannot start as configured; the message says why. */
export class StartupError extends Schema.TaggedError<StartupError>()("StartupError", {
  message: Schema.String
}) {}

export type StoreSpec =
  | { readonly _tag: "memory" }
  | { readonly _tag: "sqlite"; readonly filename: string }
  /** The URL as given: the store checks it, and masks its password wherever it shows it. */
  | { readonly _tag: "postgres"; readonly url: string }

export interface RuntimeConfig {
  readonly host: string
  readonly port: number
  readonly runtimeId: Option.Option<string>
  readonly displayName: Option.Option<string>
  readonly store: StoreSpec
  /** Connections a PostgreSQL store opens at most, its lock's included. */
  readonly storePoolSize: number
  readonly token: Option.Option<Redacted.Redacted<string>>
  readonly profilesPath: Option.Option<string>
  readonly logLevel: LogLevel.LogLevel
  readonly maxWorkers: number
  readonly maxInputBytes: number
  readonly shutdownGraceMs: number
  /** Inputs that may wait per Worker under `ifBusy: enqueue`. */
  readonly maxQueuedInputs: number
  /** Content of the inputs that may wait per Worker, in UTF-8 bytes. */
  readonly maxQueuedBytes: number
  /** Connections open at once; past it, 503 and closed. */
  readonly maxConnections: number
  /** Events streams and long polls held open at once; past it, 503. */
  readonly maxStreams: number
  readonly logFormat: "pretty" | "json"
  /** Traces exported over OTLP/HTTP, from the standard OpenTelemetry variables; none: tracing off. */
  readonly tracing: Option.Option<{ readonly endpoint: string; readonly serviceName: string | undefined }>
  /** Delete Workers stopped or failed longer ago than this (ms); none: never. */
  readonly retainStoppedMs: Option.Option<number>
  /** How long a Worker with nothing to do stays in memory (ms). */
  readonly passivateAfterMs: number
  /** Host names allowed besides loopback names and the bound address; `*` for any. */
  readonly allowedHosts: ReadonlyArray<string>
  /** One runner of a cluster (docs/cluster.md); none: one runtime alone. */
  readonly cluster: Option.Option<ClusterConfig>
}

export interface ClusterConfig {
  /** The PostgreSQL store's URL: the database the runners share, the cluster's tables included. */
  readonly url: string
  /** Where the other runners reach this one, and where it listens for them. */
  readonly runnerHost: string
  readonly runnerPort: number
  /** How long a runner that stopped answering keeps its Workers before the others take them (ms). */
  readonly failureDetectionMs: number
}

/** `WORKER_RUNTIME_FAILURE_DETECTION`: a tuning of the cluster's failover, no flag of its own (docs/cluster.md). */
export const FAILURE_DETECTION_ENV = "WORKER_RUNTIME_FAILURE_DETECTION"
const DEFAULT_FAILURE_DETECTION = "10s"

/** The levels of `--log-level` (@effect/cli's built-in flag) and of WORKER_RUNTIME_LOG_LEVEL. */
const LOG_LEVELS = ["all", "trace", "debug", "info", "warning", "error", "fatal", "none"] as const
type LogLevelName = typeof LOG_LEVELS[number]

const logLevels: Record<LogLevelName, LogLevel.LogLevel> = {
  all: LogLevel.All,
  trace: LogLevel.Trace,
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warning: LogLevel.Warning,
  error: LogLevel.Error,
  fatal: LogLevel.Fatal,
  none: LogLevel.None
}

/** The log level without `--log-level`. */
const DEFAULT_LOG_LEVEL: LogLevelName = "info"

/**
 * `--log-level` is @effect/cli's own built-in flag (one flag, not two): it sets
 * the minimum log level around the command's handler, which reads it back
 * (`FiberRef.currentMinimumLogLevel`). Without the flag the level is this
 * variable's, then `info`: `main` sets it around the whole CLI.
 */
export const LOG_LEVEL_ENV = "WORKER_RUNTIME_LOG_LEVEL"

/** WORKER_RUNTIME_LOG_LEVEL, else `info`; a value that is not a level fails with a message naming the variable. */
export const logLevelFromEnv: Effect.Effect<LogLevel.LogLevel, StartupError> = Config.literal(...LOG_LEVELS)(
  LOG_LEVEL_ENV
).pipe(
  Config.withDefault(DEFAULT_LOG_LEVEL),
  Effect.map((name) => logLevels[name]),
  Effect.mapError(() => new StartupError({ message: `${LOG_LEVEL_ENV} must be one of ${LOG_LEVELS.join(", ")}` }))
)

/** The name `--log-level` takes for `level` (`LogLevel.Warning` is `warning`). */
export const logLevelName = (level: LogLevel.LogLevel): LogLevelName => {
  const name = level._tag.toLowerCase()
  return LOG_LEVELS.find((known) => known === name) ?? DEFAULT_LOG_LEVEL
}

/**
 * What @effect/cli's generic help of `--log-level` leaves out: `main` prints
 * it below the flags (without the flag's name, so help names it once).
 */
export const LOG_LEVEL_HELP =
  `The level falls back to ${LOG_LEVEL_ENV}. Default: ${DEFAULT_LOG_LEVEL}. Debug adds one line per request.`

/**
 * A flag that falls back to `envVar` (read by `read`), then to `fallback`;
 * its help says what it does, the variable, and the default (`shown`).
 */
const withEnvOrDefault = <A, const B extends A>(
  envVar: string,
  read: (name: string) => Config.Config<A>,
  fallback: B,
  description: string,
  shown: string = String(fallback)
) =>
(self: Options.Options<A>): Options.Options<A> =>
  self.pipe(
    Options.withFallbackConfig(read(envVar)),
    Options.withDefault(fallback),
    Options.withDescription(`${description} Env ${envVar}. Default: ${shown}.`)
  )

/**
 * An optional flag that falls back to `envVar` (read by `read`); its help
 * says what it does, the variable, and what happens without either.
 */
const withEnvOrNone = <A>(
  envVar: string,
  read: (name: string) => Config.Config<A>,
  description: string,
  without: string
) =>
(self: Options.Options<A>): Options.Options<Option.Option<A>> =>
  self.pipe(
    Options.withFallbackConfig(read(envVar)),
    Options.optional,
    Options.withDescription(`${description} Env ${envVar}. Without it: ${without}.`)
  )

/** The flags, each with its environment variable as fallback (`--log-level` is @effect/cli's: see above). */
export const options = {
  host: Options.text("host").pipe(
    withEnvOrDefault(
      "WORKER_RUNTIME_HOST",
      Config.string,
      "127.0.0.1",
      "Address to listen on; one that is not loopback needs a token."
    )
  ),
  port: Options.integer("port").pipe(
    withEnvOrDefault("WORKER_RUNTIME_PORT", Config.integer, 8787, "Port to listen on (0: any).")
  ),
  runtimeId: Options.text("runtime-id").pipe(
    withEnvOrNone(
      "WORKER_RUNTIME_ID",
      Config.string,
      "Runtime id.",
      "generated and stored"
    )
  ),
  displayName: Options.text("display-name").pipe(
    withEnvOrNone(
      "WORKER_RUNTIME_NAME",
      Config.string,
      "Name in /v1/runtime.",
      "none"
    )
  ),
  store: Options.text("store").pipe(
    withEnvOrDefault(
      "WORKER_RUNTIME_STORE",
      Config.string,
      "memory",
      "Where Workers and transcripts are kept: memory, sqlite:<path> or postgres://…"
    )
  ),
  storePoolSize: Options.integer("store-pool-size").pipe(
    withEnvOrDefault(
      "WORKER_RUNTIME_STORE_POOL_SIZE",
      Config.integer,
      DEFAULT_STORE_POOL_SIZE,
      "PostgreSQL only: connections opened at most, one of them holding the lock."
    )
  ),
  tokenFile: Options.text("token-file").pipe(
    withEnvOrNone(
      "WORKER_RUNTIME_TOKEN_FILE",
      Config.string,
      "The bearer token's file.",
      "WORKER_RUNTIME_TOKEN, else none (loopback only)"
    )
  ),
  profiles: Options.text("profiles").pipe(
    withEnvOrNone(
      "WORKER_RUNTIME_PROFILES",
      Config.string,
      "JSON file of the profiles to create Workers from.",
      `only "default" (echo engine)`
    )
  ),
  maxWorkers: Options.integer("max-workers").pipe(
    withEnvOrDefault(
      "WORKER_RUNTIME_MAX_WORKERS",
      Config.integer,
      DEFAULT_MAX_WORKERS,
      "Workers not stopped, at once; creating one more is refused."
    )
  ),
  maxInputBytes: Options.integer("max-input-bytes").pipe(
    withEnvOrDefault(
      "WORKER_RUNTIME_MAX_INPUT_BYTES",
      Config.integer,
      DEFAULT_MAX_INPUT_BYTES,
      "Largest input content, in UTF-8 bytes."
    )
  ),
  allowedHosts: Options.text("allowed-hosts").pipe(
    withEnvOrDefault(
      "WORKER_RUNTIME_ALLOWED_HOSTS",
      Config.string,
      "",
      "Host names accepted besides loopback's, comma-separated; * for any (needs a token).",
      "none"
    )
  ),
  maxQueuedInputs: Options.integer("max-queued-inputs").pipe(
    withEnvOrDefault(
      "WORKER_RUNTIME_MAX_QUEUED_INPUTS",
      Config.integer,
      DEFAULT_MAX_QUEUED_INPUTS,
      "Inputs that may wait per Worker under ifBusy: enqueue."
    )
  ),
  maxQueuedBytes: Options.integer("max-queued-bytes").pipe(
    withEnvOrDefault(
      "WORKER_RUNTIME_MAX_QUEUED_BYTES",
      Config.integer,
      DEFAULT_MAX_QUEUED_BYTES,
      "Content of the inputs that may wait per Worker, in UTF-8 bytes."
    )
  ),
  maxConnections: Options.integer("max-connections").pipe(
    withEnvOrDefault(
      "WORKER_RUNTIME_MAX_CONNECTIONS",
      Config.integer,
      DEFAULT_MAX_CONNECTIONS,
      "Connections open at once (below ulimit -n); one more is answered 503 and closed."
    )
  ),
  maxStreams: Options.integer("max-streams").pipe(
    withEnvOrDefault(
      "WORKER_RUNTIME_MAX_STREAMS",
      Config.integer,
      DEFAULT_MAX_STREAMS,
      "Events streams and long polls held open at once; one more is answered 503."
    )
  ),
  logFormat: Options.choice("log-format", ["pretty", "json"] as const).pipe(
    withEnvOrDefault(
      "WORKER_RUNTIME_LOG_FORMAT",
      Config.literal("pretty", "json"),
      "pretty" as const,
      "Log lines for people (pretty) or machines (json: one JSON object a line)."
    )
  ),
  retainStopped: Options.text("retain-stopped").pipe(
    withEnvOrNone(
      "WORKER_RUNTIME_RETAIN_STOPPED",
      Config.string,
      "Delete Workers stopped or failed longer ago than this, e.g. 7d, 12h, 30m.",
      "kept forever"
    )
  ),
  passivateAfter: Options.text("passivate-after").pipe(
    withEnvOrDefault(
      "WORKER_RUNTIME_PASSIVATE_AFTER",
      Config.string,
      "60s",
      "An idle Worker (no turn, queue or follower) leaves memory after this, e.g. 60s."
    )
  ),
  cluster: Options.boolean("cluster").pipe(
    Options.withFallbackConfig(Config.boolean("WORKER_RUNTIME_CLUSTER")),
    Options.withDescription("One runner of a cluster. Env WORKER_RUNTIME_CLUSTER. Default: off.")
  ),
  runnerAddress: Options.text("runner-address").pipe(
    withEnvOrNone(
      "WORKER_RUNTIME_RUNNER_ADDRESS",
      Config.string,
      "Cluster: host:port where the other runners reach this one.",
      "<host>:<port + 1>"
    )
  ),
  shutdownGraceMs: Options.integer("shutdown-grace-ms").pipe(
    withEnvOrDefault(
      "WORKER_RUNTIME_SHUTDOWN_GRACE_MS",
      Config.integer,
      5000,
      "On SIGTERM/SIGINT, how long (ms) turns in flight may run before they are interrupted."
    )
  )
}

/**
 * What the handler gets, one field per flag: derived, so a new flag cannot be
 * forgotten here; plus the log level, which comes from @effect/cli's built-in
 * `--log-level` (or WORKER_RUNTIME_LOG_LEVEL), not from `options`.
 */
export type RawOptions =
  & { readonly [K in keyof typeof options]: OptionValue<typeof options[K]> }
  & { readonly logLevel: LogLevelName }
type OptionValue<O> = O extends Options.Options<infer A> ? A : never

export const parseStore = (spec: string): Effect.Effect<StoreSpec, StartupError> => {
  if (spec === "memory") return Effect.succeed({ _tag: "memory" })
  if (spec.startsWith("sqlite:") && spec.length > "sqlite:".length) {
    return Effect.succeed({ _tag: "sqlite", filename: spec.slice("sqlite:".length) })
  }
  if (/^postgres(ql)?:\/\//i.test(spec)) {
    const problem = urlProblem(spec)
    return problem === undefined
      ? Effect.succeed({ _tag: "postgres", url: spec })
      : Effect.fail(new StartupError({ message: `--store ${maskUrl(spec)}: ${problem}` }))
  }
  return Effect.fail(
    new StartupError({
      message: `--store must be "memory", "sqlite:<path>" or "postgres://…", got ${JSON.stringify(spec)}`
    })
  )
}

/** Loopback addresses (and `localhost`): the only hosts a Runtime without a token may bind. See `Loopback.ts`. */
export const isLoopback: (host: string) => boolean = isLoopbackBindHost

const readToken = (path: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(path).pipe(
      Effect.mapError((error) => new StartupError({ message: `cannot read --token-file ${path}: ${error.message}` }))
    )
    const token = text.trim()
    if (token === "") return yield* new StartupError({ message: `--token-file ${path} is empty` })
    const info = yield* Effect.option(fs.stat(path))
    if (info._tag === "Some" && (info.value.mode & 0o077) !== 0) {
      yield* Effect.logWarning(
        `--token-file ${path} is readable by other users (mode ${(info.value.mode & 0o777).toString(8)}); ` +
          `chmod 600 it`
      )
    }
    return Redacted.make(token)
  })

/** Tokens shorter than this can be guessed; the runtime still starts, with a warning. */
const MIN_TOKEN_BYTES = 16

/** The units `parseDuration` takes, by the names Effect's `Duration` gives them. */
const DURATION_UNITS: Readonly<Record<string, Duration.Unit>> = {
  ms: "millis",
  s: "seconds",
  m: "minutes",
  h: "hours",
  d: "days"
}

/** `7d`, `12h`, `30m`, `45s`, `500ms`: a positive whole number and a unit, as a Duration of a safe integer of ms. */
export const parseDuration = (name: string, text: string): Effect.Effect<Duration.Duration, StartupError> =>
  Option.fromNullable(/^([0-9]+)(ms|s|m|h|d)$/.exec(text.trim())).pipe(
    Option.flatMap(([, amount, unit = ""]) =>
      Option.flatMap(
        Option.fromNullable(DURATION_UNITS[unit]),
        (name) => Duration.decodeUnknown(`${amount} ${name}`)
      )
    ),
    Option.filter((duration) =>
      Duration.greaterThan(duration, Duration.zero) && Number.isSafeInteger(Duration.toMillis(duration))
    ),
    Effect.orElseFail(() =>
      new StartupError({
        message: `--${name} must be a duration such as 7d, 12h, 30m, 45s or 500ms, got ${JSON.stringify(text)}`
      })
    )
  )

const integerAtLeast = (name: string, value: number, min: number) =>
  Number.isInteger(value) && value >= min
    ? Effect.succeed(value)
    : Effect.fail(new StartupError({ message: `--${name} must be an integer >= ${min}, got ${value}` }))

/** `OTEL_EXPORTER_OTLP_ENDPOINT` and `OTEL_SERVICE_NAME`, as every OpenTelemetry SDK reads them. */
const tracingConfig = Effect.gen(function*() {
  const endpoint = yield* Config.option(Config.nonEmptyString("OTEL_EXPORTER_OTLP_ENDPOINT"))
  const serviceName = yield* Config.option(Config.nonEmptyString("OTEL_SERVICE_NAME"))
  return Option.map(endpoint, (url) => ({ endpoint: url, serviceName: Option.getOrUndefined(serviceName) }))
}).pipe(Effect.mapError((error) => new StartupError({ message: `OpenTelemetry configuration: ${String(error)}` })))

/** Checks the flags and reads the token: the full configuration, or why it cannot start. */
export const resolveConfig = (raw: RawOptions): Effect.Effect<RuntimeConfig, StartupError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const store = yield* parseStore(raw.store)
    const envToken = yield* Config.option(Config.redacted("WORKER_RUNTIME_TOKEN")).pipe(
      Effect.mapError((error) => new StartupError({ message: `WORKER_RUNTIME_TOKEN: ${String(error)}` }))
    )
    const token = Option.isSome(raw.tokenFile)
      ? Option.some(yield* readToken(raw.tokenFile.value))
      : Option.flatMap(envToken, (value) => {
        const token = Redacted.value(value).trim()
        return token === "" ? Option.none() : Option.some(Redacted.make(token))
      })
    if (Option.isSome(token) && new TextEncoder().encode(Redacted.value(token.value)).length < MIN_TOKEN_BYTES) {
      yield* Effect.logWarning(
        `the token is shorter than ${MIN_TOKEN_BYTES} bytes and could be guessed; use a long random one ` +
          "(e.g. openssl rand -hex 32)"
      )
    }
    if (Option.isNone(token) && !isLoopback(raw.host)) {
      return yield* new StartupError({
        message:
          `refusing to listen on ${raw.host} without a token: set --token-file (or WORKER_RUNTIME_TOKEN), or listen on a loopback address`
      })
    }
    const allowedHosts = raw.allowedHosts.split(",").map((host) => host.trim()).filter((host) => host !== "")
    if (allowsAnyHost(allowedHosts) && Option.isNone(token)) {
      return yield* new StartupError({
        message: "--allowed-hosts * needs a token: without one, any web page could read this runtime " +
          "through DNS rebinding; set --token-file (or WORKER_RUNTIME_TOKEN), or list the host names"
      })
    }
    if (!Number.isInteger(raw.port) || raw.port < 0 || raw.port > 65535) {
      return yield* new StartupError({ message: `--port must be 0-65535, got ${raw.port}` })
    }
    const cluster = yield* clusterConfig(raw, store)
    return {
      host: raw.host,
      port: raw.port,
      runtimeId: Option.filter(raw.runtimeId, (id) => id !== ""),
      displayName: raw.displayName,
      store,
      storePoolSize: yield* integerAtLeast("store-pool-size", raw.storePoolSize, MIN_STORE_POOL_SIZE),
      token,
      profilesPath: raw.profiles,
      logLevel: logLevels[raw.logLevel],
      maxWorkers: yield* integerAtLeast("max-workers", raw.maxWorkers, 1),
      maxInputBytes: yield* integerAtLeast("max-input-bytes", raw.maxInputBytes, 1),
      shutdownGraceMs: yield* integerAtLeast("shutdown-grace-ms", raw.shutdownGraceMs, 0),
      maxQueuedInputs: yield* integerAtLeast("max-queued-inputs", raw.maxQueuedInputs, 0),
      maxQueuedBytes: yield* integerAtLeast("max-queued-bytes", raw.maxQueuedBytes, 0),
      maxConnections: yield* integerAtLeast("max-connections", raw.maxConnections, 1),
      maxStreams: yield* integerAtLeast("max-streams", raw.maxStreams, 1),
      logFormat: raw.logFormat,
      tracing: yield* tracingConfig,
      retainStoppedMs: Option.isSome(raw.retainStopped)
        ? Option.some(Duration.toMillis(yield* parseDuration("retain-stopped", raw.retainStopped.value)))
        : Option.none(),
      passivateAfterMs: Duration.toMillis(yield* parseDuration("passivate-after", raw.passivateAfter)),
      allowedHosts,
      cluster
    }
  })

/** `host:port`, `[v6]:port`: the host and a port 1-65535. */
const parseAddress = (text: string): Option.Option<{ readonly host: string; readonly port: number }> =>
  Option.flatMap(Option.fromNullable(/^(?:\[([^\]]+)\]|([^:\s]+)):([0-9]{1,5})$/.exec(text.trim())), (match) => {
    const port = Number(match[3])
    const host = match[1] ?? match[2] ?? ""
    return port >= 1 && port <= 65535 && host !== "" ? Option.some({ host, port }) : Option.none()
  })

/** `--cluster`'s settings, checked against the store and the listening address. */
const clusterConfig = (raw: RawOptions, store: StoreSpec): Effect.Effect<Option.Option<ClusterConfig>, StartupError> =>
  Effect.gen(function*() {
    if (!raw.cluster) {
      if (Option.isSome(raw.runnerAddress)) {
        return yield* new StartupError({ message: "--runner-address is for a runner of a cluster: add --cluster" })
      }
      return Option.none()
    }
    if (store._tag !== "postgres") {
      return yield* new StartupError({
        message: `--cluster needs a PostgreSQL store shared by the runners (--store postgres://…), got --store ${
          store._tag === "sqlite" ? "sqlite:…" : store._tag
        }`
      })
    }
    const given = Option.getOrUndefined(raw.runnerAddress)
    const address = given !== undefined
      ? yield* Option.match(parseAddress(given), {
        onNone: () =>
          Effect.fail(
            new StartupError({ message: `--runner-address must be host:port, got ${JSON.stringify(given)}` })
          ),
        onSome: Effect.succeed
      })
      : raw.port === 0 || raw.port === 65535
      ? yield* new StartupError({ message: `--cluster with --port ${raw.port} needs --runner-address host:port` })
      : { host: raw.host, port: raw.port + 1 }
    const detection = yield* Config.string(FAILURE_DETECTION_ENV).pipe(
      Config.withDefault(DEFAULT_FAILURE_DETECTION),
      Effect.mapError(() => new StartupError({ message: `${FAILURE_DETECTION_ENV} must be a duration such as 10s` }))
    )
    const failureDetection = yield* parseDuration("failure-detection", detection).pipe(
      Effect.mapError(() =>
        new StartupError({
          message: `${FAILURE_DETECTION_ENV} must be a duration such as 10s or 3s, got ${JSON.stringify(detection)}`
        })
      )
    )
    return Option.some({
      url: store.url,
      runnerHost: address.host,
      runnerPort: address.port,
      failureDetectionMs: Duration.toMillis(failureDetection)
    })
  })

/**
 * The runtime process as one layer: configuration -> store -> `RuntimeLive`
 * -> HTTP server on Node. On shutdown the Runtime drains first (new work gets
 * `Unavailable`, turns get the grace period, then are interrupted and
 * recorded) while the server still answers; then the server closes; then the
 * store.
 */
import * as NodeCommandExecutor from "@effect/platform-node/NodeCommandExecutor"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as HttpServer from "@effect/platform/HttpServer"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"

import { RuntimeHttpServerLive } from "../http/Server.js"
import { MemoryStoreLive } from "../MemoryStore.js"
import { Runtime } from "../Runtime.js"
import { RuntimeControl } from "../RuntimeControl.js"
import { RuntimeFromStore } from "../RuntimeLive.js"
import type { RuntimeOptions } from "../RuntimeOptions.js"
import { RuntimeStore } from "../RuntimeStore.js"
import { type ClusterConfig, type RuntimeConfig, StartupError, type StoreSpec } from "./Config.js"
import { RuntimeNodeHttpServerLive } from "./HttpServer.js"
import type { Prometheus, TracingConfig } from "./Observability.js"
import { buildEngines, DEFAULT_PROFILES, loadProfilesFile } from "./Profiles.js"

/**
 * The SQLite store is imported only when asked for, so the bin and an
 * embedded process engine run without the SQLite packages installed.
 */
const sqliteStore = (filename: string): Layer.Layer<RuntimeStore, StartupError> =>
  Layer.unwrapEffect(
    Effect.tryPromise({
      try: () => import("../sqlite/SqliteStore.js"),
      catch: (error) =>
        new StartupError({
          message: `--store sqlite: needs @effect/sql and @effect/sql-sqlite-node installed (${
            error instanceof Error ? error.message : String(error)
          })`
        })
    }).pipe(
      Effect.map(({ SqliteStoreLive }) =>
        SqliteStoreLive({ filename }).pipe(Layer.mapError((error) => new StartupError({ message: error.message })))
      )
    )
  )

/**
 * The PostgreSQL store, likewise imported only when asked for. Its messages
 * show the URL with the password masked.
 */
const postgresStore = (url: string, poolSize: number, cluster: boolean): Layer.Layer<RuntimeStore, StartupError> =>
  Layer.unwrapEffect(
    Effect.tryPromise({
      try: () => import("../postgres/PostgresStore.js"),
      catch: (error) =>
        new StartupError({
          message: `--store postgres: needs @effect/sql, @effect/sql-pg and pg installed (${
            error instanceof Error ? error.message : String(error)
          })`
        })
    }).pipe(
      Effect.map(({ PostgresStoreLive }) =>
        PostgresStoreLive({ url, poolSize, cluster }).pipe(
          Layer.mapError((error) => new StartupError({ message: error.message }))
        )
      )
    )
  )

const storeOf = (spec: StoreSpec, poolSize: number, cluster: boolean): Layer.Layer<RuntimeStore, StartupError> => {
  switch (spec._tag) {
    case "memory":
      return MemoryStoreLive()
    case "sqlite":
      return sqliteStore(spec.filename)
    case "postgres":
      return postgresStore(spec.url, poolSize, cluster)
  }
}

/** The configured store; its close is logged (its finalizer runs after the store's own). */
const storeLayer = (spec: StoreSpec, poolSize: number, cluster: boolean): Layer.Layer<RuntimeStore, StartupError> =>
  Layer.scoped(
    RuntimeStore,
    Effect.gen(function*() {
      yield* Effect.addFinalizer(() => Effect.logInfo("store closed").pipe(Effect.annotateLogs({ store: spec._tag })))
      const context = yield* Layer.build(storeOf(spec, poolSize, cluster))
      return Context.get(context, RuntimeStore)
    })
  )

/**
 * One runner of a cluster, imported only when asked for: `@effect/cluster`
 * and `@effect/rpc` are optional peers.
 */
const clusterRunner = (
  options: RuntimeOptions,
  cluster: ClusterConfig
): Layer.Layer<Runtime | RuntimeControl, StartupError, RuntimeStore> =>
  Layer.unwrapEffect(
    Effect.tryPromise({
      try: () => import("../cluster/Runner.js"),
      catch: (error) =>
        new StartupError({
          message: `--cluster: needs @effect/cluster and @effect/rpc installed (${
            error instanceof Error ? error.message : String(error)
          })`
        })
    }).pipe(
      Effect.map(({ ClusterRunnerLive }) =>
        ClusterRunnerLive(options, {
          url: cluster.url,
          host: cluster.runnerHost,
          port: cluster.runnerPort,
          failureDetectionMs: cluster.failureDetectionMs
        }).pipe(Layer.mapError((error) => new StartupError({ message: error.message })))
      )
    )
  )

/** `Runtime` + `RuntimeControl` as configured: profiles loaded and checked, store opened. */
export const RuntimeFromConfigLive = (config: RuntimeConfig) =>
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const profiles = Option.isSome(config.profilesPath)
        ? yield* loadProfilesFile(config.profilesPath.value).pipe(
          Effect.mapError((error) => new StartupError({ message: error.message }))
        )
        : DEFAULT_PROFILES
      const engines = yield* buildEngines(profiles).pipe(
        Effect.mapError((error) => new StartupError({ message: error.message }))
      )
      const options: RuntimeOptions = {
        runtimeId: Option.getOrUndefined(config.runtimeId),
        displayName: Option.getOrUndefined(config.displayName),
        profiles: engines,
        maxWorkers: config.maxWorkers,
        maxInputBytes: config.maxInputBytes,
        shutdownGraceMs: config.shutdownGraceMs,
        tracing: Option.isSome(config.tracing),
        maxQueuedInputs: config.maxQueuedInputs,
        maxQueuedBytes: config.maxQueuedBytes,
        retainStoppedMs: Option.getOrUndefined(config.retainStoppedMs),
        passivateAfterMs: config.passivateAfterMs
      }
      const runtime: Layer.Layer<Runtime | RuntimeControl, StartupError, RuntimeStore> = Option.match(config.cluster, {
        onNone: () =>
          RuntimeFromStore(options).pipe(Layer.mapError((error) => new StartupError({ message: error.message }))),
        onSome: (cluster) => clusterRunner(options, cluster)
      })
      return runtime.pipe(
        Layer.provide(storeLayer(config.store, config.storePoolSize, Option.isSome(config.cluster)))
      )
    })
  ).pipe(Layer.provide([NodeFileSystem.layer, NodeCommandExecutor.layer.pipe(Layer.provide(NodeFileSystem.layer))]))

/** Drains the Runtime before anything built earlier (the server) is released. */
const DrainFirst = Layer.scopedDiscard(
  Effect.gen(function*() {
    const control = yield* RuntimeControl
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        const inFlight = yield* control.turnsInFlight
        yield* Effect.logInfo("draining began").pipe(Effect.annotateLogs({ turnsInFlight: inFlight }))
        const { turnsInterrupted } = yield* control.drain
        yield* Effect.logInfo("drain done").pipe(Effect.annotateLogs({ turnsInterrupted }))
      })
    )
  })
)

const Announce = Layer.effectDiscard(
  Effect.gen(function*() {
    const server = yield* HttpServer.HttpServer
    const runtime = yield* Runtime
    const info = yield* runtime.info.pipe(Effect.option)
    const address = server.address
    const where = address._tag === "TcpAddress" ? `http://${address.hostname}:${address.port}` : address.path
    yield* Effect.logInfo(`worker-runtime listening on ${where}`).pipe(
      Effect.annotateLogs({
        runtimeId: Option.match(info, { onNone: () => "?", onSome: (i) => i.runtimeId }),
        store: Option.match(info, { onNone: () => "?", onSome: (i) => i.store }),
        profiles: Option.match(info, { onNone: () => "", onSome: (i) => i.profiles.join(",") })
      })
    )
  })
)

/** One log line a line: for people (pretty) or machines (JSON: level, time, message, annotations). */
const loggerOf = (format: RuntimeConfig["logFormat"]) => format === "json" ? Logger.json : Logger.pretty

/**
 * `/metrics` and tracing need `@effect/opentelemetry` and the OpenTelemetry
 * packages (optional peers): imported only here, so that the bin runs
 * without them, with a warning.
 */
const observability = Effect.tryPromise(() => import("./Observability.js")).pipe(
  Effect.tapError((error) =>
    Effect.logWarning(
      "/metrics and tracing are off: they need @effect/opentelemetry, @opentelemetry/api, " +
        "@opentelemetry/sdk-metrics, @opentelemetry/exporter-prometheus and @opentelemetry/resources installed",
      error.cause instanceof Error ? error.cause.message : String(error.cause)
    )
  ),
  Effect.option
)

const metricsText: Effect.Effect<Effect.Effect<string> | undefined, never, Scope.Scope> = Effect.flatMap(
  observability,
  Option.match({
    onNone: () => Effect.succeed(undefined),
    onSome: (module) => Effect.map(module.makePrometheus, (prometheus: Prometheus) => prometheus.text)
  })
)

const tracingLayer = (config: TracingConfig): Layer.Layer<never> =>
  Layer.unwrapEffect(
    Effect.map(
      observability,
      Option.match({ onNone: () => Layer.empty, onSome: (module) => module.TracingLive(config) })
    )
  )

/** The whole process: launch it with `Layer.launch`. */
export const NodeRuntimeLive = (config: RuntimeConfig): Layer.Layer<never, StartupError> => {
  const tracing = Option.isSome(config.tracing)
  const server = Layer.unwrapScoped(
    Effect.map(metricsText, (metrics) =>
      RuntimeHttpServerLive({
        token: Option.getOrUndefined(config.token),
        allowedHosts: config.allowedHosts,
        maxInputBytes: config.maxInputBytes,
        maxStreams: config.maxStreams,
        metrics,
        tracing
      }))
  ).pipe(
    Layer.provideMerge(
      RuntimeNodeHttpServerLive({ maxConnections: config.maxConnections }, {
        host: config.host,
        port: config.port
      }).pipe(
        Layer.mapError((error) =>
          new StartupError({ message: `cannot listen on ${config.host}:${config.port}: ${String(error.cause)}` })
        )
      )
    )
  )
  return Layer.mergeAll(DrainFirst, Announce).pipe(
    Layer.provide(server),
    Layer.provide(RuntimeFromConfigLive(config)),
    Layer.provide(Option.match(config.tracing, { onNone: () => Layer.empty, onSome: tracingLayer })),
    Layer.provide(Logger.minimumLogLevel(config.logLevel)),
    Layer.provide(loggerOf(config.logFormat))
  )
}

/**
 * One runner of a cluster as a layer (docs/cluster.md): the cluster's tables
 * in the shared PostgreSQL database, a socket where the other runners reach
 * this one, the shard count checked against the database's, the failover
 * settings, and `ClusterRuntime` over the shared `RuntimeStore`.
 */
import * as RunnerAddress from "@effect/cluster/RunnerAddress"
import * as ShardingConfig from "@effect/cluster/ShardingConfig"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import { type Runtime } from "../Runtime.js"
import { type RuntimeControl } from "../RuntimeControl.js"
import type { RuntimeOptions } from "../RuntimeOptions.js"
import type { RuntimeStore } from "../RuntimeStore.js"
import { ClusterRuntimeFromStore } from "./ClusterRuntime.js"
import { runnerSockets } from "./RunnerSockets.js"
import { checkShardCount, SHARD_COUNT } from "./ShardCount.js"

/** How long a runner that stopped answering keeps its shards by default (docs/cluster.md, failover). */
export const DEFAULT_FAILURE_DETECTION_MS = 10_000
/** Connections a runner opens for the cluster's own tables (messages, runners, shard locks). */
const CLUSTER_POOL_SIZE = 8

/** A runner cannot start as configured; the message says why, in one line. */
export class RunnerStartError extends Schema.TaggedError<RunnerStartError>()("RunnerStartError", {
  message: Schema.String
}) {}

/**
 * The cluster's timing for a failure noticed within `detectionMs`: a runner
 * that stops answering is marked unhealthy by the health check (every half
 * of it, plus the ping's retries of 2.5 s) or, at the latest, drops out when
 * its heartbeat is older than `detectionMs`; its shards are then taken
 * within a second (assignments and persisted messages are polled every
 * second at most). Shorter means a faster failover and more queries.
 */
export const failoverSettings = (detectionMs: number): Partial<ShardingConfig.ShardingConfig["Type"]> => {
  const poll = Math.max(100, Math.min(1000, Math.round(detectionMs / 10)))
  return {
    shardLockExpiration: Duration.millis(detectionMs),
    // Also how long a refresh may take before the runner gives up all its
    // shards (and interrupts their turns): as long as the expiry allows.
    shardLockRefreshInterval: Duration.millis(Math.max(200, Math.floor(detectionMs / 3))),
    runnerHealthCheckInterval: Duration.millis(Math.max(500, Math.round(detectionMs / 2))),
    refreshAssignmentsInterval: Duration.millis(poll),
    entityMessagePollInterval: Duration.millis(poll)
  }
}

export interface RunnerOptions {
  /** The shared PostgreSQL database (the store's): the cluster's tables live beside the store's. */
  readonly url: string
  /** Where the other runners reach this one, and where it listens for them. */
  readonly host: string
  readonly port: number
  /** See `failoverSettings` (default 10 s). */
  readonly failureDetectionMs?: number | undefined
  /** Overrides of the cluster's settings (tests); the shard count is not one of them. */
  readonly sharding?: Partial<ShardingConfig.ShardingConfig["Type"]> | undefined
}

/** The first key of the lock a runner holds while it makes or checks the cluster's tables ("WRKC"). */
const START_LOCK_CLASS = 0x57524b43

/**
 * Builds `layer` (the cluster's tables made or checked, this runner
 * registered) while no other runner does: runners started at once on a new
 * database would otherwise make the same tables together, and all but one fail.
 */
const oneAtATime = <A, E, R>(
  layer: Layer.Layer<A, E, R>
): Layer.Layer<A, E | RunnerStartError, R | SqlClient.SqlClient> =>
  Layer.scopedContext(Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const lockScope = yield* Scope.make()
    const locked = Effect.gen(function*() {
      const connection = yield* Scope.extend(sql.reserve, lockScope)
      yield* connection.executeRaw(`SELECT pg_advisory_lock(${START_LOCK_CLASS}, 0)`, [])
      return connection
    }).pipe(
      Effect.mapError((error) =>
        new RunnerStartError({ message: `cannot start with the other runners: ${error.message}` })
      )
    )
    const connection = yield* Effect.onError(locked, () => Scope.close(lockScope, Exit.void))
    // The lock goes with its connection: unlocked, then the connection back to the pool.
    const unlock = Effect.ignore(connection.executeRaw(`SELECT pg_advisory_unlock(${START_LOCK_CLASS}, 0)`, [])).pipe(
      Effect.zipRight(Scope.close(lockScope, Exit.void))
    )
    return yield* Effect.ensuring(Layer.build(layer), unlock)
  }))

const Count = Schema.Array(Schema.Struct({ n: Schema.NumberFromString }))

/** Runners whose heartbeat is newer than `detectionMs` and that the health check has not marked down. */
const healthyRunners = (detectionMs: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const seconds = Math.max(1, Math.ceil(detectionMs / 1000))
    const rows = yield* sql`SELECT count(*)::text AS n FROM cluster_runners
      WHERE healthy AND last_heartbeat > NOW() - make_interval(secs => ${seconds})`
    const [row] = yield* Schema.decodeUnknown(Count)(rows)
    return row?.n ?? 0
  })

/**
 * `Runtime` and `RuntimeControl` of this runner, over the shared
 * `RuntimeStore` (opened in cluster mode: `PostgresStoreOptions.cluster`).
 */
export const ClusterRunnerLive = (
  options: RuntimeOptions,
  runner: RunnerOptions
): Layer.Layer<Runtime | RuntimeControl, RunnerStartError, RuntimeStore> => {
  const detectionMs = runner.failureDetectionMs ?? DEFAULT_FAILURE_DETECTION_MS
  const address = `${runner.host}:${runner.port}`
  const sql = PgClient.layer({
    url: Redacted.make(runner.url),
    maxConnections: CLUSTER_POOL_SIZE,
    applicationName: `worker-runtime runner ${address}`.slice(0, 63)
  }).pipe(
    Layer.mapError((error) => new RunnerStartError({ message: `cannot open the cluster's tables: ${error.message}` }))
  )
  const shardCount = Layer.effectDiscard(
    checkShardCount(SHARD_COUNT).pipe(
      Effect.mapError((error) =>
        new RunnerStartError({
          message: error._tag === "ShardCountMismatch"
            ? error.message
            : `cannot check the shard count: ${error.message}`
        })
      )
    )
  )
  const runnerAddress = RunnerAddress.make(runner.host, runner.port)
  const sockets = runnerSockets({
    ...ShardingConfig.defaults,
    ...failoverSettings(detectionMs),
    ...runner.sharding,
    shardsPerGroup: SHARD_COUNT,
    runnerAddress: Option.some(runnerAddress)
  }, runnerAddress).pipe(
    Layer.mapError((error) =>
      new RunnerStartError({
        message: error._tag === "SocketServerError"
          ? `cannot listen for the other runners on ${address} (--runner-address): ${String(error.cause)}`
          : `cannot use the cluster's tables: ${error.message}`
      })
    )
  )
  return Layer.unwrapEffect(Effect.gen(function*() {
    const context = yield* Effect.context<SqlClient.SqlClient>()
    return ClusterRuntimeFromStore(options, {
      runner: address,
      runners: Effect.orElseSucceed(Effect.provide(healthyRunners(detectionMs), context), () => 0)
    }).pipe(
      Layer.mapError((error) => new RunnerStartError({ message: error.message })),
      // The shard count is checked before this runner takes any shard.
      Layer.provide(oneAtATime(Layer.provide(sockets, shardCount)))
    )
  })).pipe(Layer.provide(sql))
}

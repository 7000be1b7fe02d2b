/**
 * worker-runtime/cluster: one runner of a cluster (docs/cluster.md). Needs
 * `@effect/cluster`, `@effect/rpc`, `@effect/sql`, `@effect/sql-pg`, `pg`
 * and `@effect/platform-node` next to `effect`.
 *
 * - `ClusterRunnerLive`: `Runtime` and `RuntimeControl` of one runner over
 *   the shared PostgreSQL store (open it with `PostgresStoreLive({ cluster: true })`).
 * - `ClusterRuntimeFromStore`: the same over a `Sharding` of your own (any
 *   `@effect/cluster` runner layer, e.g. its test runner).
 * - `WorkerEntity`: the Worker entity; `WorkerEntity.client` reaches any
 *   Worker from a process that has `Sharding`.
 */
export { ClusterRuntimeFromStore, type ClusterRuntimeOptions, makeClusterRuntime } from "./ClusterRuntime.js"
export {
  ClusterRunnerLive,
  DEFAULT_FAILURE_DETECTION_MS,
  failoverSettings,
  type RunnerOptions,
  RunnerStartError
} from "./Runner.js"
export { checkShardCount, SHARD_COUNT, ShardCountMismatch } from "./ShardCount.js"
export { FAILOVER_REASON, HANDOVER_REASON, SHARD_GROUP, WorkerEntity, WorkerEntityLive } from "./WorkerEntity.js"

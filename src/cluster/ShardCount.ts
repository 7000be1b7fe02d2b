/**
 * The cluster's shard count: fixed here, the same in every runner and every
 * client, and recorded in the database at the first start. A process whose
 * count differs refuses to start: with another count it would store
 * messages for shards no runner owns, and its calls would hang without an
 * error (docs/cluster.md).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"

/** Shards of the Worker entity (`ShardingConfig.shardsPerGroup`); changing it needs an empty cluster. */
export const SHARD_COUNT = 300

/** The table holding the cluster's own settings, beside `@effect/cluster`'s `cluster_*` tables. */
export const CLUSTER_TABLE = "worker_runtime_cluster"

export class ShardCountMismatch extends Schema.TaggedError<ShardCountMismatch>()("ShardCountMismatch", {
  stored: Schema.Number,
  configured: Schema.Number,
  message: Schema.String
}) {}

const Row = Schema.Struct({ value: Schema.NumberFromString })

/**
 * Records `shards` as the cluster's shard count if none is recorded, else
 * checks it is the recorded one. The first of several runners starting at
 * once records it; the others read it.
 */
export const checkShardCount = (
  shards: number = SHARD_COUNT
): Effect.Effect<void, ShardCountMismatch | SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const table = sql(CLUSTER_TABLE)
    // PostgreSQL may refuse one of two concurrent CREATE TABLE IF NOT EXISTS: the retry sees the table.
    yield* sql`CREATE TABLE IF NOT EXISTS ${table} (name TEXT PRIMARY KEY, value TEXT NOT NULL)`.pipe(
      Effect.retry({ times: 3, schedule: Schedule.spaced("50 millis") })
    )
    yield* sql`INSERT INTO ${table} (name, value) VALUES ('shards', ${String(shards)}) ON CONFLICT (name) DO NOTHING`
    const rows = yield* sql`SELECT value FROM ${table} WHERE name = 'shards'`
    // Unreadable (not a number): a mismatch too, a count no runner has.
    const [row] = yield* Schema.decodeUnknown(Schema.Array(Row))(rows).pipe(Effect.orElseSucceed(() => []))
    const stored = row?.value ?? Number.NaN
    if (stored !== shards) {
      return yield* new ShardCountMismatch({
        stored,
        configured: shards,
        message: `this cluster's database records ${
          Number.isNaN(stored) ? "an unreadable number of" : stored
        } shards and this runner has ${shards}: every runner and client of a cluster must have the same count`
      })
    }
  })

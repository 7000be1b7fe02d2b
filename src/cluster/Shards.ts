/**
 * Which shards of the Worker entity this runner holds now, as its
 * `Sharding` says: the one reading of ownership that adoption, a move's
 * refusal, retention and `RuntimeInfo.cluster` share.
 */
import * as EntityId from "@effect/cluster/EntityId"
import * as ShardId from "@effect/cluster/ShardId"
import type { Sharding } from "@effect/cluster/Sharding"

/** The shards of `group` (numbered 1 to `shards`) this runner holds, by their ids' text. */
export const heldShards = (sharding: Sharding["Type"], group: string, shards: number): Set<string> => {
  const held = new Set<string>()
  for (let id = 1; id <= shards; id++) {
    const shard = ShardId.make(group, id)
    if (sharding.hasShardId(shard)) held.add(shard.toString())
  }
  return held
}

/** The shard of the Worker `workerId` in `group`, by its id's text. */
export const shardOf = (sharding: Sharding["Type"], workerId: string, group: string): string =>
  sharding.getShardId(EntityId.make(workerId), group).toString()

/** Whether this runner holds the shard of the Worker `workerId` in `group`. */
export const holdsWorker = (sharding: Sharding["Type"], workerId: string, group: string): boolean =>
  sharding.hasShardId(sharding.getShardId(EntityId.make(workerId), group))

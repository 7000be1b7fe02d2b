/**
 * The runner's cluster layer: `@effect/cluster`'s socket runner with SQL
 * message and runner storage, as `NodeClusterSocket.layer` builds it, with
 * two differences. Its TCP sockets have Nagle's algorithm off: a streamed
 * reply waits for the caller's acknowledgement of each chunk, and a small
 * acknowledgement held back by Nagle against the peer's delayed ACK cost
 * every event across runners tens of milliseconds. And the configuration
 * is this runner's, whole: no `ShardingConfig` read from the environment.
 */
import type * as MessageStorage from "@effect/cluster/MessageStorage"
import type * as RunnerAddress from "@effect/cluster/RunnerAddress"
import * as RunnerHealth from "@effect/cluster/RunnerHealth"
import * as Runners from "@effect/cluster/Runners"
import type { Sharding } from "@effect/cluster/Sharding"
import * as ShardingConfig from "@effect/cluster/ShardingConfig"
import * as SocketRunner from "@effect/cluster/SocketRunner"
import * as SqlMessageStorage from "@effect/cluster/SqlMessageStorage"
import * as SqlRunnerStorage from "@effect/cluster/SqlRunnerStorage"
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as NodeSocketServer from "@effect/platform-node/NodeSocketServer"
import { Socket } from "@effect/platform/Socket"
import type * as SocketServer from "@effect/platform/SocketServer"
import * as RpcClient from "@effect/rpc/RpcClient"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

/** Connections to the other runners, as `NodeClusterSocket`'s, without Nagle. */
const clientProtocol: Layer.Layer<Runners.RpcClientProtocol, never, RpcSerialization.RpcSerialization> = Layer
  .effect(
    Runners.RpcClientProtocol,
    Effect.gen(function*() {
      const serialization = yield* RpcSerialization.RpcSerialization
      return Effect.fnUntraced(function*(address) {
        const socket = yield* NodeSocket.makeNet({
          openTimeout: 1000,
          timeout: 5500,
          host: address.host,
          port: address.port,
          noDelay: true
        })
        return yield* RpcClient.makeProtocolSocket().pipe(
          Effect.provideService(Socket, socket),
          Effect.provideService(RpcSerialization.RpcSerialization, serialization)
        )
      }, Effect.orDie)
    })
  )

/**
 * `Sharding` and its `MessageStorage` for a runner listening at `listen`,
 * storing messages and runners in the `SqlClient`'s database.
 */
export const runnerSockets = (
  config: ShardingConfig.ShardingConfig["Type"],
  listen: RunnerAddress.RunnerAddress
): Layer.Layer<
  Sharding | Runners.Runners | MessageStorage.MessageStorage,
  SocketServer.SocketServerError | SqlError,
  SqlClient
> =>
  SocketRunner.layer.pipe(
    // Where the other runners connect, without Nagle too.
    Layer.provide([NodeSocketServer.layer({ host: listen.host, port: listen.port, noDelay: true }), clientProtocol]),
    Layer.provide(RunnerHealth.layerPing.pipe(Layer.provide(Runners.layerRpc), Layer.provide(clientProtocol))),
    Layer.provideMerge(SqlMessageStorage.layer),
    Layer.provide(SqlRunnerStorage.layer),
    Layer.provide(Layer.succeed(ShardingConfig.ShardingConfig, config)),
    Layer.provide(RpcSerialization.layerMsgPack)
  )

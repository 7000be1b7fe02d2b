// The worker-runtime HTTP server as the bin builds it (RuntimeHttpServerLive
// on the runtime's own Node server with its fast lanes, memory store), with the `ticker` engine
// as a profile: the server of the events benchmarks. Answers `memory` over IPC.
import { HttpServer } from "@effect/platform"
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Logger, LogLevel } from "effect"
import { RuntimeHttpServerLive } from "../../src/http/index.js"
import { makeEchoEngine, RuntimeLive } from "../../src/index.js"
import { RuntimeNodeHttpServerLive } from "../../src/node/index.js"
import { tickerEngine } from "../ticker.js"
import { answerMemory } from "./memory.js"

answerMemory()

const Announce = Layer.effectDiscard(
  Effect.gen(function*() {
    const { address } = yield* HttpServer.HttpServer
    if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("not a TCP address")
    console.log(`listening http://${address.hostname}:${address.port}`)
  })
)

const Server = Announce.pipe(
  Layer.provide(
    // The bench holds up to 10,000 streams: past the defaults (--max-streams, --max-connections).
    RuntimeHttpServerLive({ maxStreams: 100_000 }).pipe(
      Layer.provideMerge(
        RuntimeNodeHttpServerLive({ maxConnections: 100_000 }, { host: "127.0.0.1", port: 0 })
      )
    )
  ),
  Layer.provide(RuntimeLive({ profiles: { default: makeEchoEngine(), ticker: tickerEngine }, maxWorkers: 100_000 })),
  Layer.provide(Logger.minimumLogLevel(LogLevel.Warning))
)
Layer.launch(Server).pipe(NodeRuntime.runMain)

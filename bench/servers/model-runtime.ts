// The worker-runtime HTTP server as the bin builds it (RuntimeHttpServerLive
// on the runtime's own Node server, memory store) with a `model` profile on
// the `openai` engine, pointed at the model server (argv[2], an OpenAI-style
// `/v1` root): the server of the model benchmarks.
import { HttpServer } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Logger, LogLevel } from "effect"
import { makeOpenAiEngine } from "../../src/ai/index.js"
import { RuntimeHttpServerLive } from "../../src/http/index.js"
import { makeEchoEngine, RuntimeLive } from "../../src/index.js"
import { createRuntimeHttpServer } from "../../src/node/index.js"

const apiUrl = process.argv[2]
if (apiUrl === undefined) throw new Error("usage: model-runtime.js <model server /v1 url>")

const Announce = Layer.effectDiscard(
  Effect.gen(function*() {
    const { address } = yield* HttpServer.HttpServer
    if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("not a TCP address")
    console.log(`listening http://${address.hostname}:${address.port}`)
  })
)

const Server = Announce.pipe(
  Layer.provide(
    // 1,000 followers of one Worker: past the defaults (--max-streams, --max-connections).
    RuntimeHttpServerLive({ maxStreams: 100_000 }).pipe(
      Layer.provideMerge(
        NodeHttpServer.layer(() => createRuntimeHttpServer({ maxConnections: 100_000 }), {
          host: "127.0.0.1",
          port: 0
        })
      )
    )
  ),
  Layer.provide(
    RuntimeLive({
      profiles: { default: makeEchoEngine(), model: makeOpenAiEngine({ model: "bench", apiUrl, maxRetries: 0 }) }
    })
  ),
  Layer.provide(Logger.minimumLogLevel(LogLevel.Warning))
)
Layer.launch(Server).pipe(NodeRuntime.runMain)

// The platform's own bound: a minimal HttpApi server (one endpoint, no
// middleware, no tracing) answering the same Worker JSON from a Map.
import {
  HttpApi,
  HttpApiBuilder,
  HttpApiEndpoint,
  HttpApiGroup,
  HttpApiSchema,
  HttpMiddleware,
  HttpServer
} from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Schema } from "effect"
import { createServer } from "node:http"
import { Worker } from "../../src/index.js"

const worker = Schema.decodeUnknownSync(Worker)(JSON.parse(process.env.BENCH_WORKER ?? "null"))
const workers = new Map<string, Worker>([[worker.id, worker]])

const workerId = HttpApiSchema.param("workerId", Schema.String)
class Group
  extends HttpApiGroup.make("workers").add(HttpApiEndpoint.get("get")`/v1/workers/${workerId}`.addSuccess(Worker))
{}
class Api extends HttpApi.make("min").add(Group) {}

const Handlers = HttpApiBuilder.group(Api, "workers", (handlers) =>
  handlers.handle("get", ({ path }) => {
    // The bench only asks for the Worker it holds; any other id is a defect (a 500).
    const found = workers.get(path.workerId)
    return found === undefined ? Effect.dieMessage(`no Worker ${path.workerId}`) : Effect.succeed(found)
  }))

const Server = HttpApiBuilder.serve().pipe(
  HttpMiddleware.withTracerDisabledWhen(() => true),
  Layer.provide(HttpApiBuilder.api(Api).pipe(Layer.provide(Handlers))),
  HttpServer.withLogAddress,
  Layer.provide(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
)
Layer.launch(Server).pipe(NodeRuntime.runMain)

// The platform's own bound: a minimal HttpApi server (two endpoints, no
// middleware, no tracing) answering the same Worker JSON from a Map, and
// taking an input (payload decoded by the schema, answered 202) without
// storing anything.
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
import { InputAccepted, Worker, WorkerInput } from "../../src/index.js"

const worker = Schema.decodeUnknownSync(Worker)(JSON.parse(process.env.BENCH_WORKER ?? "null"))
const workers = new Map<string, Worker>([[worker.id, worker]])
let seq = 0

const workerId = HttpApiSchema.param("workerId", Schema.String)
class Group extends HttpApiGroup.make("workers")
  .add(HttpApiEndpoint.get("get")`/v1/workers/${workerId}`.addSuccess(Worker))
  .add(
    HttpApiEndpoint.post("input")`/v1/workers/${workerId}/input`.setPayload(WorkerInput).addSuccess(InputAccepted, {
      status: 202
    })
  )
{}
class Api extends HttpApi.make("min").add(Group) {}

// The bench only asks for the Worker it holds; any other id is a defect (a 500).
const find = (id: string) => {
  const found = workers.get(id)
  return found === undefined ? Effect.dieMessage(`no Worker ${id}`) : Effect.succeed(found)
}

const Handlers = HttpApiBuilder.group(Api, "workers", (handlers) =>
  handlers
    .handle("get", ({ path }) => find(path.workerId))
    .handle("input", ({ path, payload }) =>
      Effect.map(find(path.workerId), (found) => ({
        worker: found,
        queued: false,
        entry: { seq: ++seq, at: new Date().toISOString(), role: "user" as const, content: payload.content, turn: seq }
      }))))

const Server = HttpApiBuilder.serve().pipe(
  HttpMiddleware.withTracerDisabledWhen(() => true),
  Layer.provide(HttpApiBuilder.api(Api).pipe(Layer.provide(Handlers))),
  HttpServer.withLogAddress,
  Layer.provide(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
)
Layer.launch(Server).pipe(NodeRuntime.runMain)

// Fastify doing the same as the raw server: a common production baseline.
import Fastify from "fastify"

const worker: unknown = JSON.parse(process.env.BENCH_WORKER ?? "null")
if (typeof worker !== "object" || worker === null || !("id" in worker) || typeof worker.id !== "string") {
  throw new Error("BENCH_WORKER holds no Worker")
}
const workers = new Map([[worker.id, worker]])

const app = Fastify({ logger: false })
app.get<{ Params: { workerId: string } }>("/v1/workers/:workerId", async (request, reply) => {
  const found = workers.get(request.params.workerId)
  if (found === undefined) return reply.code(404).send({ _tag: "UnknownWorker", message: "no such Worker" })
  return found
})
const url = await app.listen({ port: 0, host: "127.0.0.1" })
console.log(`listening ${url}`)
process.on("SIGTERM", () => app.close().then(() => process.exit(0)))

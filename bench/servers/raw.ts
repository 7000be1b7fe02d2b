// The ceiling for Node here: node:http answering the same Worker JSON from a Map.
import { createServer } from "node:http"

const worker: unknown = JSON.parse(process.env.BENCH_WORKER ?? "null")
if (typeof worker !== "object" || worker === null || !("id" in worker) || typeof worker.id !== "string") {
  throw new Error("BENCH_WORKER holds no Worker")
}
const workers = new Map([[worker.id, worker]])
const prefix = "/v1/workers/"

const server = createServer((request, response) => {
  const url = request.url ?? ""
  const found = url.startsWith(prefix) ? workers.get(url.slice(prefix.length)) : undefined
  if (found === undefined) {
    response.writeHead(404, { "content-type": "application/json" })
    response.end(JSON.stringify({ _tag: "UnknownWorker", message: "no such Worker" }))
    return
  }
  response.writeHead(200, { "content-type": "application/json" })
  response.end(JSON.stringify(found))
})
server.listen(0, "127.0.0.1", () => {
  const address = server.address()
  if (address === null || typeof address === "string") throw new Error(`not a TCP address: ${address}`)
  console.log(`listening http://127.0.0.1:${address.port}`)
})
process.on("SIGTERM", () => server.close(() => process.exit(0)))

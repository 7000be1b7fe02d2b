// The ceiling for Node here: node:http answering the same Worker JSON from a Map.
import { createServer } from "node:http"

const worker = JSON.parse(process.env.BENCH_WORKER)
const workers = new Map([[worker.id, worker]])
const prefix = "/v1/workers/"

const server = createServer((request, response) => {
  const found = request.url.startsWith(prefix) ? workers.get(request.url.slice(prefix.length)) : undefined
  if (found === undefined) {
    response.writeHead(404, { "content-type": "application/json" })
    response.end(JSON.stringify({ _tag: "UnknownWorker", message: "no such Worker" }))
    return
  }
  response.writeHead(200, { "content-type": "application/json" })
  response.end(JSON.stringify(found))
})
server.listen(0, "127.0.0.1", () => console.log(`listening http://127.0.0.1:${server.address().port}`))
process.on("SIGTERM", () => server.close(() => process.exit(0)))

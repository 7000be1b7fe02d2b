// The ceiling for Node here: node:http answering the same Worker JSON from a
// Map, and taking an input (its JSON body parsed and checked, answered 202
// with the Worker and the entry) without storing anything.
import { createServer } from "node:http"

const worker: unknown = JSON.parse(process.env.BENCH_WORKER ?? "null")
if (typeof worker !== "object" || worker === null || !("id" in worker) || typeof worker.id !== "string") {
  throw new Error("BENCH_WORKER holds no Worker")
}
const workers = new Map([[worker.id, worker]])
const prefix = "/v1/workers/"
const inputSuffix = "/input"
let seq = 0

const server = createServer((request, response) => {
  const url = request.url ?? ""
  if (request.method === "POST" && url.startsWith(prefix) && url.endsWith(inputSuffix)) {
    const found = workers.get(url.slice(prefix.length, -inputSuffix.length))
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      const body: unknown = JSON.parse(Buffer.concat(chunks).toString("utf8"))
      const content = typeof body === "object" && body !== null && "content" in body ? body.content : undefined
      if (found === undefined || typeof content !== "string" || content === "") {
        response.writeHead(400, { "content-type": "application/json" })
        response.end(JSON.stringify({ _tag: "InvalidInput", message: "bad input" }))
        return
      }
      const entry = { seq: ++seq, at: new Date().toISOString(), role: "user", content, turn: seq }
      response.writeHead(202, { "content-type": "application/json" })
      response.end(JSON.stringify({ worker: found, queued: false, entry }))
    })
    return
  }
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

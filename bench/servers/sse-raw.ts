// The events baseline: a raw node:http server speaking the runtime's SSE
// shape. `POST /v1/workers` makes an id; `GET /v1/workers/{id}/events` sends a
// `worker` frame, then one `entry` frame each time the id's EventEmitter
// fires; `POST /v1/workers/{id}/input` with ticker content ({ count,
// intervalMs }) fires it `count` times, `intervalMs` apart, with the
// monotonic time as content, as the runtime's ticker engine does.
import { EventEmitter } from "node:events"
import { createServer, type IncomingMessage } from "node:http"
import { answerMemory } from "./memory.js"

answerMemory()

const emitter = new EventEmitter()
emitter.setMaxListeners(0)
const workers = new Map<string, { seq: number; turn: number }>()
let created = 0

const readBody = (request: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    let body = ""
    request.setEncoding("utf8")
    request.on("data", (chunk: string) => (body += chunk))
    request.on("end", () => resolve(body))
    request.on("error", reject)
  })

const tickerOf = (body: string): { count: number; intervalMs: number } => {
  const input: unknown = JSON.parse(body)
  const content = typeof input === "object" && input !== null && "content" in input ? input.content : undefined
  const ticker: unknown = typeof content === "string" ? JSON.parse(content) : undefined
  if (
    typeof ticker === "object" && ticker !== null && "count" in ticker && typeof ticker.count === "number" &&
    "intervalMs" in ticker && typeof ticker.intervalMs === "number"
  ) return { count: ticker.count, intervalMs: ticker.intervalMs }
  throw new Error(`not ticker input: ${body}`)
}

const tick = (id: string, worker: { seq: number; turn: number }, left: number, intervalMs: number) => {
  const entry = {
    seq: ++worker.seq,
    at: new Date().toISOString(),
    role: "worker",
    content: String(process.hrtime.bigint()),
    turn: worker.turn
  }
  emitter.emit(id, `id: ${entry.seq}\nevent: entry\ndata: ${JSON.stringify(entry)}\n\n`)
  if (left > 1) setTimeout(() => tick(id, worker, left - 1, intervalMs), intervalMs)
}

const server = createServer((request, response) => {
  const parts = (request.url ?? "").split("?")[0]!.split("/")
  const id = parts[3] ?? ""
  const worker = workers.get(id)
  if (request.method === "POST" && parts.length === 3 && parts[2] === "workers") {
    const newId = `w${String(++created).padStart(8, "0")}`
    workers.set(newId, { seq: 0, turn: 0 })
    void readBody(request).then(() => {
      response.writeHead(201, { "content-type": "application/json" })
      response.end(JSON.stringify({ id: newId, status: "idle", lastSeq: 0 }))
    })
    return
  }
  if (worker === undefined) {
    response.writeHead(404, { "content-type": "application/json" })
    response.end(JSON.stringify({ _tag: "UnknownWorker", message: "no such Worker" }))
    return
  }
  if (request.method === "GET" && parts[4] === "events") {
    response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
    response.write(`retry: 1000\n\nevent: worker\ndata: ${JSON.stringify({ id, ...worker })}\n\n`)
    const listener = (frame: string) => response.write(frame)
    emitter.on(id, listener)
    request.on("close", () => emitter.off(id, listener))
    return
  }
  if (request.method === "POST" && parts[4] === "input") {
    void readBody(request).then((body) => {
      const { count, intervalMs } = tickerOf(body)
      worker.turn++
      response.writeHead(202, { "content-type": "application/json" })
      response.end(JSON.stringify({ worker: { id, ...worker }, queued: false }))
      if (count > 0) setTimeout(() => tick(id, worker, count, intervalMs), intervalMs)
    })
    return
  }
  response.writeHead(404, { "content-type": "application/json" })
  response.end(JSON.stringify({ _tag: "NotFound", message: "no such route" }))
})
server.listen(0, "127.0.0.1", () => {
  const address = server.address()
  if (address === null || typeof address === "string") throw new Error(`not a TCP address: ${address}`)
  console.log(`listening http://127.0.0.1:${address.port}`)
})
process.on("SIGTERM", () => process.exit(0))

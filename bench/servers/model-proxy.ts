// The baseline of the model benchmarks: a raw node:http pass-through proxy.
// `POST /start` asks the model server (argv[2], an OpenAI-style `/v1` root)
// for a streamed reply and forwards its text deltas, as each chunk of it
// arrives, to every `GET /events` follower (one write each) as SSE frames like
// the runtime's (`event: delta`, `data: {"turn":n,"text":"…"}`); `event: end`
// when the reply has ended.
// No store, no transcript, no bounds on a follower's buffer.
import { createServer, type ServerResponse } from "node:http"
import { streamDeltas } from "../modelStream.js"

const upstream = process.argv[2]
if (upstream === undefined) throw new Error("usage: model-proxy.js <model server /v1 url>")

const followers = new Set<ServerResponse>()
const broadcast = (frame: string) => {
  for (const follower of followers) follower.write(frame)
}
let turn = 0

const server = createServer((req, res) => {
  if (req.method === "GET" && req.url === "/events") {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
    res.write(`event: open\ndata: {}\n\n`)
    followers.add(res)
    res.on("close", () => followers.delete(res))
    return
  }
  if (req.method === "POST" && req.url === "/start") {
    req.resume()
    const n = ++turn
    res.writeHead(202, { "content-type": "application/json" }).end("{}")
    const reply = streamDeltas(
      `${upstream}/responses`,
      { model: "bench", input: [{ role: "user", content: "go" }], stream: true },
      (texts) => broadcast(texts.map((text) => `event: delta\ndata: ${JSON.stringify({ turn: n, text })}\n\n`).join(""))
    )
    void reply.ended.then(() => broadcast(`event: end\ndata: ${JSON.stringify({ turn: n })}\n\n`))
    return
  }
  res.writeHead(404).end()
})
server.listen(0, "127.0.0.1", () => {
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  console.log(`listening http://127.0.0.1:${port}`)
})

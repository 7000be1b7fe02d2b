// Tracing's cost on the REST read path: the runtime process with tracing off
// (twice: the noise between two identical runs) and on (spans exported over
// OTLP/HTTP to a sink in this process), same run, alternating.
import { createServer } from "node:http"
import { join } from "node:path"
import { fetchJson, load, root, startServer } from "./lib.js"

const BIN = join(root, "dist", "node", "main.js")

export interface TracingResults {
  readonly offRps: number
  readonly offAgainRps: number
  readonly onRps: number
  readonly spansReceived: number
}

/** An OTLP/HTTP sink: answers every export, counts the bytes it was sent. */
const startSink = () =>
  new Promise<{ url: string; received: () => number; close: () => void }>((resolve) => {
    let received = 0
    const server = createServer((request, response) => {
      request.on("data", (chunk: Buffer) => (received += chunk.length))
      request.on("end", () => {
        response.writeHead(200, { "content-type": "application/json" })
        response.end("{}")
      })
    }).listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resolve({ url: `http://127.0.0.1:${port}`, received: () => received, close: () => server.close() })
    })
  })

const readRps = async (env: Readonly<Record<string, string>>, seconds: number): Promise<number> => {
  const runtime = await startServer(BIN, ["--port", "0"], env)
  try {
    const { json } = await fetchJson(`${runtime.url}/v1/workers`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}"
    })
    const id = typeof json === "object" && json !== null && "id" in json ? String(json.id) : ""
    const result = await load({ url: `${runtime.url}/v1/workers/${id}` }, seconds)
    return result.requests.average
  } finally {
    await runtime.stop()
  }
}

export const tracingCost = async (
  { rounds, seconds }: { seconds: number; rounds: number }
): Promise<TracingResults> => {
  const sink = await startSink()
  const off: Array<number> = []
  const offAgain: Array<number> = []
  const on: Array<number> = []
  try {
    for (let round = 0; round < rounds; round++) {
      off.push(await readRps({}, seconds))
      on.push(await readRps({ OTEL_EXPORTER_OTLP_ENDPOINT: sink.url }, seconds))
      offAgain.push(await readRps({}, seconds))
    }
  } finally {
    sink.close()
  }
  const mean = (values: ReadonlyArray<number>) => values.reduce((sum, value) => sum + value, 0) / values.length
  return { offRps: mean(off), offAgainRps: mean(offAgain), onRps: mean(on), spansReceived: sink.received() }
}

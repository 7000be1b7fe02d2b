// REST read and write: the runtime process against raw node:http and Fastify.
import { join } from "node:path"
import { cannon, fetchJson, load, root, startServer } from "./lib.mjs"

const BIN = join(root, "dist", "node", "main.js")

const readRun = async (url, seconds) => {
  const result = await load({ url }, seconds)
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${url}: ${result.non2xx} non-2xx, ${result.errors} errors`)
  return { rps: result.requests.average, p99: result.latency.p99 }
}

export const restRead = async ({ seconds, rounds }) => {
  const runtime = await startServer(BIN, ["--port", "0"])
  const { json: worker } = await fetchJson(`${runtime.url}/v1/workers`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}"
  })
  const env = { BENCH_WORKER: JSON.stringify(worker) }
  const raw = await startServer(join(root, "bench", "servers", "raw.mjs"), [], env)
  const fastify = await startServer(join(root, "bench", "servers", "fastify.mjs"), [], env)
  const effect = await startServer(join(root, "bench", "servers", "effect-min.mjs"), [], env)
  const targets = { raw, fastify, effect, runtime }
  const best = {}
  try {
    // Alternate the servers and keep each one's best round: the machine is shared.
    for (let round = 0; round < rounds; round++) {
      for (const [name, server] of Object.entries(targets)) {
        const run = await readRun(`${server.url}/v1/workers/${worker.id}`, seconds)
        if (best[name] === undefined || run.rps > best[name].rps) best[name] = run
      }
    }
  } finally {
    await Promise.all([raw.stop(), fastify.stop(), effect.stop(), runtime.stop()])
  }
  return best
}

export const restWrite = async ({ seconds, workers: count }) => {
  const runtime = await startServer(BIN, ["--port", "0", "--max-workers", String(count + 10)])
  try {
    const ids = []
    for (let i = 0; i < count; i++) {
      const { json } = await fetchJson(`${runtime.url}/v1/workers`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}"
      })
      ids.push(json.id)
    }
    let next = 0
    const body = JSON.stringify({ content: "hello from the bench" })
    const options = {
      url: runtime.url,
      connections: 32,
      requests: [{
        method: "POST",
        headers: { "content-type": "application/json" },
        setupRequest: (request) => ({ ...request, path: `/v1/workers/${ids[next++ % ids.length]}/input`, body })
      }]
    }
    await cannon({ ...options, duration: 1 })
    const result = await cannon({ ...options, duration: seconds })
    const accepted = result.statusCodeStats["202"]?.count ?? 0
    const busy = result.statusCodeStats["409"]?.count ?? 0
    return { acceptedPerSecond: accepted / seconds, busyPerSecond: busy / seconds, p99: result.latency.p99 }
  } finally {
    await runtime.stop()
  }
}

// REST read and write: the runtime process against raw node:http and Fastify.
import { type Request } from "autocannon"
import { join } from "node:path"
import { benchBuild, cannon, fetchJson, load, root, startServer } from "./lib.js"

const BIN = join(root, "dist", "node", "main.js")
const server = (name: string): string => join(benchBuild, "servers", `${name}.js`)

export interface ReadRun {
  readonly rps: number
  readonly p99: number
}

type ReadTarget = "raw" | "fastify" | "effect" | "runtime"

export type ReadResults = { readonly [Target in ReadTarget]: ReadRun }

export interface WriteResults {
  readonly acceptedPerSecond: number
  readonly busyPerSecond: number
  readonly p99: number
}

/** The id of a Worker the runtime answered with. */
const workerId = (json: unknown): string => {
  if (typeof json === "object" && json !== null && "id" in json && typeof json.id === "string") return json.id
  throw new Error(`not a Worker: ${JSON.stringify(json)}`)
}

const createWorker = async (url: string): Promise<unknown> => {
  const { json } = await fetchJson(`${url}/v1/workers`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}"
  })
  return json
}

const readRun = async (url: string, seconds: number): Promise<ReadRun> => {
  const result = await load({ url }, seconds)
  if (result.non2xx > 0 || result.errors > 0) {
    throw new Error(`${url}: ${result.non2xx} non-2xx, ${result.errors} errors`)
  }
  return { rps: result.requests.average, p99: result.latency.p99 }
}

export const restRead = async ({ rounds, seconds }: { seconds: number; rounds: number }): Promise<ReadResults> => {
  const runtime = await startServer(BIN, ["--port", "0"])
  const worker = await createWorker(runtime.url)
  const id = workerId(worker)
  const env = { BENCH_WORKER: JSON.stringify(worker) }
  const raw = await startServer(server("raw"), [], env)
  const fastify = await startServer(server("fastify"), [], env)
  const effect = await startServer(server("effect-min"), [], env)
  const targets: ReadonlyArray<readonly [ReadTarget, { readonly url: string }]> = [
    ["raw", raw],
    ["fastify", fastify],
    ["effect", effect],
    ["runtime", runtime]
  ]
  const best = new Map<ReadTarget, ReadRun>()
  try {
    // Alternate the servers and keep each one's best round: the machine is shared.
    for (let round = 0; round < rounds; round++) {
      for (const [name, target] of targets) {
        const run = await readRun(`${target.url}/v1/workers/${id}`, seconds)
        const previous = best.get(name)
        if (previous === undefined || run.rps > previous.rps) best.set(name, run)
      }
    }
  } finally {
    await Promise.all([raw.stop(), fastify.stop(), effect.stop(), runtime.stop()])
  }
  const bestOf = (name: ReadTarget): ReadRun => {
    const run = best.get(name)
    if (run === undefined) throw new Error(`no read run for ${name} (rounds: ${rounds})`)
    return run
  }
  return { raw: bestOf("raw"), fastify: bestOf("fastify"), effect: bestOf("effect"), runtime: bestOf("runtime") }
}

export const restWrite = async ({ seconds, workers: count }: { seconds: number; workers: number }): Promise<
  WriteResults
> => {
  const runtime = await startServer(BIN, ["--port", "0", "--max-workers", String(count + 10)])
  try {
    const ids: Array<string> = []
    for (let i = 0; i < count; i++) ids.push(workerId(await createWorker(runtime.url)))
    let next = 0
    const body = JSON.stringify({ content: "hello from the bench" })
    const options = {
      url: runtime.url,
      connections: 32,
      requests: [{
        method: "POST",
        headers: { "content-type": "application/json" },
        setupRequest: (request: Request): Request => ({
          ...request,
          path: `/v1/workers/${ids[next++ % ids.length]}/input`,
          body
        })
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

// REST read and write: the runtime process against raw node:http and Fastify.
import { type Options, type Request, type Result } from "autocannon"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { benchBuild, cannon, fetchJson, root, type Server, startServer } from "./lib.js"

const BIN = join(root, "dist", "node", "main.js")
const server = (name: string): string => join(benchBuild, "servers", `${name}.js`)

export interface ReadRun {
  readonly rps: number
  readonly p99: number
  /** Server CPU (user + system) per request, µs. */
  readonly cpuUs: number
}

type ReadTarget = "raw" | "fastify" | "effect" | "runtime" | "runtimeStored"

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

/** A process's CPU time so far (user + system), in µs, from /proc (Linux). */
const cpuTimeUs = (pid: number | undefined): number => {
  if (pid === undefined) throw new Error("no pid")
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  // Fields after the command, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  const ticks = Number(fields[11]) + Number(fields[12])
  return (ticks / CLOCK_TICKS) * 1e6
}
// USER_HZ: 100 on Linux everywhere it matters.
const CLOCK_TICKS = 100

/** A measured run against `target`, with its CPU per request. */
const measured = async (target: Server, options: Options, seconds: number): Promise<Result & { cpuUs: number }> => {
  await cannon({ ...options, duration: 1 })
  const before = cpuTimeUs(target.child.pid)
  const result = await cannon({ ...options, duration: seconds })
  const used = cpuTimeUs(target.child.pid) - before
  return { ...result, cpuUs: used / Math.max(1, result.requests.total) }
}

const readRun = async (target: Server, path: string, seconds: number): Promise<ReadRun> => {
  const result = await measured(target, { url: `${target.url}${path}` }, seconds)
  if (result.non2xx > 0 || result.errors > 0) {
    throw new Error(`${target.url}${path}: ${result.non2xx} non-2xx, ${result.errors} errors`)
  }
  return { rps: result.requests.average, p99: result.latency.p99, cpuUs: result.cpuUs }
}

/** Keeps each target's best round (by rate), alternating targets: the machine is shared. */
const bestOfRounds = async <T extends string, R extends { readonly rps: number }>(
  targets: ReadonlyArray<T>,
  rounds: number,
  run: (target: T) => Promise<R>
): Promise<Record<T, R>> => {
  const best = new Map<T, R>()
  for (let round = 0; round < rounds; round++) {
    for (const target of targets) {
      const result = await run(target)
      const previous = best.get(target)
      if (previous === undefined || result.rps > previous.rps) best.set(target, result)
    }
  }
  const record: Partial<Record<T, R>> = {}
  for (const target of targets) {
    const result = best.get(target)
    if (result === undefined) throw new Error(`no run for ${target} (rounds: ${rounds})`)
    record[target] = result
  }
  return record as Record<T, R>
}

/**
 * GET /v1/workers/{id}: raw node:http, Fastify, the minimal HttpApi server,
 * and the runtime for a Worker in use (held in memory: what a Backend polls
 * while it drives it) and for one only in the store.
 */
export const restRead = async ({ rounds, seconds }: { seconds: number; rounds: number }): Promise<ReadResults> => {
  // Passivation after an hour: the Worker in use stays in memory for the whole run.
  const runtime = await startServer(BIN, ["--port", "0", "--passivate-after", "1h"])
  const worker = await createWorker(runtime.url)
  const id = workerId(worker)
  const storedId = workerId(await createWorker(runtime.url))
  // An input brings the Worker into memory; its echo turn ends at once.
  await fetchJson(`${runtime.url}/v1/workers/${id}/input`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ content: "hello" })
  })
  const env = { BENCH_WORKER: JSON.stringify((await fetchJson(`${runtime.url}/v1/workers/${id}`)).json) }
  const raw = await startServer(server("raw"), [], env)
  const fastify = await startServer(server("fastify"), [], env)
  const effect = await startServer(server("effect-min"), [], env)
  const servers: Record<ReadTarget, readonly [Server, string]> = {
    raw: [raw, id],
    fastify: [fastify, id],
    effect: [effect, id],
    runtime: [runtime, id],
    runtimeStored: [runtime, storedId]
  }
  try {
    return await bestOfRounds(
      ["raw", "fastify", "effect", "runtime", "runtimeStored"],
      rounds,
      (name) => readRun(servers[name][0], `/v1/workers/${servers[name][1]}`, seconds)
    )
  } finally {
    await Promise.all([raw.stop(), fastify.stop(), effect.stop(), runtime.stop()])
  }
}

export interface InputRun {
  /** Answers per second, whatever their status (202, or 409 Busy for the runtime). */
  readonly rps: number
  readonly p99: number
  readonly cpuUs: number
  /** Of the answers, the share that was 202. */
  readonly accepted: number
}

type InputTarget = "raw" | "effect" | "runtime" | "runtimeApi"

/**
 * POST /v1/workers/{id}/input: raw node:http and the minimal HttpApi server
 * parse and answer it without storing anything; the runtime records it (the
 * memory store) and runs an echo turn, over 256 Workers, answering 409 Busy
 * to an input for a Worker whose turn still runs: through the input lane,
 * and through HttpApi (a query in the URL, which the lane leaves to it).
 */
export const restInput = async ({ rounds, seconds }: { seconds: number; rounds: number }): Promise<
  Record<InputTarget, InputRun>
> => {
  const count = 256
  const runtime = await startServer(BIN, ["--port", "0", "--max-workers", String(count + 10)])
  const ids: Array<string> = []
  for (let i = 0; i < count; i++) ids.push(workerId(await createWorker(runtime.url)))
  const env = { BENCH_WORKER: JSON.stringify((await fetchJson(`${runtime.url}/v1/workers/${ids[0]}`)).json) }
  const raw = await startServer(server("raw"), [], env)
  const effect = await startServer(server("effect-min"), [], env)
  const body = JSON.stringify({ content: "hello from the bench" })
  const run = async (target: Server, workers: ReadonlyArray<string>, query = ""): Promise<InputRun> => {
    let next = 0
    const result = await measured(target, {
      url: target.url,
      requests: [{
        method: "POST",
        headers: { "content-type": "application/json" },
        setupRequest: (request: Request): Request => ({
          ...request,
          path: `/v1/workers/${workers[next++ % workers.length]}/input${query}`,
          body
        })
      }]
    }, seconds)
    const accepted = result.statusCodeStats["202"]?.count ?? 0
    const busy = result.statusCodeStats["409"]?.count ?? 0
    if (result.errors > 0 || accepted + busy < result.requests.total) {
      throw new Error(`${target.url}: ${result.errors} errors, ${JSON.stringify(result.statusCodeStats)}`)
    }
    return {
      rps: result.requests.average,
      p99: result.latency.p99,
      cpuUs: result.cpuUs,
      accepted: accepted / Math.max(1, result.requests.total)
    }
  }
  const first = ids.slice(0, 1)
  try {
    const runs: Record<InputTarget, () => Promise<InputRun>> = {
      raw: () => run(raw, first),
      effect: () => run(effect, first),
      runtime: () => run(runtime, ids),
      runtimeApi: () => run(runtime, ids, "?through=httpapi")
    }
    return await bestOfRounds(["raw", "effect", "runtime", "runtimeApi"], rounds, (name) => runs[name]())
  } finally {
    await Promise.all([raw.stop(), effect.stop(), runtime.stop()])
  }
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

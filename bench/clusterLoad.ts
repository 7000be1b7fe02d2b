// A closed-loop HTTP load for the cluster section: `concurrency` loops, each
// sending its next request when the previous one is answered, on keep-alive
// sockets, for a fixed time; every answer's latency (monotonic clock, µs
// precision: the hop's cost is a fraction of a millisecond to a few) and
// status.
import { Agent, request } from "node:http"
import { now, quantile } from "./lib.js"

export interface Call {
  readonly url: string
  readonly method: "GET" | "POST"
  readonly body?: string
}

export interface LoadResult {
  /** Answers per second, whatever their status. */
  readonly rps: number
  /** Milliseconds, every answer. */
  readonly p50: number
  readonly p99: number
  /** Answers by status; 0: no answer (a broken connection). */
  readonly statuses: ReadonlyMap<number, number>
  readonly total: number
  readonly seconds: number
}

/** Sends one request; resolves with its status (0 when it failed) once the body has been read. */
const send = (agent: Agent, call: Call): Promise<number> =>
  new Promise((resolve) => {
    const headers: Record<string, string> = call.body === undefined
      ? {}
      : { "content-type": "application/json", "content-length": String(Buffer.byteLength(call.body)) }
    const req = request(call.url, { agent, method: call.method, headers }, (response) => {
      response.resume()
      response.once("end", () => resolve(response.statusCode ?? 0))
      response.once("error", () => resolve(0))
    })
    req.once("error", () => resolve(0))
    req.end(call.body)
  })

/** Runs `concurrency` loops for `seconds`; `call(loop, n)` is loop `loop`'s `n`th request. */
export const closedLoop = async (options: {
  readonly concurrency: number
  readonly seconds: number
  readonly call: (loop: number, n: number) => Call
}): Promise<LoadResult> => {
  const agent = new Agent({ keepAlive: true, maxSockets: options.concurrency })
  const latencies: Array<number> = []
  const statuses = new Map<number, number>()
  const started = now()
  const end = started + BigInt(Math.round(options.seconds * 1e9))
  const loop = async (index: number) => {
    for (let n = 0; now() < end; n++) {
      const sent = now()
      const status = await send(agent, options.call(index, n))
      latencies.push(Number(now() - sent) / 1e6)
      statuses.set(status, (statuses.get(status) ?? 0) + 1)
    }
  }
  try {
    await Promise.all(Array.from({ length: options.concurrency }, (_, index) => loop(index)))
  } finally {
    agent.destroy()
  }
  const seconds = Number(now() - started) / 1e9
  return {
    rps: latencies.length / seconds,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    statuses,
    total: latencies.length,
    seconds
  }
}

/** The answers with `status`. */
export const countOf = (result: LoadResult, status: number): number => result.statuses.get(status) ?? 0

/** Fails when any answer has a status outside `allowed`: a broken run is not a figure. */
export const expectStatuses = (label: string, result: LoadResult, allowed: ReadonlyArray<number>): LoadResult => {
  const other = [...result.statuses].filter(([status]) => !allowed.includes(status))
  if (other.length > 0) {
    throw new Error(`${label}: unexpected answers ${JSON.stringify(other)} of ${result.total} (status 0: no answer)`)
  }
  return result
}

// Reliability under a flood: the bin (memory store) with a process profile
// whose child prints 1 MiB of "x\n" over and over (limits raised so that the
// turn goes on), and what another client sees meanwhile: `/healthz` and
// another Worker's input (answered, and its echo turn ended), against the same
// measurements on the same process without the flood.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { Agent, request } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { now, quantile, root, sleep, startServer } from "./lib.js"

const BIN = join(root, "dist", "node", "main.js")

/** Prints 1 MiB of `x\n`, again and again; stdout on a pipe blocks when the runtime lags. */
const FLOODER = "const chunk = Buffer.alloc(1 << 20, 'x\\n'); for (;;) require('fs').writeSync(1, chunk)"

export interface Samples {
  /** Milliseconds. */
  readonly p50: number
  readonly p99: number
  readonly count: number
}

export interface FloodRun {
  readonly healthz: Samples
  /** POST input to an idle echo Worker until 202. */
  readonly input: Samples
  /** POST input, then GET its turn with `waitMs` until it has ended. */
  readonly turn: Samples
}

export interface FloodResults {
  readonly quiet: FloodRun
  readonly flood: FloodRun
  /** Entries the flooding Worker recorded per second while measured. */
  readonly floodRate: number
}

interface Answer {
  readonly status: number
  readonly body: string
}

const send = (agent: Agent, method: string, url: string, body?: unknown): Promise<Answer> =>
  new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const req = request(url, {
      method,
      agent,
      headers: payload === undefined ? {} : { "content-type": "application/json" }
    }, (response) => {
      let text = ""
      response.setEncoding("utf8")
      response.on("data", (chunk: string) => (text += chunk))
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body: text }))
      response.on("error", reject)
    })
    req.on("error", reject)
    req.end(payload)
  })

const field = (body: string, path: ReadonlyArray<string>): unknown => {
  let value: unknown = JSON.parse(body)
  for (const key of path) {
    value = typeof value === "object" && value !== null && key in value
      ? (value as Record<string, unknown>)[key]
      : undefined
  }
  return value
}

const expect = (answer: Answer, status: number, what: string): Answer => {
  if (answer.status !== status) throw new Error(`${what}: ${answer.status} ${answer.body}`)
  return answer
}

const summary = (values: ReadonlyArray<number>): Samples => ({
  p50: quantile(values, 0.5),
  p99: quantile(values, 0.99),
  count: values.length
})

/**
 * For `seconds` (or until `samples` each): one client calls `/healthz` over
 * and over, another sends inputs to the echo Worker, each time waiting for its
 * turn to end. Both on keep-alive sockets of their own.
 */
const measure = async (url: string, echoId: string, samples: number, seconds: number): Promise<FloodRun> => {
  const until = now() + BigInt(Math.round(seconds * 1e9))
  const more = (values: ReadonlyArray<number>) => values.length < samples && now() < until
  const healthz: Array<number> = []
  const input: Array<number> = []
  const turn: Array<number> = []
  const healthAgent = new Agent({ keepAlive: true, maxSockets: 1 })
  const inputAgent = new Agent({ keepAlive: true, maxSockets: 1 })
  try {
    await Promise.all([
      (async () => {
        while (more(healthz)) {
          const start = now()
          expect(await send(healthAgent, "GET", `${url}/healthz`), 200, "healthz")
          healthz.push(Number(now() - start) / 1e6)
        }
      })(),
      (async () => {
        while (more(turn)) {
          const start = now()
          const accepted = expect(
            await send(inputAgent, "POST", `${url}/v1/workers/${echoId}/input`, { content: "hello from the bench" }),
            202,
            "input"
          )
          input.push(Number(now() - start) / 1e6)
          const number = String(field(accepted.body, ["entry", "turn"]))
          const ended = expect(
            await send(inputAgent, "GET", `${url}/v1/workers/${echoId}/turns/${number}?waitMs=30000`),
            200,
            "turn"
          )
          if (field(ended.body, ["status"]) !== "completed") throw new Error(`turn ${number}: ${ended.body}`)
          turn.push(Number(now() - start) / 1e6)
        }
      })()
    ])
  } finally {
    healthAgent.destroy()
    inputAgent.destroy()
  }
  return { healthz: summary(healthz), input: summary(input), turn: summary(turn) }
}

export const flood = async (
  { samples, seconds }: { samples: number; seconds: number }
): Promise<FloodResults> => {
  const dir = mkdtempSync(join(tmpdir(), "worker-runtime-bench-"))
  const profiles = join(dir, "profiles.json")
  writeFileSync(
    profiles,
    JSON.stringify({
      default: { engine: "echo" },
      flood: {
        engine: "process",
        command: [process.execPath, "-e", FLOODER],
        maxOutputBytes: Number.MAX_SAFE_INTEGER,
        maxOutputEntries: Number.MAX_SAFE_INTEGER
      }
    })
  )
  const server = await startServer(BIN, ["--port", "0", "--profiles", profiles])
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  try {
    const call = async (method: string, path: string, status: number, body?: unknown) =>
      expect(await send(agent, method, `${server.url}${path}`, body), status, `${method} ${path}`).body
    const create = async (profile: string) => String(field(await call("POST", "/v1/workers", 201, { profile }), ["id"]))
    const echoId = await create("default")
    const floodId = await create("flood")
    await measure(server.url, echoId, samples, 1)
    const quietRun = await measure(server.url, echoId, samples, seconds)

    await call("POST", `/v1/workers/${floodId}/input`, 202, { content: "go" })
    await sleep(1000)
    const lastSeq = async () => Number(field(await call("GET", `/v1/workers/${floodId}`, 200), ["lastSeq"]))
    const before = await lastSeq()
    const started = now()
    const floodRun = await measure(server.url, echoId, samples, seconds)
    const floodRate = (await lastSeq() - before) / (Number(now() - started) / 1e9)
    // Every line is kept (memory store): end it before it holds gigabytes.
    await call("POST", `/v1/workers/${floodId}/cancel`, 200, {})
    return { quiet: quietRun, flood: floodRun, floodRate }
  } finally {
    agent.destroy()
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

// Following a Worker: how long an engine's line takes to reach a consumer,
// in process (`Runtime.events`) and over SSE (`GET /v1/workers/{id}/events`),
// to one consumer and to 1,000; and what an idle SSE consumer costs the
// server. Baselines, in the same run: a bare EventEmitter + queue hand-off in
// process, and a raw node:http SSE server writing a frame when an
// EventEmitter fires. Every line carries the monotonic time taken just
// before its emit; arrival minus that is the latency.
import { Deferred, Effect, Fiber, Option, Stream } from "effect"
import { EventEmitter } from "node:events"
import { join } from "node:path"
import { makeEchoEngine, Runtime, RuntimeLive } from "../src/index.js"
import { ask, type Clients, Memory, startClients } from "./clients.js"
import { benchBuild, fetchJson, now, openFileLimits, quantile, quiet, type Server, sleep, startServer } from "./lib.js"
import { tickerEngine, tickerInput } from "./ticker.js"

export interface Latency {
  /** Milliseconds. */
  readonly p50: number
  readonly p99: number
  readonly samples: number
}

export interface FanOut {
  readonly consumers: number
  /** Per entry, ms from its emit until the last consumer had it. */
  readonly p50: number
  readonly max: number
  readonly entries: number
}

export interface Idle {
  readonly streams: number
  readonly failed: number
  readonly error: string | undefined
  /** Bytes per open stream, after GC. */
  readonly heapPerStream: number
  readonly rssPerStream: number
  /** The server's totals with the streams open. */
  readonly heapUsed: number
  readonly rss: number
}

export interface EventsResults {
  readonly inProcess: { readonly bare: Latency; readonly runtime: Latency }
  readonly sse: { readonly raw: Latency; readonly runtime: Latency }
  readonly fanOut: { readonly raw: FanOut; readonly runtime: FanOut }
  readonly idle: { readonly raw: Idle; readonly runtime: Idle }
  /** The soft open-file limit the server and consumer processes ran with. */
  readonly openFiles: number
  /** Whether the soft limit was raised (up to the hard one) for them. */
  readonly raised: boolean
}

export interface EventsOptions {
  /** Lines per latency run, and ms between them. */
  readonly lines: number
  readonly intervalMs: number
  readonly rounds: number
  readonly fanOutConsumers: number
  readonly fanOutEntries: number
  readonly idleStreams: number
}

const latencyOf = (values: ReadonlyArray<number>): Latency => ({
  p50: quantile(values, 0.5),
  p99: quantile(values, 0.99),
  samples: values.length
})

const elapsedMs = (stamp: bigint): number => Number(now() - stamp) / 1e6

// --- in process ---------------------------------------------------------------

/** An EventEmitter fired every `intervalMs`; its listener queues, a consumer loop awaits the queue. */
const bareHandOff = async (lines: number, intervalMs: number): Promise<Array<number>> => {
  const emitter = new EventEmitter()
  const queue: Array<bigint> = []
  let wake: (() => void) | undefined
  emitter.on("entry", (stamp: bigint) => {
    queue.push(stamp)
    wake?.()
    wake = undefined
  })
  const latencies: Array<number> = []
  const consumer = (async () => {
    while (latencies.length < lines) {
      if (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve))
      for (const stamp of queue.splice(0)) latencies.push(elapsedMs(stamp))
    }
  })()
  for (let i = 0; i < lines; i++) {
    await sleep(intervalMs)
    emitter.emit("entry", now())
  }
  await consumer
  return latencies
}

/** A ticker turn's lines through `Runtime.events` to a consumer fiber. */
const runtimeHandOff = (lines: number, intervalMs: number): Promise<Array<number>> =>
  Effect.runPromise(
    Effect.gen(function*() {
      const rt = yield* Runtime
      const worker = yield* rt.create({ profile: "ticker" })
      const following = yield* Deferred.make<void>()
      const latencies: Array<number> = []
      const consumer = yield* rt.events(worker.id).pipe(
        Stream.tap(() => Deferred.succeed(following, undefined)),
        Stream.filterMap((event) =>
          event.type === "entry" && event.entry.role === "worker" ? Option.some(event.entry.content) : Option.none()
        ),
        Stream.take(lines),
        Stream.runForEach((content) => Effect.sync(() => latencies.push(elapsedMs(BigInt(content))))),
        Effect.fork
      )
      yield* Deferred.await(following)
      yield* rt.input(worker.id, { content: tickerInput(lines, intervalMs) })
      yield* Fiber.join(consumer)
      return latencies
    }).pipe(
      Effect.provide(RuntimeLive({ profiles: { default: makeEchoEngine(), ticker: tickerEngine } })),
      quiet
    )
  )

// --- over HTTP ----------------------------------------------------------------

const workerId = (json: unknown): string => {
  if (typeof json === "object" && json !== null && "id" in json && typeof json.id === "string") return json.id
  throw new Error(`not a Worker: ${JSON.stringify(json)}`)
}

const post = (url: string, body: unknown) =>
  fetchJson(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })

const createTicker = async (url: string): Promise<string> =>
  workerId((await post(`${url}/v1/workers`, { profile: "ticker" })).json)

const startTicker = async (url: string, id: string, lines: number, intervalMs: number): Promise<void> => {
  const { json, status } = await post(`${url}/v1/workers/${id}/input`, { content: tickerInput(lines, intervalMs) })
  if (status !== 202) throw new Error(`input answered ${status}: ${JSON.stringify(json)}`)
}

const openAll = async (clients: Clients, url: string, count: number): Promise<void> => {
  const opened = await clients.open(url, count)
  if (opened.opened !== count) {
    throw new Error(`${url}: ${opened.opened} of ${count} streams opened (${opened.error ?? "no error"})`)
  }
}

/** `lines` ticker lines to `consumers` SSE consumers of one Worker. */
const follow = async (server: Server, clients: Clients, consumers: number, lines: number, intervalMs: number) => {
  const id = await createTicker(server.url)
  await openAll(clients, `${server.url}/v1/workers/${id}/events`, consumers)
  await startTicker(server.url, id, lines, intervalMs)
  const received = await clients.received(lines, lines * intervalMs + 60_000)
  await clients.close()
  if (received.complete !== consumers) {
    throw new Error(`${server.url}: ${received.complete} of ${consumers} consumers got all ${lines} entries`)
  }
  return received
}

const memoryOf = (server: Server) => ask(server.child, { type: "memory" }, Memory)

/** `count` idle streams on one Worker of a fresh server: its heap and RSS before and after, per stream. */
const idleStreams = async (server: Server, clients: Clients, count: number): Promise<Idle> => {
  const id = await createTicker(server.url)
  const url = `${server.url}/v1/workers/${id}/events`
  // Every code path once, so that the delta holds streams, not compiled code.
  await openAll(clients, url, 10)
  await clients.close()
  const before = await memoryOf(server)
  const opened = await clients.open(url, count, 200)
  // Let the sockets and timers settle before measuring.
  await sleep(1000)
  const after = await memoryOf(server)
  await clients.close()
  const streams = Math.max(1, opened.opened)
  return {
    streams: opened.opened,
    failed: opened.failed,
    error: opened.error,
    heapPerStream: (after.heapUsed - before.heapUsed) / streams,
    rssPerStream: (after.rss - before.rss) / streams,
    heapUsed: after.heapUsed,
    rss: after.rss
  }
}

/** Between fan-out entries: longer than one takes to reach every consumer. */
export const FAN_OUT_INTERVAL_MS = 1000

const SERVERS = { raw: "sse-raw", runtime: "events-runtime" } as const
type Kind = keyof typeof SERVERS

export const events = async (options: EventsOptions): Promise<EventsResults> => {
  // In process, alternating, after a warm-up of each.
  await bareHandOff(50, options.intervalMs)
  await runtimeHandOff(50, options.intervalMs)
  const bare: Array<number> = []
  const runtime: Array<number> = []
  for (let round = 0; round < options.rounds; round++) {
    bare.push(...await bareHandOff(options.lines, options.intervalMs))
    runtime.push(...await runtimeHandOff(options.lines, options.intervalMs))
  }

  // Idle streams need a descriptor each in the server and in the consumers'
  // process: raise both soft limits up to the hard one when that helps.
  const limits = openFileLimits()
  const wanted = options.idleStreams + 512
  const raised = limits.soft < wanted && limits.hard > limits.soft
  const openFiles = raised ? Math.min(limits.hard, Math.max(wanted, 65_536)) : limits.soft
  const idleCount = Math.min(options.idleStreams, openFiles - 512)
  const serverOptions = raised
    ? { nodeArgs: ["--expose-gc"], ipc: true, openFiles }
    : { nodeArgs: ["--expose-gc"], ipc: true }
  const start = (kind: Kind) => startServer(join(benchBuild, "servers", `${SERVERS[kind]}.js`), [], {}, serverOptions)

  const clients = await startClients(raised ? openFiles : undefined)
  try {
    const sse: Record<Kind, Array<number>> = { raw: [], runtime: [] }
    const untilAll: Record<Kind, Array<number>> = { raw: [], runtime: [] }
    const idle: Partial<Record<Kind, Idle>> = {}
    for (const kind of ["raw", "runtime"] as const) {
      const server = await start(kind)
      try {
        await follow(server, clients, 1, 50, options.intervalMs)
        await follow(server, clients, Math.min(100, options.fanOutConsumers), 3, 100)
      } finally {
        await server.stop()
      }
    }
    for (let round = 0; round < options.rounds; round++) {
      for (const kind of ["raw", "runtime"] as const) {
        const server = await start(kind)
        try {
          sse[kind].push(...(await follow(server, clients, 1, options.lines, options.intervalMs)).latencies)
          // Entries far enough apart that each reaches every consumer before the next.
          const fan = await follow(server, clients, options.fanOutConsumers, options.fanOutEntries, FAN_OUT_INTERVAL_MS)
          untilAll[kind].push(...fan.untilAll)
        } finally {
          await server.stop()
        }
      }
    }
    for (const kind of ["raw", "runtime"] as const) {
      const server = await start(kind)
      try {
        idle[kind] = await idleStreams(server, clients, idleCount)
      } finally {
        await server.stop()
      }
    }
    const fanOutOf = (kind: Kind): FanOut => ({
      consumers: options.fanOutConsumers,
      p50: quantile(untilAll[kind], 0.5),
      max: quantile(untilAll[kind], 1),
      entries: untilAll[kind].length
    })
    const idleOf = (kind: Kind): Idle => {
      const result = idle[kind]
      if (result === undefined) throw new Error(`no idle run for ${kind}`)
      return result
    }
    return {
      inProcess: { bare: latencyOf(bare), runtime: latencyOf(runtime) },
      sse: { raw: latencyOf(sse.raw), runtime: latencyOf(sse.runtime) },
      fanOut: { raw: fanOutOf("raw"), runtime: fanOutOf("runtime") },
      idle: { raw: idleOf("raw"), runtime: idleOf("runtime") },
      openFiles,
      raised
    }
  } finally {
    await clients.stop()
  }
}

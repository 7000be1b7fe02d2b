// Model engines: how long a delta takes from the model server to a follower,
// over SSE (`GET /v1/workers/{id}/events`) and in process (`Runtime.events`),
// and how many deltas a second one runtime relays to 1,000 SSE followers of
// one Worker. The model server (scripts/modelServer, OpenAI Responses SSE)
// runs in this process; the latency consumers too, so that departure and
// arrival are read off one clock. Baselines in the same run: a raw node:http
// pass-through proxy (bench/servers/model-proxy.ts) and, in process, a bare
// node:http client of the model server (bench/modelStream.ts).
import { Deferred, Effect, Fiber, ManagedRuntime, Stream } from "effect"
import { join } from "node:path"
import { makeGate, reply } from "../scripts/modelServer/Script.js"
import { type RunningModelServer, startModelServer } from "../scripts/modelServer/Server.js"
import { makeOpenAiEngine } from "../src/ai/index.js"
import { makeEchoEngine, Runtime, RuntimeLive } from "../src/index.js"
import { benchBuild, fetchJson, now, openFileLimits, quantile, type Server, sleep, startServer } from "./lib.js"
import { type ModelClients, startModelClients } from "./modelClients.js"
import { streamDeltas } from "./modelStream.js"
import { entryOf, openSse } from "./sse.js"
import { cpuMsOf } from "./stored.js"

export interface Latency {
  /** Milliseconds. */
  readonly p50: number
  readonly p99: number
  readonly samples: number
}

export interface Relay {
  readonly followers: number
  /** Deltas in the reply. */
  readonly deltas: number
  /** Deltas per second, from the model request's arrival to the last delta on any follower (best round). */
  readonly perSecond: number
  /** Of the delta text the followers should have had, what they got (that round). */
  readonly delivered: number
  /** CPU the relaying server, the followers' process and the model server (this process) used meanwhile, in cores. */
  readonly serverCores: number
  readonly clientCores: number
  readonly modelCores: number
  /** The relaying server's CPU per delta per follower (µs): its cost, whatever else the machine runs. */
  readonly serverUsPerDelivery: number
}

export interface ModelResults {
  readonly latency: {
    readonly proxy: Latency
    readonly sse: Latency
    readonly bare: Latency
    readonly inProcess: Latency
  }
  readonly fanOut: { readonly proxy: Relay; readonly runtime: Relay }
  /** Samples per path and round, and ms between deltas. */
  readonly deltas: number
  readonly intervalMs: number
}

export interface ModelOptions {
  /** Deltas per latency round, ms between them, rounds. */
  readonly deltas: number
  readonly intervalMs: number
  readonly rounds: number
  readonly followers: number
  /** Deltas of the long reply relayed to the followers, and its rounds. */
  readonly fanOutDeltas: number
  readonly fanOutRounds: number
}

/** The text of delta `i`: its index, so that a consumer can tell which departure it matches. */
const markers = (count: number) => Array.from({ length: count }, (_, i) => `${i}|`)

interface Sink {
  readonly sent: Array<bigint>
  readonly latencies: Array<number>
  readonly onText: (text: string, at: bigint) => void
  readonly end: () => void
  readonly all: Promise<void>
  readonly ended: Promise<void>
}

const makeSink = (count: number): Sink => {
  const sent: Array<bigint> = []
  const latencies: Array<number> = []
  let received = 0
  let allIn: () => void = () => {}
  let end: () => void = () => {}
  const all = new Promise<void>((resolve) => (allIn = resolve))
  const ended = new Promise<void>((resolve) => (end = resolve))
  return {
    sent,
    latencies,
    all,
    ended,
    end: () => end(),
    onText: (text, at) => {
      // Deltas may arrive joined: every marker in the text counts.
      for (const part of text.split("|")) {
        const departed = part === "" ? undefined : sent[Number(part)]
        if (departed === undefined) continue
        latencies.push(Number(at - departed) / 1e6)
        if (++received === count) allIn()
      }
    }
  }
}

const within = <A>(promise: Promise<A>, ms: number, what: string): Promise<A> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`model bench: ${what} took over ${ms} ms`)), ms)
    promise.then((value) => {
      clearTimeout(timer)
      resolve(value)
    }, reject)
  })

/** Resolves (with the time) when the model server has more than `count` requests. */
const requestAfter = (model: RunningModelServer, count: number): Promise<bigint> =>
  new Promise((resolve) => model.when((requests) => requests.length > count, () => resolve(now())))

/**
 * One paced reply: `count` deltas, one released every `intervalMs` once the
 * request has arrived, each departure time taken just before its release.
 */
const paced = async (
  model: RunningModelServer,
  sink: Sink,
  count: number,
  intervalMs: number,
  begin: () => Promise<void>
) => {
  const gate = makeGate()
  model.enqueue(reply("", { deltas: markers(count), gate }))
  const arrived = requestAfter(model, model.requests().length)
  await begin()
  await within(arrived, 30_000, "the model request")
  // The server writes the reply's head, then waits on the gate.
  await sleep(20)
  for (let i = 0; i < count; i++) {
    await sleep(intervalMs)
    sink.sent[i] = now()
    gate.release(1)
  }
  await within(sink.all, 60_000, `${count} deltas`)
  gate.release()
  await within(sink.ended, 60_000, "the reply's end")
}

const textOf = (data: string): string => {
  const json: unknown = JSON.parse(data)
  return typeof json === "object" && json !== null && "text" in json && typeof json.text === "string" ? json.text : ""
}

const post = async (url: string, body: unknown): Promise<unknown> => {
  const { json, status } = await fetchJson(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body)
  })
  if (status >= 300) throw new Error(`${url} answered ${status}: ${JSON.stringify(json)}`)
  return json
}

const createModelWorker = async (url: string): Promise<string> => {
  const json = await post(`${url}/v1/workers`, { profile: "model" })
  if (typeof json === "object" && json !== null && "id" in json && typeof json.id === "string") return json.id
  throw new Error(`not a Worker: ${JSON.stringify(json)}`)
}

/** Deltas to an SSE follower: of the proxy (`/events`, `/start`) or of a runtime (a new model Worker). */
const overSse = async (
  model: RunningModelServer,
  server: Server,
  kind: "proxy" | "runtime",
  count: number,
  intervalMs: number
) => {
  const sink = makeSink(count)
  const id = kind === "runtime" ? await createModelWorker(server.url) : undefined
  const stream = openSse(
    id === undefined ? `${server.url}/events` : `${server.url}/v1/workers/${id}/events`,
    (frame, at) => {
      if (frame.event === "delta") sink.onText(textOf(frame.data), at)
      else if (frame.event === "end" || (frame.event === "entry" && entryOf(frame.data)?.role === "runtime")) sink.end()
    }
  )
  await stream.opened
  await paced(model, sink, count, intervalMs, async () => {
    if (id === undefined) await post(`${server.url}/start`, {})
    else await post(`${server.url}/v1/workers/${id}/input`, { content: "go" })
  })
  stream.close()
  await stream.closed
  return sink.latencies
}

/** Deltas to a bare node:http client of the model server in this process. */
const bare = async (model: RunningModelServer, count: number, intervalMs: number) => {
  const sink = makeSink(count)
  await paced(model, sink, count, intervalMs, async () => {
    const reply = streamDeltas(`${model.url}/v1/responses`, {
      model: "bench",
      input: [{ role: "user", content: "go" }],
      stream: true
    }, (texts, at) => {
      for (const text of texts) sink.onText(text, at)
    })
    void reply.ended.then(sink.end)
  })
  return sink.latencies
}

type InProcess = ManagedRuntime.ManagedRuntime<Runtime, unknown>

/** Deltas through `Runtime.events` to a consumer fiber, a runtime in this process. */
const inProcess = (runtime: InProcess, model: RunningModelServer, count: number, intervalMs: number) =>
  runtime.runPromise(Effect.gen(function*() {
    const rt = yield* Runtime
    const worker = yield* rt.create({ profile: "model" })
    const sink = makeSink(count)
    const following = yield* Deferred.make<void>()
    const consumer = yield* rt.events(worker.id).pipe(
      Stream.tap(() => Deferred.succeed(following, undefined)),
      Stream.runForEachWhile((event) =>
        Effect.sync(() => {
          if (event.type === "delta") sink.onText(event.text, now())
          else if (event.type === "entry" && event.entry.role === "runtime") {
            sink.end()
            return false
          }
          return true
        })
      ),
      Effect.fork
    )
    yield* Deferred.await(following)
    yield* Effect.promise(() =>
      paced(
        model,
        sink,
        count,
        intervalMs,
        () => runtime.runPromise(rt.input(worker.id, { content: "go" })).then(() => {})
      )
    )
    yield* Fiber.join(consumer)
    return sink.latencies
  }))

/** A long reply of `deltas` small deltas, unpaced, to every follower `clients` holds on `url`. */
const relay = async (
  model: RunningModelServer,
  server: Server,
  clients: ModelClients,
  url: string,
  followers: number,
  deltas: number,
  begin: () => Promise<void>
): Promise<Relay> => {
  const opened = await clients.open(url, followers)
  if (opened.opened !== followers) {
    throw new Error(`${url}: ${opened.opened} of ${followers} streams opened (${opened.error ?? "no error"})`)
  }
  const piece = "tok "
  model.enqueue(reply("", { deltas: Array.from({ length: deltas }, () => piece) }))
  const arrived = requestAfter(model, model.requests().length)
  const pid = server.child.pid ?? 0
  const serverCpu = cpuMsOf(pid)
  const clientCpu = cpuMsOf(clients.pid)
  const ownCpu = process.cpuUsage()
  await begin()
  const start = await within(arrived, 30_000, "the model request")
  const got = await clients.relayed(300_000)
  const serverMs = cpuMsOf(pid) - serverCpu
  const clientMs = cpuMsOf(clients.pid) - clientCpu
  const own = process.cpuUsage(ownCpu)
  await clients.close()
  if (got.ended !== followers) throw new Error(`${url}: ${got.ended} of ${followers} followers saw the reply end`)
  const seconds = Number(BigInt(got.lastAt) - start) / 1e9
  return {
    followers,
    deltas,
    perSecond: deltas / seconds,
    delivered: got.chars / (piece.length * deltas * followers),
    serverCores: serverMs / 1000 / seconds,
    clientCores: clientMs / 1000 / seconds,
    modelCores: (own.user + own.system) / 1e6 / seconds,
    serverUsPerDelivery: (serverMs * 1000) / (deltas * followers)
  }
}

const latencyOf = (values: ReadonlyArray<number>): Latency => ({
  p50: quantile(values, 0.5),
  p99: quantile(values, 0.99),
  samples: values.length
})

const best = (relays: ReadonlyArray<Relay>): Relay => relays.reduce((a, b) => (b.perSecond > a.perSecond ? b : a))

export const modelBench = async (options: ModelOptions): Promise<ModelResults> => {
  const model = await startModelServer()
  const apiUrl = `${model.url}/v1`
  // Sockets for the followers in the server and the followers' process.
  const limits = openFileLimits()
  const wanted = options.followers + 512
  const openFiles = limits.soft < wanted && limits.hard > limits.soft ? Math.min(limits.hard, wanted * 2) : undefined
  const serverOptions = openFiles === undefined ? {} : { openFiles }
  const proxy = await startServer(join(benchBuild, "servers", "model-proxy.js"), [apiUrl], {}, serverOptions)
  const runtimeServer = await startServer(join(benchBuild, "servers", "model-runtime.js"), [apiUrl], {}, serverOptions)
  const local: InProcess = ManagedRuntime.make(
    RuntimeLive({ profiles: { default: makeEchoEngine(), model: makeOpenAiEngine({ model: "bench", apiUrl }) } })
  )
  const clients = await startModelClients(openFiles)
  try {
    const paths = {
      proxy: () => overSse(model, proxy, "proxy", options.deltas, options.intervalMs),
      sse: () => overSse(model, runtimeServer, "runtime", options.deltas, options.intervalMs),
      bare: () => bare(model, options.deltas, options.intervalMs),
      inProcess: () => inProcess(local, model, options.deltas, options.intervalMs)
    }
    const order = ["proxy", "sse", "bare", "inProcess"] as const
    const samples: Record<(typeof order)[number], Array<number>> = { proxy: [], sse: [], bare: [], inProcess: [] }
    // A warm-up of each, then the rounds, the paths alternating.
    for (const path of order) await paths[path]()
    for (let round = 0; round < options.rounds; round++) {
      for (const path of order) samples[path].push(...await paths[path]())
    }

    const relays: { proxy: Array<Relay>; runtime: Array<Relay> } = { proxy: [], runtime: [] }
    const fanOut = {
      proxy: (deltas: number) =>
        relay(model, proxy, clients, `${proxy.url}/events`, options.followers, deltas, async () => {
          await post(`${proxy.url}/start`, {})
        }),
      runtime: async (deltas: number) => {
        const id = await createModelWorker(runtimeServer.url)
        return relay(
          model,
          runtimeServer,
          clients,
          `${runtimeServer.url}/v1/workers/${id}/events`,
          options.followers,
          deltas,
          async () => {
            await post(`${runtimeServer.url}/v1/workers/${id}/input`, { content: "go" })
          }
        )
      }
    }
    await fanOut.proxy(Math.min(200, options.fanOutDeltas))
    await fanOut.runtime(Math.min(200, options.fanOutDeltas))
    for (let round = 0; round < options.fanOutRounds; round++) {
      relays.proxy.push(await fanOut.proxy(options.fanOutDeltas))
      relays.runtime.push(await fanOut.runtime(options.fanOutDeltas))
    }
    return {
      latency: {
        proxy: latencyOf(samples.proxy),
        sse: latencyOf(samples.sse),
        bare: latencyOf(samples.bare),
        inProcess: latencyOf(samples.inProcess)
      },
      fanOut: { proxy: best(relays.proxy), runtime: best(relays.runtime) },
      deltas: options.deltas,
      intervalMs: options.intervalMs
    }
  } finally {
    await clients.stop()
    await local.dispose()
    await runtimeServer.stop()
    await proxy.stop()
    await model.close()
  }
}

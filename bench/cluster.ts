// The cluster section (docs/cluster.md): runners of the built bin on a
// PostgreSQL server of the section's own (bench/postgresServer.ts). In one
// database, one runner, then two, then three: input throughput at each size;
// then, with three, a GET and an input through a runner that does not own
// the Worker against its owner, a follower on another runner against one on
// the owner, and the time to failover after `kill -9` of a runner.
import { loadavg } from "node:os"
import { type EventsAcross, eventsAcross } from "./clusterEvents.js"
import { type Failover, failover } from "./clusterFailover.js"
import { type Call, closedLoop, countOf, expectStatuses, type LoadResult } from "./clusterLoad.js"
import {
  type ClusterRunner,
  killRunner,
  ownersOf,
  type RunnerSpec,
  startRunner,
  waitForRunners
} from "./clusterRunners.js"
import { withPostgres } from "./postgresServer.js"

export interface ClusterOptions {
  readonly quick: boolean
}

export interface Hop {
  readonly owner: LoadResult
  readonly other: LoadResult
}

/** A request through the owner and through another runner, `HOP_CONCURRENCY` at once and one at a time. */
export interface Hops {
  readonly loaded: Hop
  readonly single: Hop
}

export interface Throughput {
  readonly runners: number
  /** Inputs answered 202 per second. */
  readonly accepted: number
  /** Inputs refused 409 Busy per second (a Worker's turn still running). */
  readonly busy: number
  readonly p50: number
  readonly p99: number
}

export interface ClusterFigures {
  readonly throughput: ReadonlyArray<Throughput>
  readonly get: Hops
  readonly input: Hops
  readonly events: EventsAcross
  readonly failover: Failover
  readonly workers: number
  readonly concurrency: { readonly hop: number; readonly throughput: number }
  readonly seconds: number
  /** Seconds to start the first runner, to /readyz 200. */
  readonly firstStartMs: number
  /** The 1-minute load average at the section's start and end. */
  readonly load: { readonly start: number; readonly end: number }
  /** The failure detection the runners ran with (the default). */
  readonly failureDetection: string
}

const HOP_CONCURRENCY = 8
const THROUGHPUT_CONCURRENCY = 32
const KILLS = 3
/** WORKER_RUNTIME_FAILURE_DETECTION's default (src/node/Config.ts); the runners are started without it. */
const FAILURE_DETECTION = "10s"

const json = { "content-type": "application/json" }

const workerIdOf = (body: unknown): string => {
  if (typeof body === "object" && body !== null && "id" in body && typeof body.id === "string") return body.id
  throw new Error(`not a Worker: ${JSON.stringify(body)}`)
}

const createWorker = async (url: string): Promise<string> => {
  const response = await fetch(`${url}/v1/workers`, { method: "POST", headers: json, body: "{}" })
  if (response.status !== 201 && response.status !== 200) throw new Error(`create answered ${response.status}`)
  return workerIdOf(await response.json())
}

const INPUT = JSON.stringify({ content: "hello from the cluster bench" })

const inputCall = (url: string, id: string): Call => ({
  url: `${url}/v1/workers/${id}/input`,
  method: "POST",
  body: INPUT
})

/** A warm-up second, then `seconds` measured. */
const measured = async (seconds: number, concurrency: number, call: (loop: number, n: number) => Call) => {
  await closedLoop({ concurrency, seconds: 1, call })
  return closedLoop({ concurrency, seconds, call })
}

/**
 * Inputs over all `ids` (each loop its own slice of them, in turn), loop `i`
 * sending through runner `i mod runners`: most inputs take a hop.
 */
const throughput = async (runners: ReadonlyArray<ClusterRunner>, ids: ReadonlyArray<string>, seconds: number) => {
  const perLoop = Math.floor(ids.length / THROUGHPUT_CONCURRENCY)
  const result = expectStatuses(
    `inputs through ${runners.length} runners`,
    await measured(
      seconds,
      THROUGHPUT_CONCURRENCY,
      (loop, n) => inputCall(runners[loop % runners.length]!.url, ids[loop * perLoop + (n % perLoop)]!)
    ),
    [202, 409]
  )
  return {
    runners: runners.length,
    accepted: countOf(result, 202) / result.seconds,
    busy: countOf(result, 409) / result.seconds,
    p50: result.p50,
    p99: result.p99
  }
}

/** `rounds` rounds, owner and other alternating; each side keeps its best round (by rate). */
const hop = async (
  rounds: number,
  seconds: number,
  concurrency: number,
  allowed: ReadonlyArray<number>,
  call: (via: string, n: number) => Call,
  owner: ClusterRunner,
  other: ClusterRunner
): Promise<Hop> => {
  let best: { owner?: LoadResult; other?: LoadResult } = {}
  for (let round = 0; round < rounds; round++) {
    for (const [side, runner] of [["owner", owner], ["other", other]] as const) {
      let next = 0
      const result = expectStatuses(
        `through ${side} ${runner.name}`,
        await measured(seconds, concurrency, () => call(runner.url, next++)),
        allowed
      )
      const previous = best[side]
      if (previous === undefined || result.rps > previous.rps) best = { ...best, [side]: result }
    }
  }
  if (best.owner === undefined || best.other === undefined) throw new Error("no round measured")
  return { owner: best.owner, other: best.other }
}

export const cluster = ({ quick }: ClusterOptions): Promise<ClusterFigures> =>
  withPostgres(async (server) => {
    const started = performance.now()
    const loadAtStart = loadavg()[0] ?? NaN
    const store = await server.database("cluster")
    const spec = (name: string): RunnerSpec => ({ name, store })
    const runners: Array<ClusterRunner> = []
    const seconds = quick ? 2 : 5
    const workers = quick ? 96 : 192
    try {
      runners.push(await startRunner(spec("r1")))
      const firstStartMs = performance.now() - started
      await waitForRunners(runners)
      const ids: Array<string> = []
      for (let i = 0; i < workers; i++) ids.push(await createWorker(runners[0]!.url))
      const sizes: Array<Throughput> = [await throughput(runners, ids, seconds)]
      for (const name of ["r2", "r3"]) {
        runners.push(await startRunner(spec(name)))
        await waitForRunners(runners)
        sizes.push(await throughput(runners, ids, seconds))
      }
      // Every Worker has had inputs (persisted messages): its owner can be read from the database.
      const owners = await ownersOf(store, ids)
      const byRunner = runners.map((runner) => ids.filter((id) => owners.get(id) === runner.address))
      const [owner, other] = [runners[0]!, runners[1]!]
      const owned = byRunner[0]!
      if (owned.length === 0) throw new Error(`${owner.name} owns none of the ${ids.length} Workers`)
      const rounds = quick ? 1 : 2
      const hops = async (allowed: ReadonlyArray<number>, call: (via: string, n: number) => Call): Promise<Hops> => ({
        loaded: await hop(rounds, seconds, HOP_CONCURRENCY, allowed, call, owner, other),
        single: await hop(rounds, quick ? 1 : 2, 1, allowed, call, owner, other)
      })
      const get = await hops(
        [200],
        (via, n) => ({ url: `${via}/v1/workers/${owned[n % owned.length]!}`, method: "GET" })
      )
      const input = await hops([202, 409], (via, n) => inputCall(via, owned[n % owned.length]!))
      const events = await eventsAcross({
        owner: owner.url,
        other: other.url,
        workerId: owned[0]!,
        inputs: quick ? 50 : 200,
        warmup: 20
      })
      const failed = await failover({ runners, spec, store, workerIds: ids, kills: quick ? 1 : KILLS })
      return {
        throughput: sizes,
        get,
        input,
        events,
        failover: failed,
        workers,
        concurrency: { hop: HOP_CONCURRENCY, throughput: THROUGHPUT_CONCURRENCY },
        seconds,
        firstStartMs,
        load: { start: loadAtStart, end: loadavg()[0] ?? NaN },
        failureDetection: FAILURE_DETECTION
      }
    } finally {
      // The database goes with the server: no drain needed.
      await Promise.all(runners.map(killRunner))
    }
  })

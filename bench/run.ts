// `npm run bench`: every figure is a ratio against a baseline measured in the
// same run (the machine is shared and noisy). Prints a table and writes
// docs/benchmarks.md. `--quick` shortens every run (for a smoke test).
import { readFileSync, writeFileSync } from "node:fs"
import { availableParallelism, cpus } from "node:os"
import { join } from "node:path"
import { cluster } from "./cluster.js"
import { events } from "./events.js"
import { flood } from "./flood.js"
import { inProcess } from "./inprocess.js"
import { fmt, ms, root } from "./lib.js"
import { listFiltered, reclaim, TEAMS } from "./lifecycle.js"
import { modelBench } from "./model.js"
import { postgres } from "./postgres.js"
import { queueInputs } from "./queue.js"
import { restInput, restRead, restWrite } from "./rest.js"
import { heapPerWorker, scaleMemory, scaleSqlite, type Sizes, type Timings } from "./scale.js"
import { storeInputs } from "./store.js"
import { type AtCount, manyStored, passivation, startAtScale } from "./stored.js"
import { tracingCost } from "./tracing.js"

interface Row {
  readonly area: string
  readonly measure: string
  readonly value: string
  readonly baseline: string | undefined
  readonly target: string | undefined
}

const quick = process.argv.includes("--quick")
// `--only=read,write,inprocess,store,scale,events,queue,lifecycle,flood,tracing,postgres,model,cluster` runs
// some sections (no docs written, but for `--only=model` and `--only=cluster`, which rewrite their own sections
// of docs/benchmarks.md).
const only = process.argv.find((arg) => arg.startsWith("--only="))?.slice("--only=".length).split(",")
const wanted = (section: string) => only === undefined || only.includes(section)
const started = Date.now()
const rows: Array<Row> = []
const row = (area: string, measure: string, value: string, baseline?: string, target?: string) => {
  rows.push({ area, measure, value, baseline, target })
  console.log(`${area.padEnd(12)} ${measure.padEnd(58)} ${value.padStart(14)}  ${baseline ?? ""}  ${target ?? ""}`)
}
const ratio = (a: number, b: number) => a / b
const verdict = (met: boolean) => (met ? "met" : "not met")

console.log(
  `worker-runtime benchmarks${quick ? " (quick)" : ""}: node ${process.version}, ${availableParallelism()} cores (${
    cpus()[0]?.model ?? "?"
  })`
)

// 1. REST read
// The raw read rate is the write section's baseline too (NaN when read is not run).
let rawReadRps = NaN
if (wanted("read")) {
  const read = await restRead({ seconds: quick ? 2 : 6, rounds: quick ? 1 : 2 })
  rawReadRps = read.raw.rps
  const cpu = (us: number) => `${fmt(us)} µs CPU`
  row(
    "REST read",
    "raw node:http, GET /v1/workers/{id} (req/s, p99 ms)",
    `${fmt(read.raw.rps)} / ${read.raw.p99}`,
    `baseline, ${cpu(read.raw.cpuUs)}`
  )
  row(
    "REST read",
    "Fastify, same route (req/s, p99 ms)",
    `${fmt(read.fastify.rps)} / ${read.fastify.p99}`,
    `${ratio(read.fastify.rps, read.raw.rps).toFixed(2)}× raw, ${cpu(read.fastify.cpuUs)}`
  )
  row(
    "REST read",
    "minimal Effect HttpApi server, same route, no middleware (req/s, p99 ms)",
    `${fmt(read.effect.rps)} / ${read.effect.p99}`,
    `${ratio(read.effect.rps, read.raw.rps).toFixed(2)}× raw, ${cpu(read.effect.cpuUs)}`
  )
  const readRatio = ratio(read.runtime.rps, read.raw.rps)
  const readVsMin = ratio(read.runtime.rps, read.effect.rps)
  row(
    "REST read",
    "worker-runtime process, a Worker in use (fast lane) (req/s, p99 ms)",
    `${fmt(read.runtime.rps)} / ${read.runtime.p99}`,
    `${readRatio.toFixed(2)}× raw, ${readVsMin.toFixed(2)}× minimal HttpApi, ${cpu(read.runtime.cpuUs)} (${
      ratio(read.runtime.cpuUs, read.raw.cpuUs).toFixed(2)
    }× raw)`,
    `≥ 0.25× raw and ≥ 0.9× minimal: ${verdict(readRatio >= 0.25 && readVsMin >= 0.9)}`
  )
  row(
    "REST read",
    "worker-runtime process, a Worker only in the store (HttpApi) (req/s, p99 ms)",
    `${fmt(read.runtimeStored.rps)} / ${read.runtimeStored.p99}`,
    `${ratio(read.runtimeStored.rps, read.raw.rps).toFixed(2)}× raw, ${
      ratio(read.runtimeStored.rps, read.effect.rps).toFixed(2)
    }× minimal HttpApi, ${cpu(read.runtimeStored.cpuUs)}`
  )
}

// 2. REST write
if (wanted("write")) {
  const input = await restInput({ seconds: quick ? 2 : 6, rounds: quick ? 1 : 2 })
  const cpu = (us: number) => `${fmt(us)} µs CPU`
  row(
    "REST write",
    "raw node:http, POST /v1/workers/{id}/input, parsed, not stored (req/s, p99 ms)",
    `${fmt(input.raw.rps)} / ${input.raw.p99}`,
    `baseline, ${cpu(input.raw.cpuUs)}`
  )
  row(
    "REST write",
    "minimal Effect HttpApi server, same, payload schema (req/s, p99 ms)",
    `${fmt(input.effect.rps)} / ${input.effect.p99}`,
    `${ratio(input.effect.rps, input.raw.rps).toFixed(2)}× raw, ${cpu(input.effect.cpuUs)}`
  )
  const inputRatio = ratio(input.runtime.rps, input.raw.rps)
  row(
    "REST write",
    "worker-runtime process, recorded + echo turn over 256 Workers, 202 or 409 (input lane) (req/s, p99 ms)",
    `${fmt(input.runtime.rps)} / ${input.runtime.p99}`,
    `${inputRatio.toFixed(2)}× raw, ${ratio(input.runtime.rps, input.effect.rps).toFixed(2)}× minimal, ${
      cpu(input.runtime.cpuUs)
    }, ${fmt(input.runtime.accepted * 100)}% 202`,
    `≥ 0.3× raw: ${verdict(inputRatio >= 0.3)}`
  )
  row(
    "REST write",
    "the same through HttpApi (a query in the URL, which the lane leaves to it) (req/s, p99 ms)",
    `${fmt(input.runtimeApi.rps)} / ${input.runtimeApi.p99}`,
    `${ratio(input.runtimeApi.rps, input.raw.rps).toFixed(2)}× raw, ${
      ratio(input.runtimeApi.rps, input.effect.rps).toFixed(2)
    }× minimal, ${cpu(input.runtimeApi.cpuUs)}, ${fmt(input.runtimeApi.accepted * 100)}% 202`
  )
  const write = await restWrite({ seconds: quick ? 2 : 6, workers: 256 })
  row(
    "REST write",
    "POST input + echo turn over 256 Workers (accepted/s, p99 ms)",
    `${fmt(write.acceptedPerSecond)} / ${write.p99}`,
    `${ratio(write.acceptedPerSecond, rawReadRps).toFixed(2)}× raw read`
  )
  row("REST write", "  of which refused Busy (/s)", fmt(write.busyPerSecond), "")
}

// 3. In-process
if (wanted("inprocess")) {
  const local = await inProcess({ batch: 100, rounds: quick ? 100 : 600 })
  const localRatio = ratio(local.runtime, local.bare)
  row("in-process", "bare Map + Promise, input through the turn (inputs/s)", fmt(local.bare), "baseline")
  row(
    "in-process",
    "Runtime.input through the echo turn, memory store (inputs/s)",
    fmt(local.runtime),
    `${localRatio.toFixed(2)}× bare`,
    `≥ 0.5× bare: ${verdict(localRatio >= 0.5)}`
  )
}

// 4. Store
if (wanted("store")) {
  const durable = await storeInputs({ batch: 20, rounds: quick ? 10 : 40 })
  const durableRatio = ratio(durable.runtime, durable.raw)
  row("store", "raw better-sqlite3, same rows, 2 transactions per input (inputs/s)", fmt(durable.raw), "baseline")
  row(
    "store",
    "Runtime.input through the echo turn, SQLite store, one input at a time (inputs/s)",
    fmt(durable.runtime),
    `${durableRatio.toFixed(2)}× raw`,
    `≥ 0.5× raw: ${verdict(durableRatio >= 0.5)}`
  )
  row(
    "store",
    "  the same, inputs to the 20 Workers at once (group commit) (inputs/s)",
    fmt(durable.concurrent),
    `${ratio(durable.concurrent, durable.raw).toFixed(2)}× raw`
  )
}

// 5. Scale
/** Short, so that the passivation rows wait little; long enough that no actor goes before all are measured. */
const PASSIVATE_AFTER_MS = 2000
const sizes: Sizes = { small: 10, big: quick ? 100_000 : 1_000_000, workers: quick ? 20_000 : 100_000 }
if (wanted("scale")) {
  const idleWorkers = quick ? 20_000 : 100_000
  const heap = heapPerWorker(idleWorkers)
  row(
    "scale",
    `heap per idle Worker at ${fmt(idleWorkers)} Workers (bytes)`,
    fmt(heap),
    "",
    `≤ 2048 B: ${verdict(heap <= 2048)}`
  )
  // Heap per idle Worker while active and after passivation, against the
  // heap with the same Workers only stored (bench/passivate.ts).
  const passivated = quick ? 5000 : 20_000
  for (const store of ["memory", "sqlite"] as const) {
    const p = passivation(store, passivated, PASSIVATE_AFTER_MS)
    const per = (heap: number) => (heap - p.stored) / passivated
    const after = per(p.passivated)
    row(
      "scale",
      `${store}: heap with ${fmt(passivated)} Workers stored, never used (MiB; the store's bytes per Worker)`,
      `${(p.stored / 2 ** 20).toFixed(1)} / ${fmt((p.stored - p.start) / passivated)}`,
      "baseline"
    )
    row(
      "scale",
      `  each activated by one cancel, idle in memory (bytes per Worker over never used)`,
      fmt(per(p.active)),
      `${fmt(p.activeWorkers)} active; ${fmt(p.activateUs)} µs per activation`
    )
    row(
      "scale",
      `  all passivated (passivateAfterMs ${fmt(PASSIVATE_AFTER_MS)}) (bytes per Worker over never used)`,
      fmt(after),
      `${ratio(p.passivated, p.stored).toFixed(3)}× never used; none active ${fmt(p.passivatedAfterMs)} ms after`,
      `≤ 64 B: ${verdict(after <= 64)}`
    )
  }
  const stores: ReadonlyArray<readonly [string, (sizes: Sizes) => Promise<Timings>]> = [
    ["memory", scaleMemory],
    ["sqlite", scaleSqlite]
  ]
  for (const [store, measure] of stores) {
    const t = await measure(sizes)
    const pageRatio = ratio(t.bigPage, t.smallPage)
    row(
      "scale",
      `${store}: transcript page of 10 entries from a transcript of 10 (µs)`,
      (t.smallPage * 1e6).toFixed(1),
      "baseline"
    )
    row(
      "scale",
      `${store}: transcript page of 10 entries from a transcript of ${fmt(sizes.big)} (µs)`,
      (t.bigPage * 1e6).toFixed(1),
      `${pageRatio.toFixed(2)}× at 10`,
      `≤ 2×: ${verdict(pageRatio <= 2)}`
    )
    row("scale", `${store}: list page of 100 at 1,000 Workers (µs)`, (t.listFew * 1e6).toFixed(1), "baseline")
    row(
      "scale",
      `${store}: list page of 100 at ${fmt(sizes.workers)} Workers (µs)`,
      (t.listMany * 1e6).toFixed(1),
      `${ratio(t.listMany, t.listFew).toFixed(2)}× at 1,000`
    )
  }
  // The bin's start on SQLite stores of many Workers, against few (bench/stored.ts).
  const startRounds = quick ? 1 : 3
  const stored = quick ? 20_000 : 100_000
  const s = await startAtScale(stored, startRounds)
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1)
  row(
    "scale",
    `sqlite: bin spawned to /readyz 200, empty store (ms / RSS MiB, median of ${startRounds})`,
    `${fmt(s.empty.readyMs)} / ${mib(s.empty.rss)}`,
    `baseline (CPU ${fmt(s.empty.cpuMs)} ms)`
  )
  const startTime = ratio(s.full.readyMs, s.empty.readyMs)
  const startRss = ratio(s.full.rss, s.empty.rss)
  row(
    "scale",
    `sqlite: the same, ${fmt(stored)} Workers stored (ms / RSS MiB)`,
    `${fmt(s.full.readyMs)} / ${mib(s.full.rss)}`,
    `${startTime.toFixed(2)}× time, ${startRss.toFixed(2)}× RSS (CPU ${fmt(s.full.cpuMs)} ms: ${
      ratio(s.full.cpuMs, s.empty.cpuMs).toFixed(2)
    }×)`,
    `≤ 1.2× time, ≤ 1.1× RSS: ${verdict(startTime <= 1.2 && startRss <= 1.1)}`
  )
  const many = quick ? 100_000 : 1_000_000
  const lists = quick ? 50 : 200
  const gets = quick ? 50 : 100
  const m = await manyStored({ few: 1000, many, rounds: startRounds, lists, gets })
  const scaled = (
    label: string,
    unit: string,
    pick: (at: AtCount) => number,
    cpu?: (at: AtCount) => number
  ) => {
    const r = ratio(pick(m.many), pick(m.few))
    const show = (value: number) => value >= 1000 ? fmt(value) : ms(value)
    const cpuOf = (at: AtCount) => cpu === undefined ? "" : ` (CPU ${fmt(cpu(at))} ms)`
    row("scale", `sqlite: ${label} at 1,000 Workers (${unit})`, show(pick(m.few)), `baseline${cpuOf(m.few)}`)
    row(
      "scale",
      `  the same at ${fmt(many)} Workers`,
      show(pick(m.many)),
      `${r.toFixed(2)}× at 1,000${cpuOf(m.many)}`,
      `≤ 1.5×: ${verdict(r <= 1.5)}`
    )
  }
  scaled("bin spawned to /readyz 200", `ms, median of ${startRounds}`, (at) => at.readyMs, (at) => at.cpuMs)
  scaled("GET /v1/workers?limit=100", `ms, median of ${fmt(lists * startRounds)}`, (at) => at.listMs)
  scaled(
    "GET /v1/workers/{id} of a Worker not read before",
    `ms, median of ${fmt(gets * startRounds)}`,
    (at) => at.coldGetMs
  )
}

// 6. Events (Follow a Worker)
if (wanted("events")) {
  const e = await events({
    lines: quick ? 300 : 1500,
    intervalMs: 2,
    rounds: quick ? 1 : 2,
    fanOutConsumers: 1000,
    fanOutEntries: quick ? 4 : 10,
    idleStreams: quick ? 1000 : 10_000
  })
  const pair = (l: { p50: number; p99: number }) => `${ms(l.p50)} / ${ms(l.p99)}`
  row(
    "events",
    "in process: EventEmitter + queue hand-off, emit to consumer (ms p50 / p99)",
    pair(e.inProcess.bare),
    "baseline"
  )
  row(
    "events",
    "in process: Runtime.events, engine emit to consumer (ms p50 / p99)",
    pair(e.inProcess.runtime),
    `${ratio(e.inProcess.runtime.p99, e.inProcess.bare.p99).toFixed(1)}× bare p99`,
    `p99 ≤ 1 ms: ${verdict(e.inProcess.runtime.p99 <= 1)}`
  )
  const sseRatio = ratio(e.sse.runtime.p99, e.sse.raw.p99)
  row(
    "events",
    "SSE: raw node:http server, EventEmitter to frame to consumer (ms p50 / p99)",
    pair(e.sse.raw),
    "baseline"
  )
  row(
    "events",
    "SSE: worker-runtime server, engine emit to GET …/events consumer (ms p50 / p99)",
    pair(e.sse.runtime),
    `${sseRatio.toFixed(2)}× raw p99`,
    `≤ 2× raw p99: ${verdict(sseRatio <= 2)}`
  )
  const fanLabel = `${fmt(e.fanOut.raw.consumers)} SSE consumers of one Worker`
  row(
    "events",
    `fan-out: raw server, one entry to ${fanLabel}, until all have it (ms p50 / max)`,
    `${ms(e.fanOut.raw.p50)} / ${ms(e.fanOut.raw.max)}`,
    "baseline"
  )
  row(
    "events",
    `fan-out: worker-runtime, the same (ms p50 / max)`,
    `${ms(e.fanOut.runtime.p50)} / ${ms(e.fanOut.runtime.max)}`,
    `${ratio(e.fanOut.runtime.p50, e.fanOut.raw.p50).toFixed(2)}× raw p50`,
    `≤ 2× raw: ${verdict(ratio(e.fanOut.runtime.p50, e.fanOut.raw.p50) <= 2)}`
  )
  const perStream = (i: { heapPerStream: number; rssPerStream: number }) =>
    `${fmt(i.heapPerStream)} / ${fmt(i.rssPerStream)}`
  row(
    "events",
    `idle SSE consumer, raw server, at ${fmt(e.idle.raw.streams)} streams (heap / RSS bytes each)`,
    perStream(e.idle.raw),
    "baseline"
  )
  row(
    "events",
    `idle SSE consumer, worker-runtime, at ${fmt(e.idle.runtime.streams)} streams (heap / RSS bytes each)`,
    perStream(e.idle.runtime),
    `${ratio(e.idle.runtime.heapPerStream, e.idle.raw.heapPerStream).toFixed(2)}× raw heap`,
    `≤ 24 KiB heap: ${verdict(e.idle.runtime.heapPerStream <= 24 * 1024)}; ≤ 16 KiB (v2): ${
      verdict(e.idle.runtime.heapPerStream <= 16 * 1024)
    }`
  )
  const held = e.idle.runtime.failed === 0 && e.idle.runtime.streams >= 10_000
  const limit = `open-file limit ${fmt(e.openFiles)}${e.raised ? " (raised to the hard limit)" : ""}`
  row(
    "events",
    `idle streams held by one worker-runtime process (${limit})`,
    `${fmt(e.idle.runtime.streams)} open, ${fmt(e.idle.runtime.failed)} failed; heap ${
      fmt(e.idle.runtime.heapUsed / 2 ** 20)
    } MiB, RSS ${fmt(e.idle.runtime.rss / 2 ** 20)} MiB`,
    "",
    `10,000: ${
      e.idle.runtime.streams < 10_000 && e.idle.runtime.failed === 0 ? "not tried (limit or --quick)" : verdict(held)
    }`
  )
}

// 7. Queue (Busy policy)
if (wanted("queue")) {
  const inputs = quick ? 100 : 500
  const q = await queueInputs({ inputs, rounds: quick ? 2 : 3 })
  for (const [store, r] of [["memory", q.memory], ["sqlite", q.sqlite]] as const) {
    row(
      "queue",
      `${store}: one input at a time to one Worker, each turn to its end (inputs/s)`,
      fmt(r.oneAtATime),
      "baseline"
    )
    row(
      "queue",
      `${store}: ${fmt(inputs)} inputs at once with ifBusy: enqueue, until all turns ended (inputs/s)`,
      fmt(r.queued),
      `${ratio(r.queued, r.oneAtATime).toFixed(2)}× one at a time`,
      "none set"
    )
  }
}

// 8. Lifecycle (delete, idempotency, metadata filters)
if (wanted("lifecycle")) {
  const workers = quick ? 20_000 : 100_000
  const lists = await listFiltered(workers, quick ? 1000 : 4000)
  for (const [store, t] of [["sqlite", lists.sqlite], ["memory", lists.memory]] as const) {
    const listRatio = ratio(t.filtered, t.unfiltered)
    row(
      "lifecycle",
      `${store}: list page of 50 at ${fmt(workers)} Workers (µs)`,
      (t.unfiltered * 1e6).toFixed(1),
      "baseline"
    )
    row(
      "lifecycle",
      `${store}: the same, filtered by metadata { team: "t7" } (1 in ${TEAMS}) (µs)`,
      (t.filtered * 1e6).toFixed(1),
      `${listRatio.toFixed(2)}× unfiltered`,
      store === "sqlite" ? `≤ 2×: ${verdict(listRatio <= 2)}` : "none set"
    )
  }
  const r = reclaim(workers)
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1)
  row("lifecycle", "memory store: heap after start (MiB)", mib(r.start), "baseline")
  row(
    "lifecycle",
    `  with ${fmt(workers)} Workers created (MiB)`,
    mib(r.created),
    `${ratio(r.created, r.start).toFixed(2)}× start`
  )
  const reclaimRatio = ratio(r.deleted, r.start)
  row(
    "lifecycle",
    `  after all were stopped and deleted, then GC (MiB)`,
    mib(r.deleted),
    `${reclaimRatio.toFixed(3)}× start`,
    `≤ 1.1×: ${verdict(reclaimRatio <= 1.1 && r.left === 0)}`
  )
  row("lifecycle", `  after a second such cycle (MiB)`, mib(r.again), `${ratio(r.again, r.start).toFixed(3)}× start`)
  row(
    "lifecycle",
    `memory store: create, per Worker at up to ${fmt(workers)} (µs)`,
    (r.create * 1e6).toFixed(1),
    "baseline"
  )
  row(
    "lifecycle",
    `  stop, per Worker (µs)`,
    (r.stop * 1e6).toFixed(1),
    `${ratio(r.stop, r.create).toFixed(1)}× create`
  )
  row(
    "lifecycle",
    `  delete, per Worker (µs)`,
    (r.delete * 1e6).toFixed(1),
    `${ratio(r.delete, r.create).toFixed(1)}× create`
  )
}

// 9. Flood (reliability)
if (wanted("flood")) {
  const floodSeconds = quick ? 3 : 8
  const f = await flood({ samples: quick ? 500 : 5000, seconds: floodSeconds })
  const pair = (l: { p50: number; p99: number }) => `${ms(l.p50)} / ${ms(l.p99)}`
  const measures = [
    ["healthz", "GET /healthz"],
    ["input", "another Worker's input, POST answered"],
    ["turn", "another Worker's input to its echo turn's end"]
  ] as const
  for (const [key, label] of measures) {
    const floodRatio = ratio(f.flood[key].p99, f.quiet[key].p99)
    row("flood", `${label}, no flood (ms p50 / p99)`, pair(f.quiet[key]), "baseline")
    row(
      "flood",
      `  the same while one Worker floods output (ms p50 / p99)`,
      pair(f.flood[key]),
      `${floodRatio.toFixed(2)}× p99 (${fmt(f.flood[key].count)} samples in ${floodSeconds} s, ${
        fmt(f.quiet[key].count)
      } without)`,
      `≤ 2×: ${verdict(floodRatio <= 2)}`
    )
  }
  row("flood", "  entries the flooding Worker recorded meanwhile (/s)", fmt(f.floodRate), "")
}

// 10. Tracing (operability)
if (wanted("tracing")) {
  const t = await tracingCost({ seconds: quick ? 2 : 5, rounds: quick ? 1 : 2 })
  row("tracing", "GET /v1/workers/{id}, tracing off (requests/s)", fmt(t.offRps), "baseline")
  const noise = ratio(t.offAgainRps, t.offRps)
  row(
    "tracing",
    "  the same, tracing off again (the noise between two runs)",
    fmt(t.offAgainRps),
    `${noise.toFixed(2)}× off`,
    "no difference"
  )
  row(
    "tracing",
    "  the same, tracing on (spans over OTLP/HTTP to a sink)",
    fmt(t.onRps),
    `${ratio(t.onRps, t.offRps).toFixed(2)}× off (${fmt(t.spansReceived)} bytes of spans exported)`,
    "reported"
  )
}

// 11. PostgreSQL store (its own server, scripts/postgres.sh)
if (wanted("postgres")) {
  const p = await postgres({ quick })
  const one = ratio(p.oneAtATime.store, p.oneAtATime.raw)
  row("postgres", "raw pg, one input at a time, 2 transactions per input (inputs/s)", fmt(p.oneAtATime.raw), "baseline")
  row(
    "postgres",
    "Runtime.input, then its echo turn to the end, PostgreSQL store, one at a time (inputs/s)",
    fmt(p.oneAtATime.store),
    `${one.toFixed(2)}× raw`,
    `≥ 0.5× raw: ${verdict(one >= 0.5)}`
  )
  const many = ratio(p.concurrent.store, p.concurrent.raw.rate)
  const deadlocks = p.concurrent.raw.deadlocks
  row(
    "postgres",
    `raw pg, ${p.writers} Workers at once, a transaction per commit, pool of ${p.poolSize}, counts trigger on (inputs/s)`,
    fmt(p.concurrent.raw.rate),
    deadlocks === 0 ? "baseline" : `baseline (${fmt(deadlocks)} deadlocks run again)`
  )
  row(
    "postgres",
    `  the same through the Runtime, PostgreSQL store (group commit) (inputs/s)`,
    fmt(p.concurrent.store),
    `${many.toFixed(2)}× raw`,
    `≥ 1× raw: ${verdict(many >= 1)}`
  )
  const pages = [
    ["list", "list page of 50"],
    ["listByMetadata", "list page of 50 filtered by metadata { team: \"t7\" } (1 in 20)"],
    ["listByStatus", "list page of 50 filtered by status idle"],
    ["counts", "Runtime.info (Worker counts)"]
  ] as const
  for (const [key, label] of pages) {
    const r = ratio(p.many[key], p.few[key])
    row(
      "postgres",
      `${label} at ${fmt(p.sizes.fewWorkers)} Workers (µs, median of ${fmt(p.sizes.calls)})`,
      p.few[key].toFixed(1),
      "baseline"
    )
    row(
      "postgres",
      `  the same at ${fmt(p.sizes.manyWorkers)} Workers`,
      p.many[key].toFixed(1),
      `${r.toFixed(2)}× at ${fmt(p.sizes.fewWorkers)}`,
      `≤ 1.5×: ${verdict(r <= 1.5)}`
    )
  }
  const page = ratio(p.many.transcript, p.few.transcript)
  row(
    "postgres",
    `transcript page of 10 entries from a transcript of ${fmt(p.sizes.fewEntries)} (µs, median of ${
      fmt(p.sizes.calls)
    })`,
    p.few.transcript.toFixed(1),
    "baseline"
  )
  row(
    "postgres",
    `  the same from a transcript of ${fmt(p.sizes.manyEntries)}`,
    p.many.transcript.toFixed(1),
    `${page.toFixed(2)}× at ${fmt(p.sizes.fewEntries)}`,
    `≤ 1.5×: ${verdict(page <= 1.5)}`
  )
  console.log(
    `postgres: server started in ${fmt(p.startMs)} ms; seeded ${fmt(p.sizes.manyWorkers)} Workers and ${
      fmt(p.sizes.manyEntries)
    } entries in ${p.seedSeconds.many.toFixed(1)} s`
  )
}

// 12. Model engines (deltas from a model server to followers)
if (wanted("model")) {
  const m = await modelBench({
    deltas: quick ? 200 : 1000,
    intervalMs: 2,
    rounds: quick ? 1 : 2,
    followers: 1000,
    fanOutDeltas: quick ? 500 : 1000,
    fanOutRounds: quick ? 1 : 2
  })
  const pair = (l: { p50: number; p99: number }) => `${ms(l.p50)} / ${ms(l.p99)}`
  const { fanOut, latency } = m
  row(
    "model",
    "SSE: raw node:http pass-through proxy, model server delta to its follower (ms p50 / p99)",
    pair(latency.proxy),
    "baseline"
  )
  const sseRatio = ratio(latency.sse.p99, latency.proxy.p99)
  row(
    "model",
    "SSE: worker-runtime, openai engine, model server delta to GET …/events follower (ms p50 / p99)",
    pair(latency.sse),
    `${sseRatio.toFixed(2)}× proxy p99`,
    `p99 ≤ 2× proxy: ${verdict(sseRatio <= 2)}`
  )
  row(
    "model",
    "in process: bare node:http client of the model server, delta parsed (ms p50 / p99)",
    pair(latency.bare),
    `${ratio(latency.bare.p99, latency.proxy.p99).toFixed(2)}× proxy p99`
  )
  const localRatio = ratio(latency.inProcess.p99, latency.proxy.p99)
  row(
    "model",
    "in process: Runtime.events, model server delta to consumer fiber (ms p50 / p99)",
    pair(latency.inProcess),
    `${localRatio.toFixed(2)}× proxy p99, ${ratio(latency.inProcess.p99, latency.bare.p99).toFixed(2)}× bare p99`,
    `p99 ≤ 2× proxy: ${verdict(localRatio <= 2)}`
  )
  const relayed = (r: typeof fanOut.proxy) =>
    `${fmt(r.delivered * 100)}% of the text delivered; server CPU ${
      r.serverUsPerDelivery.toFixed(2)
    } µs per delta per follower; CPU: server ${r.serverCores.toFixed(2)}, followers ${
      r.clientCores.toFixed(2)
    }, model server ${r.modelCores.toFixed(2)} cores`
  const fanLabel = `a reply of ${fmt(fanOut.proxy.deltas)} deltas to ${fmt(fanOut.proxy.followers)} SSE followers`
  row(
    "model",
    `fan-out: raw proxy, ${fanLabel} (deltas/s)`,
    fmt(fanOut.proxy.perSecond),
    `baseline; ${relayed(fanOut.proxy)}`
  )
  row(
    "model",
    `fan-out: worker-runtime, ${fanLabel} of one Worker (deltas/s)`,
    fmt(fanOut.runtime.perSecond),
    `${ratio(fanOut.runtime.perSecond, fanOut.proxy.perSecond).toFixed(2)}× proxy; ${relayed(fanOut.runtime)}`,
    "reported"
  )
}

// 13. Cluster (runners of the bin on a PostgreSQL of its own; bench/cluster.ts)
if (wanted("cluster")) {
  const c = await cluster({ quick })
  const hopValue = (r: { p50: number; p99: number; rps: number }) => `${ms(r.p50)} / ${ms(r.p99)} / ${fmt(r.rps)}`
  const hopRows = (what: string, hops: typeof c.get) => {
    const { loaded, single } = hops
    const p50 = ratio(loaded.other.p50, loaded.owner.p50)
    const p99 = ratio(loaded.other.p99, loaded.owner.p99)
    row(
      "cluster",
      `${what} through the Worker's owner, ${c.concurrency.hop} at once (ms p50 / p99, req/s)`,
      hopValue(loaded.owner),
      "baseline"
    )
    row(
      "cluster",
      `  the same through a runner that does not own it`,
      hopValue(loaded.other),
      `${p50.toFixed(2)}× p50, ${p99.toFixed(2)}× p99, ${ratio(loaded.other.rps, loaded.owner.rps).toFixed(2)}× rate`,
      `≤ 2× latency: ${verdict(p50 <= 2 && p99 <= 2)}`
    )
    row("cluster", `  through the owner, one at a time (ms p50 / p99, req/s)`, hopValue(single.owner), "baseline")
    const oneP50 = ratio(single.other.p50, single.owner.p50)
    row(
      "cluster",
      `  through a runner that does not own it, one at a time`,
      hopValue(single.other),
      `${oneP50.toFixed(2)}× p50 (+${ms(single.other.p50 - single.owner.p50)} ms), ${
        ratio(single.other.p99, single.owner.p99).toFixed(2)
      }× p99`,
      `≤ 2× latency: ${verdict(oneP50 <= 2 && ratio(single.other.p99, single.owner.p99) <= 2)}`
    )
  }
  hopRows("GET /v1/workers/{id}", c.get)
  hopRows("POST …/input, echo turn (202 or 409)", c.input)
  const delivery = (d: typeof c.events.local) => `${ms(d.fromSend.p50)} / ${ms(d.fromSend.p99)}`
  row(
    "cluster",
    "events: input POST sent to its entry at an SSE follower on the owner (ms p50 / p99)",
    delivery(c.events.local),
    `baseline (${fmt(c.events.samples)} inputs, one at a time; POST to 202: ${ms(c.events.ackP50)} ms p50)`
  )
  const eventsP99 = ratio(c.events.across.fromSend.p99, c.events.local.fromSend.p99)
  row(
    "cluster",
    "  the same, follower on another runner (ms p50 / p99)",
    delivery(c.events.across),
    `+${ms(c.events.across.fromSend.p50 - c.events.local.fromSend.p50)} ms p50, ${eventsP99.toFixed(2)}× p99`,
    "reported"
  )
  const kills = c.failover.kills
  row(
    "cluster",
    `failover: kill -9 of a runner to all its Workers answering GET 200 elsewhere (s, median of ${kills.length})`,
    (c.failover.medianMs / 1000).toFixed(1),
    `failure detection ${c.failureDetection} (default); ${
      kills.map((k) => `${k.runner}: ${k.workers} Workers, ${(k.allBackMs / 1000).toFixed(1)} s`).join(", ")
    }`,
    `≤ 20 s: ${verdict(kills.every((k) => k.allBackMs <= 20_000))}`
  )
  const [one] = c.throughput
  for (const t of c.throughput) {
    row(
      "cluster",
      `inputs with echo turns, ${fmt(c.workers)} Workers, ${c.concurrency.throughput} at once, ${t.runners} runner${
        t.runners === 1 ? "" : "s"
      } (accepted/s, p99 ms)`,
      `${fmt(t.accepted)} / ${ms(t.p99)}`,
      t === one || one === undefined
        ? `baseline${t.busy > 0 ? `; ${fmt(t.busy)}/s refused Busy` : ""}`
        : `${ratio(t.accepted, one.accepted).toFixed(2)}× 1 runner${
          t.busy > 0 ? `; ${fmt(t.busy)}/s refused Busy` : ""
        }`,
      t.runners === 1 ? undefined : "reported (same 2 cores: not a scaling figure)"
    )
  }
  console.log(
    `cluster: first runner ready in ${fmt(c.firstStartMs)} ms; rejoins after a kill ${
      kills.map((k) => `${fmt(k.rejoinMs)} ms`).join(", ")
    }; first Worker back after a kill ${kills.map((k) => `${fmt(k.firstBackMs)} ms`).join(", ")}; load average ${
      c.load.start.toFixed(1)
    } at the start, ${c.load.end.toFixed(1)} at the end`
  )
}

const seconds = Math.round((Date.now() - started) / 1000)
console.log(`done in ${seconds} s`)

const tableOf = (of: ReadonlyArray<Row>) =>
  [
    "| area | measure | value | against the baseline | target |",
    "| --- | --- | ---: | --- | --- |",
    ...of.map((r) => `| ${r.area} | ${r.measure.trim()} | ${r.value} | ${r.baseline ?? ""} | ${r.target ?? ""} |`)
  ].join("\n")
const modelRows = rows.filter((r) => r.area === "model")
// Its prose as in docs/benchmarks.md; the figures in it are from the runs it names.
const modelSection = `
## Model engines

Rows from \`node build/bench/run.js --only=model\` (after \`npm run build &&
npx tsc -p tsconfig.tools.json\`; \`npm run bench\` runs the section too) on
2026-12-07, node v20.20.2, on the machine above: the table is a run on the
idle machine (load average under 1) at 15:20; the ranges below cover three
runs while other test suites and type checks ran on it (load average 5 to 7
on 2 cores) and four idle runs. About 2 minutes.

${tableOf(modelRows)}

How each figure is measured (see \`bench/model*.ts\`):

- **Latency**: the model server of the tests (\`scripts/modelServer\`, the
  OpenAI Responses API, streamed) runs in the bench process and answers each
  request with 1,000 deltas whose text is their index; the bench releases
  them one at a time, every 2 ms, through the reply's gate, and takes each
  delta's departure time (\`process.hrtime\`) just before its release. The
  consumers run in the bench process too, so departure and arrival are read
  off one clock. SSE: the worker-runtime server (\`RuntimeHttpServerLive\`,
  memory store, a profile on the \`openai\` engine pointed at the model
  server) in a child process, a new Worker per round followed by a
  \`node:http\` SSE consumer, against a raw \`node:http\` proxy in a child
  process that asks the model server for the same reply and writes each
  chunk's deltas to its followers as \`event: delta\` frames as it reads them
  (every frame's JSON parsed and written again, no store, no transcript).
  In process: a Runtime with the same profile in the bench process, a fiber
  following \`Runtime.events\`, against a bare \`node:http\` client of the
  model server parsing the same frames. A warm-up round of each, then 2
  rounds, the four paths alternating: 2,000 samples per path.
- **Fan-out**: 1,000 SSE followers (in a child process of their own) of one
  Worker, or of the proxy, while the model server sends a reply of 1,000
  deltas of 4 characters as fast as it writes (no pacing); from the model
  request's arrival until the last delta reached the last follower; each
  follower counts the delta text it got until the turn's \`runtime\` entry
  (the proxy's \`end\`). Best of 2 rounds after a warm-up, alternating. CPU
  time of the server (\`/proc/<pid>/stat\`), of the followers' process and of
  the bench process (the model server) over the same time.

Where it stands, and what bounds it:

- **A delta to an SSE follower, p99 ≤ 2× the proxy: not met** (idle: 3.2
  to 4.9×, p99 4.8 to 6.4 ms against 1.3 to 1.7 ms, p50 0.6 to 0.9 ms
  against 0.2 ms; loaded: 4.9 to 15×, p99 65 to 118 ms against 6.6 to 24
  ms). A larger young generation (\`--max-semi-space-size=32\`) changed
  nothing, so it is not the garbage collector's pauses. On the loaded
  machine the p99s of every path are its load (the bare client in process,
  which does almost nothing, reached 1.4 ms). The p50 is the runtime's own: the same delta reaches a
  follower of \`Runtime.events\` in process in 0.6 to 1.1 ms (the engine's
  \`fetch\` stream, \`@effect/ai\`'s event decoding and part stream, the actor,
  the follower), and the SSE hop adds 0.6 to 6 ms more, where the events
  section measures about 0.3 to 0.6 ms for an entry's SSE hop. Not explained
  yet: the next step is timestamps inside the server's process (delta out of
  the engine, frame pushed to the socket) to split the engine's part from the
  response's.
- **A delta to \`Runtime.events\` in process, p99 ≤ 2× the proxy: at the
  edge** (idle: 1.8 to 2.4×, p99 2.4 to 3.5 ms; loaded: 0.55 to 3.1×); 10 to
  66× the bare client's p99 in the same process, which only parses the
  frames: \`@effect/ai\`'s decoding of each event and its part stream are most
  of it.
- **Deltas per second to 1,000 SSE followers**: 177 to 204 a second (177,000
  to 204,000 frames a second written), 1.6 to 2.9× the proxy, every
  follower got all the text (none fell behind its bounded buffer). The wall
  rates are what the loaded machine left: the server used only 0.35 to 0.4
  of a core. The bound is the server's CPU per delta and follower: 1.9 to
  2.2 µs (the proxy 2.6 to 3.0 µs: it writes each delta to each follower
  as it reads it, while a runtime follower's pull takes every delta
  buffered since its last write, so deltas that arrive close together share
  a write); at one free core that is about 450 to 500 deltas a second to
  1,000 followers. Each follower still encodes its own frame of the same
  delta, as in the events fan-out.
`

const clusterRows = rows.filter((r) => r.area === "cluster")
// Its prose as in docs/benchmarks.md; the figures in it are from the runs it names.
const clusterSection = `
## Cluster

Rows from \`node build/bench/run.js --only=cluster\` (after \`npm run build &&
npx tsc -p tsconfig.tools.json\`; \`npm run bench\` runs the section too) on
2026-12-07, node v20.20.2, on the machine above while other test suites ran
on it (load average 4 to 10 on 2 cores): the table is the last of four
runs (at 17:39, after the runner sockets lost Nagle's algorithm), the
ranges below cover all four. The section starts its
own PostgreSQL server (as the PostgreSQL section does: \`scripts/postgres.sh\`, fsync on)
and runners of the built bin (\`--cluster --store postgres://…
--runner-address 127.0.0.1:<port>\`, docs/cluster.md) on loopback ports,
with the default failure detection (\`WORKER_RUNTIME_FAILURE_DETECTION\`
unset: 10 s); about 3 minutes.

${tableOf(clusterRows)}

How each figure is measured (see \`bench/cluster*.ts\`):

- **Runners**: one database; one runner, then a second, then a third, each
  waited for until every runner's \`GET /v1/runtime\` reports them all
  (\`cluster.runners\`) and their \`cluster.shards\` add up to the 300. A
  Worker's owner is read from the database: its persisted messages
  (\`cluster_messages.shard_id\`) name its shard as the cluster hashed it,
  and the runner whose connection (named \`worker-runtime runner
  <address>\`) holds that shard's advisory lock owns it.
- **Load**: closed loops in the bench process (\`node:http\`, keep-alive),
  each sending its next request when the last was answered; latency per
  request on the monotonic clock; a second's warm-up, then the measured
  run.
- **Throughput**: 192 Workers created through the first runner; 32 loops,
  each sending \`POST …/input\` (echo turn) to its own 6 Workers in turn,
  loop i through runner i mod n; 5 s with 1, then 2, then 3 runners, in that
  order, once each. With n runners about (n−1)/n of the inputs arrive at a
  runner that does not own the Worker. The runners, PostgreSQL and the
  client share the 2 cores: more runners here are more processes on the
  same CPU, not more capacity.
- **Through a non-owner**: with three runners, the Workers r1 owns (about a
  third of the 192); \`GET /v1/workers/{id}\` and \`POST …/input\` over
  them through r1 against through r2, 8 loops for 5 s, then one loop for
  2 s; 2 rounds, owner and other alternating, each side keeping its best
  round by rate. Inputs are answered 202, or 409 Busy when the Worker's
  previous turn still runs (none were in these runs).
- **Events**: two SSE followers of one of r1's Workers, one on r1 and one
  on r2, in the bench process; 20 unmeasured, then 200 inputs posted to r1
  one at a time, each once both followers have the previous turn's
  \`runtime\` entry; per input, the time from its POST being sent until each
  follower has its \`user\` entry. From the POST sent, not from its 202:
  the entry reaches the owner's follower before the 202 does (the reply of
  a persisted message is stored before it is returned).
- **Failover**: with three runners and the 192 Workers (all have run turns,
  so their entities are active on their owners), \`kill -9\` of r1, then
  r2, then r3; a GET of each Worker the killed runner owned, through the
  two others in turn, sent again 50 ms after any answer that is not 200 (a
  GET of a Worker whose shard has no owner yet waits in the cluster's client
  until it has one); the time from the kill until the last of them answered
  200. The killed runner is then started again on its ports and the cluster
  waited for (shards rebalanced) before the next kill. The median of the
  three.

Where it stands, and what bounds it:

- **A GET through a runner that does not own the Worker, ≤ 2× the owner's
  latency: not met** (8 at once: 2.1 to 4.3× p50, 2.9 to 3.6× p99, 0.25 to
  0.49× the rate; one at a time: 0.31 to 0.56 ms through the owner, 0.86 to
  1.48 ms through another runner, 2.7 to 3.7× p50). Through the owner a GET
  of a Worker in use is the HTTP work and a local call to its entity; through
  another runner it is also the call encoded, sent over the runner socket,
  decoded and answered by the owner, and the reply back: 0.55 to 0.85 ms
  more one at a time, and CPU in two processes under load. The hop is a
  fixed cost of the order of a millisecond; against a GET answered from
  memory it is most of the time.
- **An input through a runner that does not own the Worker, ≤ 2× the
  owner's latency: met at 8 at once** (1.03 to 1.32× p50, 0.79 to 1.30×
  p99); one at a time 1.06 to 1.77× p50, +1.2 to +13 ms on 17 to 40 ms,
  and a p99 of 2.25 to 2.39× in two runs of the four. An input is a persisted
  message: stored in \`cluster_messages\` before it is
  delivered, its reply stored too, then the store's own commits for the
  input and its echo turn, all PostgreSQL commits with fsync; those, not the
  hop, are its time.
- **Events to a follower on another runner: reported, no target** (since
  the fix below: p50 20.9 against 18.5 ms on the owner, +2.4 ms, p99
  1.01×; before it, in three runs: p50 88 to 91 ms against 16 to 29 ms,
  +61 to +72 ms). The owner's follow is a streamed RPC whose chunks
  \`@effect/cluster\` acknowledges one by one (the next chunk leaves after
  the caller's \`AckChunk\`), and the runner sockets had Nagle's algorithm
  on: each small acknowledgement waited for the peer's delayed ACK, so a
  turn's second chunk, and with inputs back to back the next turn's first,
  waited about 70 ms. The runners' sockets are now made with \`noDelay\`
  (src/cluster/RunnerSockets.ts).
- **Failover, within 20 s with the default settings: met** (median 7.7,
  8.4, 10.0 and 6.1 s; every kill 4.9 to 11.8 s; 51 to 79 Workers each; the
  first of them back 4.5 to 11.2 s after the kill). With the default 10 s
  of failure detection a dead runner is marked down by the health check
  (every 5 s, then the ping's retries) or drops out once its heartbeat is
  10 s old, and the survivors take its shards at their next poll (1 s);
  under this load that came to 5 to 12 s. A restarted runner was serving
  again, shards rebalanced, 2.3 to 5.2 s after its spawn.
- **Throughput with 1, 2 and 3 runners: reported, not a scaling figure**
  (1 runner 38 to 86 inputs/s, 2 runners 30 to 55, 3 runners 44 to 74; p99
  0.6 to 1.7 s; in each run a single pass, 1 then 2 then 3). Every input
  is several PostgreSQL commits (above), and with more runners most of
  them take the hop, on the same two cores: the figures move with the
  machine's load more than with the runners. Scaling needs hosts of their
  own.
`

/** Rewrites only the section `heading` of docs/benchmarks.md; the others stay as their runs left them. */
const rewriteSection = (heading: string, section: string) => {
  const file = join(root, "docs", "benchmarks.md")
  const doc = readFileSync(file, "utf8")
  const at = doc.indexOf(`\n## ${heading}\n`)
  const next = at < 0 ? -1 : doc.indexOf("\n## ", at + 1)
  const before = at < 0 ? doc.trimEnd() + "\n" : doc.slice(0, at)
  const after = next < 0 ? "" : doc.slice(next)
  writeFileSync(file, before + section + after)
  console.log(`wrote the ${heading} section of docs/benchmarks.md`)
}

const onlySection = (name: string) => !quick && only !== undefined && only.length === 1 && only[0] === name
if (onlySection("model")) rewriteSection("Model engines", modelSection)

if (onlySection("cluster")) rewriteSection("Cluster", clusterSection)

if (!quick && only === undefined) {
  // The PostgreSQL, model and cluster rows have sections of their own, after the others.
  const table = tableOf(rows.filter((r) => r.area !== "postgres" && r.area !== "model" && r.area !== "cluster"))
  const pgTable = tableOf(rows.filter((r) => r.area === "postgres"))
  // Its prose as in docs/benchmarks.md; the figures in it are from the runs it names.
  const postgresSection = `
## PostgreSQL

Rows from \`node build/bench/run.js --only=postgres\` (after \`npm run build &&
npx tsc -p tsconfig.tools.json\`; \`npm run bench\` runs the section too) on
2026-12-07, node v20.20.2, on the machine above while other test suites ran
on it: the table is the last of three runs, the ranges below cover all three.
The section starts its own server with \`scripts/postgres.sh start\`
(PostgreSQL 15 as installed, default settings, fsync on) on a free port, and
stops it at the end whatever happens; about 45 s in all.

${pgTable}

How each figure is measured (see \`bench/postgres*.ts\`):

- **Commits**: the store and raw \`pg\` (node-postgres \`Pool\`) each on a
  database of its own of the same server, whose schema the store made (its
  migrations, the \`worker_counts\` trigger included). Per input the store
  commits two changes: the Worker row, the input entry and the turn's
  record; then the Worker row, the output and \`completed\` entries and the
  turn's record. One at a time each change is a transaction of three
  statements (\`UPDATE\`, \`INSERT\`, \`INSERT … ON CONFLICT DO UPDATE\`), and
  the raw side sends the same statement texts with the same parameters,
  \`BEGIN\` and \`COMMIT\` around them on a connection from its pool, as
  \`@effect/sql-pg\` does. One at a time: one Worker; \`Runtime.input\`, then
  \`Runtime.turn(…, { waitMs })\` until the turn has ended, then the next
  input (raw: the two transactions, one after the other); 150 inputs a
  round. At once: 64 Workers, each such a writer, 15 inputs per writer a
  round; both pools of 20 connections (the store's default); raw runs a
  transaction per change, the store its group commit (below). 4 measured
  rounds after a warm-up, the sides alternating and taking turns going
  first.
- **Reads**: two databases, one of 1,000 Workers and a transcript of 10
  entries, one of 100,000 Workers and a transcript of 1,000,000. The store
  makes each schema, then one transaction of \`INSERT … SELECT
  generate_series\` fills it (4 to 12 s for the large one): ids in the
  runtime's shape, in creation order; about 48% idle, 48% stopped, 3%
  failed; metadata \`{ team: "t<i mod 20>" }\` with its \`worker_metadata\`
  rows; the counts trigger off during the insert and \`worker_counts\` set
  from the rows; then \`VACUUM ANALYZE\`, as autovacuum would have done.
  A Runtime on each; per measure 100 unmeasured calls, then 1,000 in 4
  blocks alternating the two databases, one call at a time; the median. List
  pages from cursors spread over the ids that leave a full page of 50 after
  them (the first page among them): every id but the last 50 for the plain
  list, the last 150 for status idle, the last 1,000 for team t7 (at 1,000
  Workers that is only the first page: there are 50 t7 Workers in all), so
  both databases answer pages of the same size; transcript pages of 10 near
  the end (\`after\` = total − 10 − i mod 1,000).
  Each is what the REST request does, in process: \`Runtime.list\`,
  \`Runtime.info\` (its counts are \`SELECT … FROM worker_counts\`),
  \`Runtime.transcript\` (the Worker read in a transaction, then the page's
  sizes, then the page: five round trips).

Where it stands, and what bounds it:

- **One input at a time ≥ 0.5× raw: not met** (0.31 to 0.40× across the
  three runs; 0.24 to 0.34× in three runs before the changes below, on a
  busier machine; 0.41 to 0.47× measured earlier). Both sides send the
  same statements and round trips (ten per input, counted on the client);
  the rest is the client's work around each commit. A CPU profile of 1,700
  sequential inputs (\`node --cpu-prof\`) shows no hot spot: the Effect
  runtime's fiber loop, spread over the input's checks, the actor, the
  writer fiber's hand-off and \`@effect/sql\`'s transaction and spans, is
  about 1 ms of CPU per input plus 0.5 ms of garbage collection, no
  function above 3% of it; the store's own code is under 0.2 ms.
- **64 Workers at once ≥ 1× raw: met** (3.10 to 4.56×; the store 524 to
  840 inputs/s, raw 169 to 196). The store's one writer shares a
  transaction among the commits waiting (group commit), and sends a
  batch's changes as a few statements whatever its size: one \`UPDATE
  workers … FROM (VALUES …)\` of the batch's Workers (a Worker's last state
  in the batch wins), one multi-row \`INSERT\` of all its entries (in
  order), one multi-row upsert of its turns (the last record per key);
  queued inputs change by change. The raw side runs a transaction per
  change on 20 connections, and the counts trigger makes those wait for
  each other: every status change takes the \`worker_counts\` rows to its
  commit. Before, the trigger took the old status's row then the new
  one's, so concurrent transactions deadlocked (1,788 deadlocks for 1,366
  commits, each a wait of \`deadlock_timeout\`, 1 s) and the raw side ran
  without it, 1,104 to 1,189 inputs/s, against which the store (409 to 430
  then, a batch's statements one after another) was 0.31 to 0.37×.
  Migration 3 makes the trigger take all four rows in status order at its
  first firing in a transaction: no cycle, so no deadlock, and several
  runtimes on one database can write at once. The store's figure against
  the raw side without counts (1,104 to 1,189 then, not measured in these
  runs) would be about 0.5 to 0.75×: the \`worker_counts\` rows are what
  serializes writers, on either side.
- **List page, metadata-filtered page, status-filtered page, counts and
  transcript page flat (≤ 1.5×): met** (list 0.93 to 1.10×, by metadata
  0.94 to 1.24×, by status 1.02×, counts 0.85 to 0.99×, transcript page at
  1,000,000 entries 1.01 to 1.46×, the last noisy): primary-key and index
  ranges from the cursor, four count rows. The metadata-filtered page was
  6.7 to 8.6×: PostgreSQL planned the join of \`worker_metadata\` and
  \`workers\` as a merge join walking the \`workers\` primary key from its
  first id up to the cursor. It is now \`CROSS JOIN LATERAL (SELECT … FROM
  workers WHERE id = m.worker_id … OFFSET 0)\`: a nested loop of one index
  lookup per pair found (test/PostgresStore.test.ts checks the plan).
`
  const doc = `# Benchmarks

Latest run of \`npm run bench\` (${seconds} s): ${new Date().toISOString().slice(0, 10)}, node ${process.version},
${availableParallelism()} cores (${cpus()[0]?.model ?? "unknown CPU"}), Linux. Every figure that
matters is a ratio against a baseline measured in the same run, because these
machines are shared and noisy; absolute numbers vary run to run.

${table}

How each figure is measured (see \`bench/\`):

- **REST read**: \`autocannon\` (32 connections, loopback, 1 s warm-up, then the
  measured run; servers alternate and each keeps its best of the rounds) against
  four child processes answering \`GET /v1/workers/{id}\` with the same Worker
  JSON: a raw \`node:http\` server reading a \`Map\` (the ceiling for Node here),
  Fastify, a minimal Effect \`HttpApi\` server (one endpoint, no middleware, no
  tracing: the platform's own bound), and the worker-runtime bin with the
  memory store and no token, for a Worker in use (an input brought it into
  memory, \`--passivate-after 1h\` keeps it there: the fast lane) and for one
  only in the store (through \`HttpApi\`). autocannon shares the 2 cores with
  the server, so the raw ceiling is partly the load generator's; the server
  CPU per request (user + system time of the server process over the run,
  from \`/proc\`, divided by the requests) is steadier than the rates.
- **REST write**: \`POST /v1/workers/{id}/input\` against the raw server and
  the minimal \`HttpApi\` server (both parse the body and answer 202 without
  storing anything) and the bin, round-robin over 256 idle Workers there,
  each accepted input running the echo turn (answers per second, 202 or 409,
  and server CPU per request): through the input lane, and through \`HttpApi\`
  (the same requests with a query in the URL, which the lane leaves to it);
  then the bin alone, counting accepted inputs only.
- **In-process**: \`Runtime.input\` on 100 Workers, then waiting until every
  echo turn has completed, repeated; against a bare \`Map\` + \`Promise\` doing
  the same bookkeeping (entries with timestamps, status, a Worker snapshot).
- **Store**: the same loop on the SQLite store (WAL, \`synchronous = FULL\`,
  exclusive lock), against raw \`better-sqlite3\` with the same schema (made by
  the store itself) and pragmas, writing the same rows: per input one
  transaction for the input entry, the Worker row and the turn's record, one
  for the output entry, the \`completed\` runtime entry, the Worker row and the
  turn's record. A second row sends the inputs to the 20 Workers at once,
  which lets the store's group commit share transactions.
- **Scale**: heap after \`gc()\` before and after creating the idle Workers, in
  a fresh process; a transcript page of 10 entries read from a transcript of 10
  vs ${fmt(sizes.big)} entries (near its end, so an O(total) read would show);
  list pages of 100 from the middle of 1,000 vs ${fmt(sizes.workers)} Workers.
  Passivation: in a fresh process (\`--expose-gc\`), 20,000 Workers inserted
  through the store's \`insertWorker\` (memory, then SQLite) beside a Runtime
  with \`passivateAfterMs\` 2,000; heap after \`gc()\` with them only stored,
  never used (the baseline; the store's own bytes per Worker are the heap
  before the inserts subtracted), after one \`cancel\` each (which activates
  the Worker's actor and answers \`cancelled: false\`), and once
  \`RuntimeControl.activeWorkers\` is 0 again; 1,000 other Workers went the
  same way first, so that compiled code and grown tables are in the baseline.
  Start: the built bin (\`dist/node/main.js --store sqlite:<file>\`) from its
  spawn until \`GET /readyz\` (polled every 2 ms) answers 200, and its RSS
  (\`/proc/<pid>/status\`) and CPU time (\`/proc/<pid>/stat\`) right then; an
  empty store against 100,000 Workers, alternating, median of 3. The files
  are made by the store (migrations), then filled by better-sqlite3 in one
  transaction with rows of the real schema (the \`worker_counts\` triggers
  keep the counts): ids from the runtime's generator over 30 days, about
  47% idle, 50% stopped (more among the older) and 3% failed, none busy or
  queued, no metadata or transcripts. The same at 1,000 against 1,000,000
  Workers, with, per start, 200 \`GET /v1/workers?limit=100\` (after 20
  unmeasured) and 100 \`GET /v1/workers/{id}\` of Workers no request had
  read before, one at a time.
- **Events**: a \`ticker\` engine emits a line every 2 ms holding
  \`process.hrtime\` (the machine's monotonic clock, the same in every
  process); arrival minus that is the latency. In process, a fiber follows
  \`Runtime.events\`, against an \`EventEmitter\` whose listener queues for an
  awaiting consumer loop. Over SSE, the server is \`RuntimeHttpServerLive\` on
  the runtime's own Node server (memory store, the ticker as a profile) in a
  child process, against a raw \`node:http\` server in a child process writing
  the same frames when an \`EventEmitter\` fires; the consumers are
  \`node:http\` requests (\`accept: text/event-stream\`, one socket each) in a
  third process. Fan-out: 1,000 consumers of one Worker, an entry every
  second; the time from its emit until the last consumer has it, per entry.
  Idle: heap and RSS of a fresh server after \`gc()\`, before and with the
  streams open on one Worker, divided by their number; soft open-file limits
  are raised up to the hard one when they are too low for the streams.
- **Queue**: one echo Worker fed one input at a time (input, wait until it is
  idle with the turn's 3 entries recorded, next) against another fed every
  input of a round at once with \`ifBusy: "enqueue"\` (\`maxQueuedInputs\` large
  enough), until its \`lastSeq\` has grown by 3 per input; alternating, each
  keeps its best round; memory store and SQLite.
- **Lifecycle**: Workers inserted through the store's \`insertWorker\` with
  \`{ team: "t<i mod 20>" }\`, then \`Runtime.list\` pages of 50, unfiltered
  and filtered by \`{ team: "t7" }\`, from cursors spread over all the ids (the
  first page among them), alternating. Reclaim: in a fresh process
  (\`--expose-gc\`), heap after a warm-up cycle of 1,000 Workers, then with the
  Workers created, then after \`stop\` and \`delete\` of each, then after a
  second such cycle; with the time per create, stop and delete.
- **Flood**: the bin (memory store) with a process profile whose child writes
  1 MiB of \`x\\n\` over and over (\`maxOutputBytes\` and \`maxOutputEntries\`
  raised: the defaults would end its turn after 1 MiB or 10,000 lines). One
  client calls \`/healthz\` in a loop, another sends inputs to an echo Worker,
  each followed by \`GET …/turns/{n}?waitMs=\` until it has ended; for 8 s
  without the flood and 8 s with it, on the same process.
- **Tracing**: the REST read load above on the bin (memory store) without
  \`OTEL_EXPORTER_OTLP_ENDPOINT\`, twice (the difference between the two is
  the noise), and with it pointing at an OTLP/HTTP sink in the bench process
  that answers every export; alternating, each the mean of its rounds.

## Where we stand, and what bounds it

The ratios move with the machine's load (the load generator shares the two
cores); the relations below held in every run.

- **REST read of a Worker in use, targets ≥ 0.25× raw and ≥ 0.9× the minimal
  \`HttpApi\` server: met** (0.76 to 0.89× raw and 4.07 to 4.89× the minimal
  server over the three full runs of 2026-12-07 (22:55, 23:06 and 23:17);
  server CPU 20 to 26 µs per GET, 1.12 to 1.36× the raw server's). A
  Worker held in memory (a turn, a queue, a follower, or used within
  \`--passivate-after\`) is answered by the fast lane (\`src/http/FastLane.ts\`):
  a plain function in the Node server, derived from the API's \`get\` endpoint,
  the guard's checks and the Worker's cached JSON, that answers only the 200
  \`HttpApi\` would, with the same bytes (\`test/FastLane.test.ts\`), and counts
  it in the same metrics. What bounds it: the guard's checks (the token's
  SHA-256 comparison) and the JSON of a changed Worker, written once. A Worker
  only in the store goes through \`HttpApi\` (0.13 to 0.16× raw, 0.63 to 0.98×
  the minimal server, 115 to 150 µs): a fiber per request, its context, the
  router, our guard and the request metrics; the fixes made there (one token
  check, metric label sets cached, one clock read, the debug decision made
  once, no tracing span unless asked for, answers of unchanged snapshots
  encoded once) brought it from 0.09× to 0.11–0.17× raw.
- **REST write (POST input), target ≥ 0.3× raw: met** (0.35, 0.32 and 0.30× raw over the
  three full runs of 2026-12-07 (22:55, 23:06 and 23:17); 79 to 117 µs of server CPU per input
  against 21 to 28 µs for the raw server's whole answer, and 1.7 to 2.5× the
  minimal \`HttpApi\` server, which stores nothing. The three runs before
  this round's last three fixes, the same evening (19:31 to 19:53): 0.25 to
  0.29× raw, 102 to 120 µs; the build before the last of them (the body's
  decode), at 22:17, 22:28 and 22:38: 0.39, 0.39 and 0.28× raw, 67, 69 and
  90 µs, as the machine slowed through the evening: the same build's CPU
  per input grew while the raw server's stayed at 20 to 28 µs; earlier 0.18
  to 0.29× raw, 136 to 226 µs, on a busier machine; before the input lane:
  0.05 to 0.09× raw, 462 to 669 µs).
  \`POST /v1/workers/{id}/input\` is taken by the input lane
  (\`src/http/InputLane.ts\`) when every check \`HttpApi\` makes before reading
  the body passes (the guard's, the Worker id as the router decodes it, no
  query, a JSON media type, a declared length within the limit, no chunked
  body); anything else is \`HttpApi\`'s, untouched. Having read the body, the
  lane cannot give the request back, so it answers every outcome itself: the
  handler's own decode (\`Body.ts\`), \`Runtime.input\` in one fiber, the
  success written as its schema encodes it and the typed errors encoded by
  the schemas the API declares for their status, \`Retry-After\` on a 503
  (\`test/FastLane.test.ts\` compares both answers byte for byte for 202, 400,
  404, 409, 422 and 503, and checks that 401, 403, 413, 415 and the rest are
  left to \`HttpApi\`). Through \`HttpApi\`, in the same runs, an input costs
  217 to 237 µs (0.11 to 0.16× raw): the lane saves the request fiber's context, the
  router, the middleware and the platform's body reading.
  Fixes made, latest first:
  - **V8's allocation-site pretenuring is off in the bin**
    (\`src/node/V8Flags.ts\`, docs/operations.md). Under the lane's load V8
    came to allocate Node's per-request HTTP objects in the old generation,
    where they died: every young collection (one each 20 to 30 ms) then
    took 4 to 6 ms instead of about 1, and kept the young objects they
    pointed to, 2.7 to 2.9 MB promoted each time (\`--trace-gc\`; a sampling
    heap profile of the objects collected by full collections named
    \`node:http\`'s constructors). The lane with a canned answer in place of
    \`Runtime.input\` went from 40 to 46 µs a request to 20 to 29 µs, the raw
    server's 20 to 24; the bin's input from a median of 97 to 80 µs (four
    alternating runs of each).
  - **A request body is decoded without fiber steps** (\`Body.ts\`,
    \`decodeRequest\` in \`Validation.ts\`): UTF-8, JSON and the schema's
    synchronous decode as \`Either\`, 3.2 to 3.6 µs per input body before,
    1.5 to 1.6 µs after (300,000 decodes in a loop).
  - **The actor's lock takes a free lock in the same step** (\`src/Lock.ts\`,
    \`test/Lock.test.ts\`). Effect's semaphore takes even a free permit
    through an asynchronous step, and a fiber started by \`runCallback\` that
    meets one is sent through the scheduler before it goes on: every input
    was. Callers that find the lock held wait in arrival order, and one
    interrupted after it was handed the lock passes it on. In process, 28
    to 40 µs of CPU per input became 15 to 22 (alternating runs).
  - A turn whose whole output is known when it starts (the echo engine
    without a delay makes its stream with \`outputNow\`, \`WorkerEngine.ts\`)
    ends in the same hold of the Worker's lock as its start: no fiber, no
    second take of the lock, its line and its end one commit right after the
    input's (docs/architecture.md). Any other engine's turn runs in its fiber
    as before.
  - The answer is written field by field (\`inputAcceptedJson\` in
    \`src/http/Snapshots.ts\`, pinned to the schema's encoder on generated
    values by \`test/Snapshots.test.ts\`), not encoded by the API's schema:
    about a tenth of an input's CPU, as each answer holds a new Worker.
  - The snapshot caches keep the last 64 objects, not 1,024: at 10,000
    inputs a second the kept Workers and their JSON outlived two young
    collections, were promoted, and died in the old generation.
  - Latches are made by a first waiter only, a commit that dequeues nothing
    makes no arrays, a commit is timed with \`performance.now()\`: 46.6 → 39.4
    KB allocated per input in process (V8's sampling heap profiler, with
    collected objects).
  Earlier: the echo engine's turn as one effect rather than a pulled stream,
  a turn's output commit forked only once its fiber has let others run,
  entries built field by field, the actor's metric label arrays made once.
  What bounds it now, from a CPU profile of the bin under the lane's load
  (shares of all samples): the answers' socket writes (\`writev\`) 32%, the
  server idle 18% (autocannon shares the two cores), garbage collection
  11% (young collections of about 2 ms: the memory store keeps every entry,
  and those survive), Effect's fiber runtime about 10%, our own decide,
  actor, store and JSON code about 11%, the body's schema decode 2%, Node's
  HTTP parser and streams the rest (the profile was taken before the
  body's decode change). The lane with a canned answer now costs
  what the raw server's whole answer does; what is left is the input
  itself, its decode and its JSON, 45 to 55 µs against about 17 µs for
  \`Runtime.input\` alone in process: in the server it shares caches and the
  young generation with Node's HTTP work.
- **In-process input, target ≥ 0.5× bare: not met (0.10 to 0.14×).** Each input
  is a checked request, a per-Worker lock, an immutable Worker snapshot, a store
  commit and the turn: a fiber that ends with a second locked commit, or, for
  a turn whose output is known at its start (the echo engine's), that second
  commit in the same hold of the lock; the bare baseline is a few property
  writes and a resolved \`Promise\`. The fiber per turn (what makes cancel, stop
  and shutdown exact) and the lock (what makes concurrent inputs exact) are
  the floor. Fixes made: the common input shape is checked by hand, the
  schema only words errors (0.047× → 0.054×); the echo turn as one effect,
  its output committed with its end, entries built field by field (about
  4,500–5,500 → 12,500–21,000 inputs a second); the echo turn with no fiber
  and fewer allocations (REST write above): 45,410 to 52,001 inputs a second
  over three runs; the actor's lock without a trip through the scheduler:
  54,363 to 58,982 inputs a second over the three latest.
- **SQLite durable input, target ≥ 0.5× raw: met with concurrent Workers;
  one input at a time it comes close on a quiet machine and falls to about
  0.3× on a busy one.** Both do one fsync per transaction and the same SQL;
  one at a time, the \`@effect/sql\` transaction and the Effect work around it
  add to each commit. Even the native COMMIT gets slower (about 280 µs against
  150 µs, timed around the statement alone, on a busy machine): the raw loop
  slows the same way when it allocates a few thousand small objects between
  its statements, so the price is the JS work between statements (cache and
  allocator pressure), not a SQLite setting. Fixes made: group commit, so
  commits that arrive while one is being written share the next transaction
  (and fsync), each still answered only after it is durable; and fixed SQL
  with positional parameters on the commit path.
- **Idle Worker ≤ 2 KiB: met** (232 to 234 B over the three full runs; the
  build before them gave 273 B the same evening, and 440 to 480 B in earlier
  runs).
- **Transcript page at 1,000,000 entries ≤ 2× at 10: met** on both stores (a
  page is an array slice in memory and one primary-key range read in SQLite).
- **Passivated Worker ≤ 64 B of heap: met** on both stores (4 to 9 B over
  the heap with the same Workers never used, across runs: what is left is
  the noise of the collections, not per-Worker state). While active, an idle
  Worker holds about 1.06 KB over that on the memory store and 1.40 KB on
  SQLite, where the actor's Worker is decoded from its row (the memory store
  hands out the object it keeps). The memory store itself holds about 310 B
  per Worker, active or not; SQLite about 30 B, which is noise too. An
  activation (a \`cancel\` of an inactive idle Worker) takes about 70 to 90
  µs on the memory store and 320 to 450 µs on SQLite.
- **Start at 100,000 stored Workers ≤ 1.2× time, ≤ 1.1× RSS: met in the
  latest run, at the edge on a loaded machine** (0.82 to 1.22× time across
  three runs, CPU time 0.85 and 0.99× in the two that read it, RSS 0.98 to
  1.03×). The start does not depend on the store's size: 1.2 to 2.9 s from
  spawn to ready with the machine's load, about two thirds of it (CPU
  profile) loading, compiling and evaluating modules. Opening the SQLite
  file and starting the Runtime over it (busy and queued Workers by index,
  counts from \`worker_counts\`, the last id from the primary key) take 10
  to 30 ms at 1,000 and at 1,000,000 Workers alike, measured in process.
- **1,000,000 stored Workers ≤ 1.5× 1,000: met** for the start (0.86 to
  1.29× across runs: the noise above), the first list page (0.99 to 1.07×:
  a primary-key range read) and a get of a Worker not read before (0.83 to
  1.07×: one primary-key lookup; a get activates nothing).
- **Events in process, p99 ≤ 1 ms: at the edge** (met in the latest run:
  p99 1.26, 1.41 and 0.95 ms over the three full runs of 2026-12-07; earlier
  0.3 to 1.7 ms across runs and rounds, the first round after start
  the slowest; p50 0.06 to 0.1 ms, against a few µs for the bare hand-off).
  The slow samples fall at the same line numbers from run to run: young
  generation collections, which a line's commit (entries, a new Worker
  snapshot, the follower's chunk) makes more frequent than the bare
  hand-off's few objects. Fix made: a flush that finds nothing queued
  after its commit ends under the same lock instead of taking it again
  (p50 0.13 → 0.06 ms).
- **Events over SSE, p99 ≤ 2× raw: not met** (2.8 to 5× across runs;
  p50 0.37 to 0.7 ms against 0.07 to 0.25 ms). The in-process path above,
  then a fiber hop per chunk from the follower to the response's loop, the
  frame encoded (schema, then JSON) and the platform's bridge from \`Stream\`
  to the Node response. Fix made: the body is one pull loop (each chunk of
  events framed and encoded at once; a ping from a timer on the pending
  pull) instead of a merge of the events with a ping schedule and a map
  per stage (4 to 6× → 2.8 to 4×).
- **Fan-out to 1,000 consumers, target ≤ 2× raw: met, but for one run**
  (1.83, 1.57 and 2.19× raw p50 over the three full runs of 2026-12-07
  (22:55, 23:06 and 23:17), and 1.84× in a run of the events section
  after them; 1.33 to 1.93× in the six full runs before them the same
  evening. In the 2.19× run ours took 49.6 ms p50 (44.3 and 47.6 in the two
  before) and the raw server 22.6 ms (24.2 and 30.4): the raw baseline
  moved most. Nothing this session changed is on the fan-out path but the
  actor's lock, which a turn's output commit takes once. 4 to 6× before,
  13 to 21× before the pull loop above).
  The entry's JSON is written once for all streams (\`src/http/Snapshots.ts\`);
  each stream still frames it and writes it to its socket.
- **Idle SSE consumer, target ≤ 24 KiB heap: met** (22.7 KiB at 10,000
  streams in each of the full runs of 2026-12-07, from about 72 KiB; about 5 KiB for the raw server,
  the Node socket and request objects both share; v2's 16 KiB is not met).
  The events endpoint of a Worker in memory is taken by a fast lane
  (\`src/http/EventsLane.ts\`): one short fiber opens the follower and a Node
  \`Readable\` writes it, so no request fiber with every middleware's state
  waits for the stream's whole life (that alone was about 35 KiB), no stream
  stages are kept, and an idle follower waits on a callback, not a fiber.
  What is left: the follower's scope and its closures, the listener, and
  the Node socket and request objects.
  Below that would take serving the stream outside \`HttpApi\` and
  \`Stream\`, by hand on the Node response. **10,000 idle streams in one
  process: met** (about 740 MiB of heap; the default heap limit of about
  4 GiB on this machine puts the ceiling near 55,000).
- **Queue**: no target set. A queued input runs about as fast as one sent
  after the previous turn ended (0.8× to 1.5× across runs, both stores): each
  is still one commit to queue it and one transition that ends the turn before
  it and starts its own.
- **Metadata-filtered list page at 100,000 Workers ≤ 2× unfiltered: met** on
  SQLite (about 1.1 to 1.5×: a range of the \`worker_metadata\` primary key
  from the cursor, then a lookup of each Worker by id).
- **Memory store reclaims deleted Workers, heap within 10% of the start:
  met** (1.01×; a second cycle leaves it there). Fix made: it was 1.12 to
  1.13× at 100,000, all of it one V8 object: the list of prototypes that
  use the generator prototype. Every \`Effect.gen(function* …)\` evaluated
  per call makes a new generator function whose prototype joins that list
  when it first runs; entries die only in a full collection and the list
  never shrinks, so 100,000 Workers made in a row left about 2.8 MiB of it.
  \`create\`, \`stop\`, \`delete\` and the turn transition are now
  \`Effect.fnUntraced\`: one generator function each. Also fixed: stop and
  delete took 4 to 5× a create at 100,000 Workers because the memory
  store's indexes were sorted arrays spliced per change; they are sorted
  blocks of ids now (\`SortedIds\`): stop 1.8× create (it records an entry
  and a turn change), delete 0.8×.
- **A flooding Worker, other requests within 2×: at the edge, not met in
  the latest runs** (p99 1.85 to 2.66× for \`/healthz\`, 2.16 to 3.05× for
  another Worker's input, 2.46 to 2.99× for that input's turn to its end
  over the three full runs, while the flooding Worker records 0.7 to 1
  million lines a second, twice what it did when 0.8 to 2.2× was measured;
  the build before this round, run alternately with this one three times,
  gave 1.93 to 3.01×, 2.23 to 3.53× and 2.33 to 3.99×, and this one 0.85 to
  2.22×, 0.81 to 2.80× and 0.89 to 3.43×: no change beyond the noise;
  in the three full runs of 22:55 to 23:17: 2.71 to 3.39×, 2.96 to 5.66×
  and 3.11 to 4.35×, on a slower machine; run alternately with the build
  before this session's changes, twice each: 3.00 to 3.92× and 2.37 to 3.17×
  before, 3.51 to 4.18× and 3.10 to 3.50× after, then 2.50 to 3.84× and
  2.58 to 3.07× before against 2.90 to 3.84× and 2.68 to 3.84× after with a
  yield between a flooding turn's output commits (not kept): within this
  spread, at most a lean).
  Fix made: it was 230 to 280× (about
  a second per request) while the process engine turned each 64 KiB read of
  the child's stdout into 32,768 emits with no pause: Effect's scheduler
  runs ready fibers for thousands of rounds before a timer turn lets Node
  poll for I/O. A turn's ingest now yields to the event loop
  (\`setImmediate\`) after every 0.5 ms of work, so another request waits at
  most about that plus one batch commit per I/O step. The defaults still
  end such a turn early (\`maxOutputBytes\` 1 MiB, \`maxOutputEntries\`
  10,000).
- **Tracing off costs nothing; on, about half the read rate**: off, the
  two runs differ by the noise (0.86 to 1.01× in the latest runs; no span
  is made without an endpoint); with spans exported for every request,
  Runtime method and store commit, about 0.5 to 0.66× of off.
${rows.some((r) => r.area === "postgres") ? postgresSection : ""}${modelRows.length > 0 ? modelSection : ""}${
    clusterRows.length > 0 ? clusterSection : ""
  }`
  writeFileSync(join(root, "docs", "benchmarks.md"), doc)
  console.log("wrote docs/benchmarks.md")
}

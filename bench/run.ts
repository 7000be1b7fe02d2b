// `npm run bench`: every figure is a ratio against a baseline measured in the
// same run (the machine is shared and noisy). Prints a table and writes
// docs/benchmarks.md. `--quick` shortens every run (for a smoke test).
import { writeFileSync } from "node:fs"
import { availableParallelism, cpus } from "node:os"
import { join } from "node:path"
import { inProcess } from "./inprocess.js"
import { fmt, root } from "./lib.js"
import { restRead, restWrite } from "./rest.js"
import { heapPerWorker, scaleMemory, scaleSqlite, type Sizes, type Timings } from "./scale.js"
import { storeInputs } from "./store.js"

interface Row {
  readonly area: string
  readonly measure: string
  readonly value: string
  readonly baseline: string | undefined
  readonly target: string | undefined
}

const quick = process.argv.includes("--quick")
// `--only=read,write,inprocess,store,scale` runs some sections (no docs written).
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
  const readRatio = ratio(read.runtime.rps, read.raw.rps)
  row(
    "REST read",
    "raw node:http, GET /v1/workers/{id} (req/s, p99 ms)",
    `${fmt(read.raw.rps)} / ${read.raw.p99}`,
    "baseline"
  )
  row(
    "REST read",
    "Fastify, same route (req/s, p99 ms)",
    `${fmt(read.fastify.rps)} / ${read.fastify.p99}`,
    `${ratio(read.fastify.rps, read.raw.rps).toFixed(2)}× raw`
  )
  row(
    "REST read",
    "minimal Effect HttpApi server, same route, no middleware (req/s, p99 ms)",
    `${fmt(read.effect.rps)} / ${read.effect.p99}`,
    `${ratio(read.effect.rps, read.raw.rps).toFixed(2)}× raw`
  )
  row(
    "REST read",
    "worker-runtime process (req/s, p99 ms)",
    `${fmt(read.runtime.rps)} / ${read.runtime.p99}`,
    `${readRatio.toFixed(2)}× raw`,
    `≥ 0.5× raw: ${verdict(readRatio >= 0.5)}`
  )
}

// 2. REST write
if (wanted("write")) {
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
}

const seconds = Math.round((Date.now() - started) / 1000)
console.log(`done in ${seconds} s`)

if (!quick && only === undefined) {
  const table = [
    "| area | measure | value | against the baseline | target |",
    "| --- | --- | ---: | --- | --- |",
    ...rows.map((r) => `| ${r.area} | ${r.measure.trim()} | ${r.value} | ${r.baseline ?? ""} | ${r.target ?? ""} |`)
  ].join("\n")
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
  memory store and no token. autocannon shares the 2 cores with the server, so
  the raw ceiling is partly the load generator's.
- **REST write**: \`POST /v1/workers/{id}/input\` round-robin over 256 idle
  Workers on the bin; each accepted input runs the echo turn. Inputs that find
  their Worker still busy get 409 and are not counted.
- **In-process**: \`Runtime.input\` on 100 Workers, then waiting until every
  echo turn has completed, repeated; against a bare \`Map\` + \`Promise\` doing
  the same bookkeeping (entries with timestamps, status, a Worker snapshot).
- **Store**: the same loop on the SQLite store (WAL, \`synchronous = FULL\`,
  exclusive lock), against raw \`better-sqlite3\` with the same schema (made by
  the store itself) and pragmas, writing the same rows: per input one
  transaction for the input entry and the Worker row, one for the output entry
  and the Worker row. A second row sends the inputs to the 20 Workers at once,
  which lets the store's group commit share transactions.
- **Scale**: heap after \`gc()\` before and after creating the idle Workers, in
  a fresh process; a transcript page of 10 entries read from a transcript of 10
  vs ${fmt(sizes.big)} entries (near its end, so an O(total) read would show);
  list pages of 100 from the middle of 1,000 vs ${fmt(sizes.workers)} Workers.

## Where we stand, and what bounds it

The ratios move with the machine's load (the load generator shares the two
cores); the relations below held in every run.

- **REST read, target ≥ 0.5× raw: not met.** The minimal Effect \`HttpApi\`
  server in the same run is the bound: a fiber per request, its context and
  fiber refs, the router and the schema encode of the response cost every
  \`HttpApi\` server here, and the worker-runtime process sits just under it
  (its guard, auth and body-limit middleware cost the rest). Profile-guided
  fix made: no tracing span per request unless asked for
  (\`RuntimeHttpServerLive({ tracing: true })\`), 0.16× → 0.22× in the run that
  measured it. Going further means answering hot routes outside \`HttpApi\`,
  a second router that would have to repeat the contract; we chose not to.
- **In-process input, target ≥ 0.5× bare: not met (about 0.05×).** Each input
  is a checked request, a per-Worker lock, an immutable Worker snapshot, a store
  commit and a fiber for the turn, which ends with a second locked commit; the
  bare baseline is a few property writes and a resolved \`Promise\`. The fiber
  per turn (what makes cancel, stop and shutdown exact) and the lock (what makes
  concurrent inputs exact) are the floor. Fix made: the common input shape is
  checked by hand, the schema only words errors (0.047× → 0.054×).
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
- **Idle Worker ≤ 2 KiB: met** (about 330 B).
- **Transcript page at 1,000,000 entries ≤ 2× at 10: met** on both stores (a
  page is an array slice in memory and one primary-key range read in SQLite).
`
  writeFileSync(join(root, "docs", "benchmarks.md"), doc)
  console.log("wrote docs/benchmarks.md")
}

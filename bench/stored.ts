// Workers only stored, never loaded: the bin's start to /readyz (time and RSS)
// on a SQLite store of 100,000 Workers against an empty one; list pages, gets
// of cold Workers and the start at 1,000,000 Workers against 1,000; and the
// heap an idle Worker holds while active and after its passivation
// (bench/passivate.ts, in a fresh process).
import Database from "better-sqlite3"
import { Effect, Layer, Schema } from "effect"
import { type ChildProcess, execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort } from "../scripts/postgresServer.js"
import { makeIdGenerator } from "../src/index.js"
import { SqliteStoreLive } from "../src/sqlite/index.js"
import { benchBuild, now, quantile, root, sleep, spawnNode, stopChild } from "./lib.js"

const BIN = join(root, "dist", "node", "main.js")
const DAY_MS = 24 * 60 * 60 * 1000

/** A fresh temp dir for `f`, deleted afterwards. */
export const withTempDir = async <A>(f: (dir: string) => Promise<A>): Promise<A> => {
  const dir = mkdtempSync(join(tmpdir(), "worker-runtime-bench-"))
  try {
    return await f(dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** A small deterministic PRNG (mulberry32): the same mix of statuses every run. */
const random = (seed: number): () => number => {
  let a = seed
  return () => {
    a = (a + 0x6D2B79F5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface Populated {
  /** Ids of up to `sampleSize` of the Workers, spread over the whole range, in a shuffled order. */
  readonly sample: ReadonlyArray<string>
  /** Seconds the bulk insert took. */
  readonly seconds: number
}

/**
 * A SQLite store file with `count` Workers, as the runtime would have left
 * them: the store opens it first (migrations, pragmas), then better-sqlite3
 * inserts the rows into the real schema in one transaction (the
 * `worker_counts` triggers keep the counts). Ids are made by the runtime's
 * own generator at creation times spread over the last 30 days, so they sort
 * as real ones; statuses are a mix of idle, stopped (more among the older)
 * and failed, none busy, none with queued inputs; no metadata and no
 * transcripts (neither is read by what is measured).
 */
export const populateSqlite = async (filename: string, count: number, sampleSize = 1000): Promise<Populated> => {
  await Effect.runPromise(Effect.scoped(Layer.build(SqliteStoreLive({ filename }))))
  const start = now()
  const db = new Database(filename)
  // The rollback journal for the bulk insert (a WAL would hold the whole file
  // once more), WAL again afterwards, as the store keeps the file.
  db.pragma("journal_mode = DELETE")
  db.pragma("synchronous = OFF")
  const next = makeIdGenerator()
  const runtimeId = next.next()
  db.prepare("INSERT INTO meta (key, value) VALUES ('runtime_id', ?)").run(runtimeId)
  const insert = db.prepare(
    `INSERT INTO workers (id, runtime_id, profile, status, created_at, updated_at, turn, last_seq, metadata, queued,
       stop_reason, idempotency_key)
     VALUES (?, ?, 'default', ?, ?, ?, 0, 0, '{}', 0, ?, NULL)`
  )
  const rand = random(count)
  const stride = Math.max(1, Math.floor(count / sampleSize))
  const sample: Array<string> = []
  const end = Date.now() - DAY_MS
  const begin = end - 30 * DAY_MS
  let time = begin
  const ids = makeIdGenerator(undefined, () => time)
  db.transaction(() => {
    for (let i = 0; i < count; i++) {
      time = begin + Math.floor((i * 30 * DAY_MS) / count)
      const id = ids.next()
      if (i % stride === 0 && sample.length < sampleSize) sample.push(id)
      const age = 1 - i / count
      const r = rand()
      const status = r < 0.03 ? "failed" : r < 0.03 + 0.2 + 0.6 * age ? "stopped" : "idle"
      const createdAt = new Date(time).toISOString()
      const updatedAt = new Date(time + Math.floor(rand() * DAY_MS)).toISOString()
      insert.run(id, runtimeId, status, createdAt, updatedAt, status === "stopped" ? "stopped" : null)
    }
  })()
  db.pragma("journal_mode = WAL")
  db.close()
  // Shuffled, so that consecutive gets do not read neighbouring pages.
  for (let i = sample.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    const swap = sample[i]!
    sample[i] = sample[j]!
    sample[j] = swap
  }
  return { sample, seconds: Number(now() - start) / 1e9 }
}

/** The resident set of a process, in bytes (Linux: /proc/<pid>/status). */
export const rssOf = (pid: number): number => {
  const kib = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]
  if (kib === undefined) throw new Error(`no VmRSS for process ${pid}`)
  return Number(kib) * 1024
}

/** CPU time (user + system, ms) a process has used so far (Linux: /proc/<pid>/stat, in clock ticks of 10 ms). */
export const cpuMsOf = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  // Fields after the command name, which is in parentheses and may hold spaces: state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) * 10
}

export interface Started {
  readonly url: string
  readonly child: ChildProcess
  /** Milliseconds from the spawn until `/readyz` first answered 200. */
  readonly readyMs: number
  /** The child's RSS (bytes) right when `/readyz` answered 200. */
  readonly rss: number
  /** CPU time (ms) the child had used by then: less disturbed by other processes than the elapsed time. */
  readonly cpuMs: number
}

/**
 * Spawns the built bin on `--store sqlite:<filename>` and polls `/readyz`
 * every 2 ms (refused until the server listens) until it answers 200.
 */
export const startBin = async (filename: string, args: ReadonlyArray<string> = []): Promise<Started> => {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const start = now()
  const child = spawnNode(BIN, ["--port", String(port), "--store", `sqlite:${filename}`, ...args])
  let output = ""
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()))
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()))
  const pid = child.pid
  if (pid === undefined) throw new Error("the bin did not spawn")
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the bin exited with ${child.exitCode}:\n${output}`)
    const status = await fetch(`${url}/readyz`).then((response) => response.status, () => 0)
    if (status === 200) {
      const readyMs = Number(now() - start) / 1e6
      return { url, child, readyMs, rss: rssOf(pid), cpuMs: cpuMsOf(pid) }
    }
    if (Number(now() - start) > 60e9) {
      await stopChild(child)
      throw new Error(`the bin was not ready after 60 s:\n${output}`)
    }
    await sleep(2)
  }
}

/** Milliseconds of each GET of `urls`, in order, one at a time. */
const timeGets = async (urls: ReadonlyArray<string>): Promise<Array<number>> => {
  const times: Array<number> = []
  for (const url of urls) {
    const start = now()
    const response = await fetch(url)
    await response.arrayBuffer()
    times.push(Number(now() - start) / 1e6)
    if (response.status !== 200) throw new Error(`GET ${url}: ${response.status}`)
  }
  return times
}

const median = (values: ReadonlyArray<number>) => quantile(values, 0.5)

export interface StartAt {
  /** Median milliseconds from spawn to `/readyz` 200. */
  readonly readyMs: number
  /** Median RSS (bytes) at that moment. */
  readonly rss: number
  /** Median CPU time (ms) the process had used by then. */
  readonly cpuMs: number
}

/** Start on an empty SQLite store and on one of `workers` Workers, alternating, `rounds` each; medians. */
export const startAtScale = (workers: number, rounds: number): Promise<{ empty: StartAt; full: StartAt }> =>
  withTempDir(async (dir) => {
    const emptyFile = join(dir, "empty.db")
    const fullFile = join(dir, "full.db")
    await populateSqlite(emptyFile, 0)
    await populateSqlite(fullFile, workers)
    const runs: Record<"empty" | "full", Array<Started>> = { empty: [], full: [] }
    for (let round = 0; round < rounds; round++) {
      for (const [name, file] of [["empty", emptyFile], ["full", fullFile]] as const) {
        const started = await startBin(file, ["--max-workers", String(workers + 10)])
        await stopChild(started.child)
        runs[name].push(started)
      }
    }
    const medians = (list: ReadonlyArray<Started>): StartAt => ({
      readyMs: median(list.map((s) => s.readyMs)),
      rss: median(list.map((s) => s.rss)),
      cpuMs: median(list.map((s) => s.cpuMs))
    })
    return { empty: medians(runs.empty), full: medians(runs.full) }
  })

export interface AtCount {
  readonly workers: number
  /** Median milliseconds from spawn to `/readyz` 200. */
  readonly readyMs: number
  /** Median CPU time (ms) the process had used by then. */
  readonly cpuMs: number
  /** Median milliseconds of `GET /v1/workers?limit=100`. */
  readonly listMs: number
  /** Median milliseconds of `GET /v1/workers/{id}` of a Worker not read before. */
  readonly coldGetMs: number
  /** Seconds the bulk insert of the file took. */
  readonly populateSeconds: number
}

interface Store {
  readonly workers: number
  readonly file: string
  readonly ready: Array<number>
  readonly cpu: Array<number>
  readonly list: Array<number>
  readonly get: Array<number>
  sample: ReadonlyArray<string>
  seconds: number
}

/**
 * Two SQLite stores, of `few` and `many` Workers; the bin started on each,
 * alternating, `rounds` times: its start, then `lists` list pages (after a
 * warm-up of 20) and `gets` gets of Workers no run has read before.
 */
export const manyStored = (
  { few, gets, lists, many, rounds }: {
    readonly few: number
    readonly many: number
    readonly rounds: number
    readonly lists: number
    readonly gets: number
  }
): Promise<{ few: AtCount; many: AtCount }> =>
  withTempDir(async (dir) => {
    const sampleSize = gets * rounds
    const stores: Array<Store> = [few, many].map((workers) => ({
      workers,
      file: join(dir, `${workers}.db`),
      ready: [],
      cpu: [],
      list: [],
      get: [],
      sample: [],
      seconds: 0
    }))
    for (const store of stores) {
      const populated = await populateSqlite(store.file, store.workers, sampleSize)
      if (populated.sample.length < sampleSize) throw new Error(`${store.workers} Workers: too few to sample`)
      store.sample = populated.sample
      store.seconds = populated.seconds
    }
    for (let round = 0; round < rounds; round++) {
      for (const store of stores) {
        const started = await startBin(store.file, ["--max-workers", String(store.workers + 10)])
        try {
          store.ready.push(started.readyMs)
          store.cpu.push(started.cpuMs)
          const list = `${started.url}/v1/workers?limit=100`
          await timeGets(Array.from({ length: 20 }, () => list))
          store.list.push(...await timeGets(Array.from({ length: lists }, () => list)))
          const ids = store.sample.slice(round * gets, (round + 1) * gets)
          store.get.push(...await timeGets(ids.map((id) => `${started.url}/v1/workers/${id}`)))
        } finally {
          await stopChild(started.child)
        }
      }
    }
    const [a, b] = stores.map((store): AtCount => ({
      workers: store.workers,
      readyMs: median(store.ready),
      cpuMs: median(store.cpu),
      listMs: median(store.list),
      coldGetMs: median(store.get),
      populateSeconds: store.seconds
    }))
    return { few: a!, many: b! }
  })

const Passivation = Schema.parseJson(Schema.Struct({
  /** Heap with only the warm-up Workers stored. */
  start: Schema.Number,
  /** With the measured Workers stored too, never used. */
  stored: Schema.Number,
  /** With each activated (one cancel each). */
  active: Schema.Number,
  /** How many were active when `active` was measured. */
  activeWorkers: Schema.Number,
  /** Microseconds per activation (a cancel of an idle, inactive Worker). */
  activateUs: Schema.Number,
  /** After all were passivated. */
  passivated: Schema.Number,
  /** Milliseconds from the last activation until none was active. */
  passivatedAfterMs: Schema.Number
}))
export type Passivation = typeof Passivation.Type

/** bench/passivate.ts in a fresh process (`--expose-gc`). */
export const passivation = (store: "memory" | "sqlite", count: number, passivateAfterMs: number): Passivation => {
  const output = execFileSync(
    process.execPath,
    ["--expose-gc", join(benchBuild, "passivate.js"), store, String(count), String(passivateAfterMs)],
    { encoding: "utf8" }
  )
  return Schema.decodeUnknownSync(Passivation)(output.trim().split("\n").pop() ?? "")
}

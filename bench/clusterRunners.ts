// Runner processes of the built bin in cluster mode (docs/cluster.md) for
// the cluster section: started on loopback ports over one database, waited
// for until every runner sees the others with the shards shared out, killed
// with SIGKILL or stopped; and which runner owns a Worker, read from the
// database (the shard of its persisted messages, the advisory lock of that
// shard and the lock holder's connection name).
import { type ChildProcess, spawn } from "node:child_process"
import { join } from "node:path"
import * as Pg from "pg"
import { freePort } from "../scripts/postgresServer.js"
import { root, sleep, stopChild } from "./lib.js"

const BIN = join(root, "dist", "node", "main.js")
/** `SHARD_COUNT` in src/cluster/ShardCount.ts. */
export const TOTAL_SHARDS = 300
/** A runner that has not become ready or joined by then is a failure of the run, not a figure. */
const START_DEADLINE_MS = 120_000

export interface Ports {
  readonly http: number
  readonly runner: number
}

export interface ClusterRunner {
  /** r1, r2, …: for messages. */
  readonly name: string
  /** Its HTTP API, `http://127.0.0.1:<port>`. */
  readonly url: string
  /** Its runner address, `127.0.0.1:<port>`, as `cluster.runner` reports it. */
  readonly address: string
  readonly child: ChildProcess
  /** Resolves once the process is gone. */
  readonly exited: Promise<void>
  /** The last few KiB it wrote, for failure messages. */
  readonly output: () => string
  readonly ports: Ports
}

export interface RunnerSpec {
  readonly name: string
  /** The cluster's database (`--store`). */
  readonly store: string
  /** Environment of the runner beyond the bench's own (its `WORKER_RUNTIME_*` left out). */
  readonly env?: Readonly<Record<string, string>>
  /** The same ports as a runner before (a restart); new free ones otherwise. */
  readonly ports?: Ports
}

const isGone = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null

/** The bench's environment without the runtime's own variables, so that the section decides them. */
const runnerEnv = (extra: Readonly<Record<string, string>>): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith("WORKER_RUNTIME_")) env[key] = value
  }
  return { ...env, ...extra }
}

/** Spawns a runner; resolves once its `/readyz` answers 200 (rejects, with its output, if it exits first). */
export const startRunner = async (spec: RunnerSpec): Promise<ClusterRunner> => {
  const ports = spec.ports ?? { http: await freePort(), runner: await freePort() }
  const address = `127.0.0.1:${ports.runner}`
  const args = [
    BIN,
    "--cluster",
    "--store",
    spec.store,
    "--runner-address",
    address,
    "--host",
    "127.0.0.1",
    "--port",
    String(ports.http),
    "--max-workers",
    "10000"
  ]
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: runnerEnv(spec.env ?? {}),
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000)
  }
  child.stdout?.on("data", keep)
  child.stderr?.on("data", keep)
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const runner: ClusterRunner = {
    name: spec.name,
    url: `http://127.0.0.1:${ports.http}`,
    address,
    child,
    exited,
    output: () => output,
    ports
  }
  const deadline = Date.now() + START_DEADLINE_MS
  for (;;) {
    if (isGone(child)) throw new Error(`${spec.name} exited before it was ready:\n${output}`)
    if (Date.now() > deadline) {
      await stopRunner(runner)
      throw new Error(`${spec.name} not ready after ${START_DEADLINE_MS} ms:\n${output}`)
    }
    const status = await fetch(`${runner.url}/readyz`).then((r) => r.status, () => 0)
    if (status === 200) return runner
    await sleep(100)
  }
}

/** SIGTERM (its drain), then SIGKILL after 20 s; resolves once it is gone. */
export const stopRunner = (runner: ClusterRunner): Promise<void> => stopChild(runner.child, 20_000)

/** SIGKILL; resolves once it is gone. */
export const killRunner = async (runner: ClusterRunner): Promise<void> => {
  if (!isGone(runner.child)) runner.child.kill("SIGKILL")
  await runner.exited
}

interface ClusterInfo {
  readonly runners: number
  readonly shards: number
}

const clusterOf = (json: unknown): ClusterInfo | undefined => {
  if (typeof json !== "object" || json === null || !("cluster" in json)) return undefined
  const cluster = json.cluster
  if (
    typeof cluster === "object" && cluster !== null && "runners" in cluster && typeof cluster.runners === "number" &&
    "shards" in cluster && typeof cluster.shards === "number"
  ) return { runners: cluster.runners, shards: cluster.shards }
  return undefined
}

const infoOf = (runner: ClusterRunner): Promise<ClusterInfo | undefined> =>
  fetch(`${runner.url}/v1/runtime`).then(
    async (response) => response.status === 200 ? clusterOf(await response.json()) : undefined,
    () => undefined
  )

/**
 * Waits until every runner reports `runners.length` runners, each holds
 * some shards and together they hold all of them (a rebalance has settled);
 * resolves with how long that took (ms).
 */
export const waitForRunners = async (runners: ReadonlyArray<ClusterRunner>): Promise<number> => {
  const started = Date.now()
  for (;;) {
    const infos = await Promise.all(runners.map(infoOf))
    const settled = infos.every((info) => info?.runners === runners.length && info.shards > 0) &&
      infos.reduce((sum, info) => sum + (info?.shards ?? 0), 0) === TOTAL_SHARDS
    if (settled) return Date.now() - started
    if (Date.now() - started > START_DEADLINE_MS) {
      throw new Error(
        `${runners.length} runners not settled after ${START_DEADLINE_MS} ms: ${JSON.stringify(infos)}\n${
          runners.map((r) => `--- ${r.name}:\n${r.output()}`).join("\n")
        }`
      )
    }
    await sleep(200)
  }
}

/** The advisory lock number of shard `default:<n>` (SqlRunnerStorage: (group index + 1) × 1,000,000 + n). */
const LOCK_BASE = 1_000_000
/** The runners' connection name (src/cluster/Runner.ts): `worker-runtime runner <address>`. */
const APPLICATION_PREFIX = "worker-runtime runner "

/**
 * Which runner address owns each of `workerIds` now. Each must have had a
 * persisted message (an input): its row in `cluster_messages` names the
 * Worker's shard, as the cluster hashed it; the shard's owner is the runner
 * whose connection holds that shard's advisory lock.
 */
export const ownersOf = async (store: string, workerIds: ReadonlyArray<string>): Promise<Map<string, string>> => {
  const client = new Pg.Client({ connectionString: store })
  await client.connect()
  try {
    const shards = await client.query<{ entity_id: string; shard_id: string }>(
      `SELECT DISTINCT entity_id, shard_id FROM cluster_messages WHERE entity_type = 'Worker' AND entity_id = ANY($1)`,
      [workerIds]
    )
    const locks = await client.query<{ objid: string; application_name: string }>(
      `SELECT l.objid::text AS objid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
       WHERE l.locktype = 'advisory' AND l.granted AND l.objid BETWEEN $1 AND $2
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      [LOCK_BASE + 1, LOCK_BASE + TOTAL_SHARDS]
    )
    const holder = new Map<number, string>()
    for (const lock of locks.rows) {
      if (lock.application_name.startsWith(APPLICATION_PREFIX)) {
        holder.set(Number(lock.objid) - LOCK_BASE, lock.application_name.slice(APPLICATION_PREFIX.length))
      }
    }
    const owners = new Map<string, string>()
    for (const row of shards.rows) {
      const shard = Number(row.shard_id.slice(row.shard_id.lastIndexOf(":") + 1))
      const owner = holder.get(shard)
      if (owner !== undefined) owners.set(row.entity_id, owner)
    }
    for (const id of workerIds) {
      if (!owners.has(id)) {
        throw new Error(`no owner found for Worker ${id} (no persisted message, or its shard unheld)`)
      }
    }
    return owners
  } finally {
    await client.end()
  }
}

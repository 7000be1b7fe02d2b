// Read costs on the PostgreSQL store at scale: list pages (plain, by metadata,
// by status), the counts, and a transcript page, through the Runtime, on a
// database of 100,000 Workers and one transcript of 1,000,000 entries against
// one of 1,000 Workers and a transcript of 10. The store makes each schema
// (its migrations); the rows go in with INSERT … SELECT generate_series.
import { Context, Effect, Layer } from "effect"
import * as Pg from "pg"
import { makeIdGenerator, Runtime, RuntimeFromStore, type RuntimeService, WorkerId } from "../src/index.js"
import { PostgresStoreLive } from "../src/postgres/index.js"
import { now, quantile, quiet } from "./lib.js"

/** Distinct `team` metadata values, one per Worker in turn. */
export const PG_TEAMS = 20

export interface PageSizes {
  /** Workers of the small database, and entries of its transcript. */
  readonly fewWorkers: number
  readonly fewEntries: number
  /** The same of the large one. */
  readonly manyWorkers: number
  readonly manyEntries: number
  /** Measured calls per measure and database. */
  readonly calls: number
}

/** Median microseconds per call. */
export interface PageTimes {
  readonly list: number
  readonly listByMetadata: number
  readonly listByStatus: number
  readonly counts: number
  readonly transcript: number
}

export type PageMeasure = keyof PageTimes

interface Seeded {
  readonly url: string
  /** The id of the `i`th listed Worker (1-based), from the id scheme of the seed. */
  readonly workerId: (i: number) => WorkerId
  readonly workers: number
  readonly transcriptId: WorkerId
  readonly entries: number
  readonly seconds: number
}

const ISO = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`

/**
 * `workers` Workers (about 48% idle, 48% stopped, 3% failed, each with
 * `{ team: "t<i % 20>" }`), plus one idle Worker whose one turn recorded
 * `entries` entries. Ids are the runtime's shape (10 characters of time, 16
 * of "randomness", here the Worker's number), so they sort in creation order.
 * The counts trigger is off during the insert and the counts are set from the
 * rows after it, as the trigger would have kept them.
 */
const seed = async (url: string, workers: number, entries: number): Promise<Seeded> => {
  // The schema is the store's own; its lock is released when the scope ends.
  await Effect.runPromise(quiet(Effect.scoped(Layer.build(PostgresStoreLive({ url })))))
  const start = now()
  const ids = makeIdGenerator()
  const runtimeId = ids.next()
  const prefix = ids.next().slice(0, 10)
  const workerId = (i: number) => WorkerId.make(`${prefix}${String(i).padStart(16, "0")}`)
  const client = new Pg.Client({ connectionString: url })
  await client.connect()
  try {
    const id = (prefix: string) => `${prefix}::text || lpad(i::text, 16, '0')`
    const status = `CASE WHEN i % 31 = 0 THEN 'failed' WHEN i % 2 = 0 THEN 'stopped' ELSE 'idle' END`
    const at = `to_char(timestamp '2026-11-01' + i * interval '1 second', ${ISO})`
    await client.query("BEGIN")
    await client.query("ALTER TABLE workers DISABLE TRIGGER USER")
    await client.query("INSERT INTO meta (key, value) VALUES ('runtime_id', $1)", [runtimeId])
    await client.query(
      `INSERT INTO workers (id, runtime_id, profile, status, created_at, updated_at, turn, last_seq, metadata, queued,
         stop_reason, idempotency_key)
       SELECT ${id("$2")}, $1, 'default', ${status}, ${at}, ${at}, 0, 0, '{"team":"t' || (i % ${PG_TEAMS}) || '"}', 0,
         CASE WHEN ${status} = 'stopped' THEN convert_to('stopped', 'UTF8') END, NULL
       FROM generate_series(1, $3::int) AS i`,
      [runtimeId, prefix, workers]
    )
    await client.query(
      `INSERT INTO worker_metadata (key, value, worker_id)
       SELECT 'team', 't' || (i % ${PG_TEAMS}), ${id("$1")} FROM generate_series(1, $2::int) AS i`,
      [prefix, workers]
    )
    // Number 0: the transcript's Worker sorts before the listed ones.
    const transcriptId = workerId(0)
    const turnAt = `to_char(timestamp '2026-10-31', ${ISO})`
    await client.query(
      `INSERT INTO workers (id, runtime_id, profile, status, created_at, updated_at, turn, last_seq, metadata, queued,
         stop_reason, idempotency_key)
       VALUES ($1, $2, 'default', 'idle', ${turnAt}, ${turnAt}, 1, $3, '{}', 0, NULL, NULL)`,
      [transcriptId, runtimeId, entries]
    )
    await client.query(
      `INSERT INTO entries (worker_id, seq, at, role, content, turn, outcome)
       SELECT $1, s, ${turnAt}, CASE WHEN s % 2 = 1 THEN 'user' ELSE 'worker' END,
         convert_to('entry number ' || s, 'UTF8'), 1, NULL
       FROM generate_series(1, $2::int) AS s`,
      [transcriptId, entries]
    )
    await client.query(
      `INSERT INTO turns (worker_id, turn, status, input_seq, last_seq, started_at, ended_at, reason)
       VALUES ($1, 1, 'completed', 1, $2, ${turnAt}, ${turnAt}, NULL)`,
      [transcriptId, entries]
    )
    await client.query("ALTER TABLE workers ENABLE TRIGGER USER")
    await client.query(
      "UPDATE worker_counts AS c SET count = (SELECT count(*) FROM workers AS w WHERE w.status = c.status)"
    )
    await client.query("COMMIT")
    // Statistics and the visibility map, as autovacuum would leave a database that has run a while.
    await client.query("VACUUM ANALYZE")
    return {
      url,
      workerId,
      workers,
      transcriptId,
      entries,
      seconds: Number(now() - start) / 1e9
    }
  } finally {
    await client.end()
  }
}

/**
 * Ids after a list page's cursor that hold a full page of 50 for each list
 * measure: every Worker; about one in two idle; one in `PG_TEAMS` of team t7.
 * Compared at 1,000 and 100,000 Workers, pages of the same size: from a
 * cursor near the end a page is short, and at 1,000 Workers most t7 pages
 * would be (50 t7 Workers in all).
 */
const ROOM: Record<PageMeasure, number> = {
  list: 50,
  listByStatus: 150,
  listByMetadata: 50 * PG_TEAMS,
  counts: 0,
  transcript: 0
}

/**
 * The call a measure makes, its `i`th time: cursors spread over the ids that
 * leave a full page after them (`ROOM`), the first page among them.
 */
const call = (rt: RuntimeService, db: Seeded, measure: PageMeasure, i: number): Effect.Effect<unknown, unknown> => {
  const after = i % 100 === 0 ? undefined : db.workerId(1 + ((i * 7919) % Math.max(1, db.workers - ROOM[measure])))
  const from = after === undefined ? {} : { after }
  switch (measure) {
    case "list":
      return rt.list({ ...from, limit: 50 })
    case "listByMetadata":
      return rt.list({ ...from, metadata: { team: "t7" }, limit: 50 })
    case "listByStatus":
      return rt.list({ ...from, status: "idle", limit: 50 })
    case "counts":
      return rt.info
    case "transcript":
      // Pages of 10 near the end: what may grow with the transcript is finding the page.
      return rt.transcript(db.transcriptId, { after: Math.max(0, db.entries - 10 - (i % 1000)), limit: 10 })
  }
}

const MEASURES: ReadonlyArray<PageMeasure> = ["list", "listByMetadata", "listByStatus", "counts", "transcript"]
/** Blocks per measure, alternating the two databases, so that neither gets the quieter moments. */
const BLOCKS = 4

/** Median µs per call of each measure on the two databases; and the seconds each seed took. */
export const postgresPages = async (
  fewUrl: string,
  manyUrl: string,
  sizes: PageSizes
): Promise<{ few: PageTimes; many: PageTimes; seedSeconds: { few: number; many: number } }> => {
  const few = await seed(fewUrl, sizes.fewWorkers, sizes.fewEntries)
  const many = await seed(manyUrl, sizes.manyWorkers, sizes.manyEntries)
  const runtimeOn = (db: Seeded) =>
    Effect.map(
      Layer.build(
        RuntimeFromStore({ maxWorkers: db.workers + 10 }).pipe(
          Layer.provide(PostgresStoreLive({ url: db.url }))
        )
      ),
      (context) => Context.get(context, Runtime)
    )
  return Effect.runPromise(quiet(Effect.scoped(Effect.gen(function*() {
    const runtimes = [[few, yield* runtimeOn(few)], [many, yield* runtimeOn(many)]] as const
    const samples = runtimes.map(() => new Map<PageMeasure, Array<number>>(MEASURES.map((m) => [m, []])))
    for (const measure of MEASURES) {
      for (const [db, rt] of runtimes) {
        for (let i = 0; i < 100; i++) yield* call(rt, db, measure, i)
      }
      for (let block = 0; block < BLOCKS; block++) {
        for (const [index, [db, rt]] of runtimes.entries()) {
          const times = samples[index]!.get(measure)!
          for (let n = 0; n < sizes.calls / BLOCKS; n++) {
            const i = block * sizes.calls + n
            const start = now()
            yield* call(rt, db, measure, i)
            times.push(Number(now() - start) / 1e3)
          }
        }
      }
    }
    const [a, b] = samples.map((byMeasure): PageTimes => ({
      list: quantile(byMeasure.get("list")!, 0.5),
      listByMetadata: quantile(byMeasure.get("listByMetadata")!, 0.5),
      listByStatus: quantile(byMeasure.get("listByStatus")!, 0.5),
      counts: quantile(byMeasure.get("counts")!, 0.5),
      transcript: quantile(byMeasure.get("transcript")!, 0.5)
    }))
    return { few: a!, many: b!, seedSeconds: { few: few.seconds, many: many.seconds } }
  }))))
}

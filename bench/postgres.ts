// The PostgreSQL section: its own server (bench/postgresServer.ts), a database
// per measure; commits against raw `pg` (bench/postgresCommits.ts) and read
// costs at scale (bench/postgresPages.ts).
import { postgresCommits, type RawRate } from "./postgresCommits.js"
import { type PageSizes, type PageTimes, postgresPages } from "./postgresPages.js"
import { withPostgres } from "./postgresServer.js"

export interface PostgresOptions {
  readonly quick: boolean
}

export interface PostgresFigures {
  /** Milliseconds the server took to start. */
  readonly startMs: number
  /** Inputs per second, one input at a time (one Worker, each turn to its end before the next input). */
  readonly oneAtATime: { readonly raw: number; readonly store: number }
  /** Inputs per second, `writers` Workers at once, each one input at a time: raw, and the store. */
  readonly concurrent: { readonly raw: RawRate; readonly store: number }
  readonly writers: number
  readonly poolSize: number
  readonly sizes: PageSizes
  readonly few: PageTimes
  readonly many: PageTimes
  readonly seedSeconds: { readonly few: number; readonly many: number }
}

/** The store's default pool size; the raw pool gets the same. */
const POOL_SIZE = 20
const WRITERS = 64

export const postgres = ({ quick }: PostgresOptions): Promise<PostgresFigures> =>
  withPostgres(async (server) => {
    const one = await postgresCommits(
      [{ url: await server.database("raw_one"), countsTrigger: true }],
      await server.database("store_one"),
      { writers: 1, inputs: quick ? 50 : 150, rounds: quick ? 2 : 4, poolSize: POOL_SIZE }
    )
    const many = await postgresCommits(
      // The counts trigger on, as the store has it: it takes the
      // `worker_counts` rows in one order (migration 3), so concurrent raw
      // transactions wait for each other rather than deadlock.
      [{ url: await server.database("raw_many"), countsTrigger: true }],
      await server.database("store_many"),
      { writers: WRITERS, inputs: quick ? 5 : 15, rounds: quick ? 2 : 4, poolSize: POOL_SIZE }
    )
    const sizes: PageSizes = {
      fewWorkers: 1000,
      fewEntries: 10,
      manyWorkers: quick ? 20_000 : 100_000,
      manyEntries: quick ? 100_000 : 1_000_000,
      calls: quick ? 200 : 1000
    }
    const pages = await postgresPages(await server.database("few"), await server.database("many"), sizes)
    return {
      startMs: server.startMs,
      oneAtATime: { raw: one.raw[0]!.rate, store: one.store },
      concurrent: { raw: many.raw[0]!, store: many.store },
      writers: WRITERS,
      poolSize: POOL_SIZE,
      sizes,
      ...pages
    }
  })

/**
 * The bin over a PostgreSQL server that hangs or is taken from it, each test
 * on a server of its own (test/support/postgres.ts): a hung server answers
 * 503 within the request timeout and is served again after it wakes; a lock
 * taken by another runtime during a restart stops this one's writes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type * as Pg from "pg"

import { exitOf, startBin } from "./support/bin.js"
import { eventuallyLive, within } from "./support/eventually.js"
import { dedicatedServer, pgScript, schemaOf, serverPids, withClient } from "./support/postgres.js"
import { raw } from "./support/raw.js"

/** The clients' request timeout (src/http/Client.ts): an answer later than this is a hang to a Backend. */
const REQUEST_TIMEOUT = "30 seconds"

interface Entry {
  readonly seq: number
  readonly content: string
}

/** `url` with `patch` applied. */
const withUrl = (url: string, patch: (url: URL) => void) => {
  const parsed = new URL(url)
  patch(parsed)
  return parsed.toString()
}

const signal = (pids: ReadonlyArray<number>, name: NodeJS.Signals) =>
  Effect.sync(() => {
    for (const pid of pids) {
      try {
        process.kill(pid, name)
      } catch {
        // gone already
      }
    }
  })

describe("postgres store: a hung server", () => {
  it.scopedLive("503 within the request timeout, /readyz 503 within 30 s; after SIGCONT all serves again", () =>
    Effect.gen(function*() {
      const server = yield* dedicatedServer
      const bin = yield* startBin(["--store", server.url])
      const created = yield* raw(bin.url, "/v1/workers", { method: "POST", body: {} })
      expect(created.status).toBe(201)
      const id = (created.json as { id: string }).id
      const acknowledged: Array<Entry> = []
      const input = (content: string) =>
        Effect.tap(
          raw(bin.url, `/v1/workers/${id}/input`, { method: "POST", body: { content } }),
          (response) =>
            Effect.sync(() => response.status === 202 && acknowledged.push((response.json as { entry: Entry }).entry))
        )
      expect((yield* input("before")).status).toBe(202)
      const idle = eventuallyLive(
        Effect.map(raw(bin.url, `/v1/workers/${id}`), (r) => r.json as { status: string }),
        (worker) => worker.status === "idle",
        "the turn's end"
      )
      yield* idle

      // The server and its backends stop answering; their connections stay open.
      const pids = yield* serverPids(server.dir)
      yield* Effect.addFinalizer(() => signal(pids, "SIGCONT"))
      yield* signal(pids, "SIGSTOP")

      const write = yield* raw(bin.url, "/v1/workers", { method: "POST", body: {} }).pipe(
        within("a create answered while the server hangs", REQUEST_TIMEOUT)
      )
      expect(write.status).toBe(503)
      expect(Number(write.headers.get("retry-after"))).toBeGreaterThan(0)
      const read = yield* raw(bin.url, "/v1/workers?limit=10").pipe(
        within("a list answered while the server hangs", REQUEST_TIMEOUT)
      )
      expect(read.status).toBe(503)
      const refusedInput = yield* input("during").pipe(
        within("an input answered while the server hangs", REQUEST_TIMEOUT)
      )
      expect(refusedInput.status).toBe(503)
      yield* eventuallyLive(
        Effect.map(raw(bin.url, "/readyz"), (r) => r.status),
        (status) => status === 503,
        "/readyz 503 while the server hangs",
        { withinMs: 30_000 }
      )
      yield* eventuallyLive(
        Effect.sync(bin.output),
        (output) => /ERROR.*does not answer/.test(output),
        "the hung server logged"
      )

      yield* signal(pids, "SIGCONT")
      yield* eventuallyLive(
        Effect.map(raw(bin.url, "/readyz"), (r) => r.status),
        (status) => status === 200,
        "/readyz 200 once the server answers again"
      )
      expect((yield* raw(bin.url, "/v1/workers", { method: "POST", body: {} })).status).toBe(201)
      expect((yield* input("after")).status).toBe(202)
      yield* idle
      const page = (yield* raw(bin.url, `/v1/workers/${id}/transcript?limit=100`)).json as { entries: Array<Entry> }
      for (const entry of acknowledged) expect(page.entries[entry.seq - 1]).toEqual(entry)
      expect(page.entries.filter((entry) => entry.content === "during")).toEqual([])
      expect(bin.output()).toMatch(/answers again/)
    }))
})

describe("postgres store: the lock taken by another runtime during a restart", () => {
  it.scopedLive("this runtime then serves no writes (503, an error logged), until it is restarted", () =>
    Effect.gen(function*() {
      const server = yield* dedicatedServer
      const admin = <A>(f: (client: Pg.Client) => Promise<A>) => Effect.promise(() => withClient(server.url, f))
      // Runtime A logs in as a role of its own, so that the test can keep it out for a while.
      const urlA = withUrl(server.url, (url) => {
        url.username = "runtime_a"
        url.searchParams.set("options", "-c search_path=place_a")
      })
      const urlB = withUrl(server.url, (url) => url.searchParams.set("options", "-c search_path=place_a"))
      yield* admin(async (client) => {
        await client.query("CREATE ROLE runtime_a LOGIN")
        await client.query(`CREATE SCHEMA ${schemaOf(urlA)} AUTHORIZATION runtime_a`)
      })
      const a = yield* startBin(["--store", urlA])
      const created = yield* raw(a.url, "/v1/workers", { method: "POST", body: {} })
      const id = (created.json as { id: string }).id
      const first = yield* raw(a.url, `/v1/workers/${id}/input`, { method: "POST", body: { content: "from A" } })
      expect(first.status).toBe(202)

      // A cannot log in again until B, started while the server restarts, holds the lock.
      yield* admin((client) => client.query("ALTER ROLE runtime_a NOLOGIN"))
      yield* pgScript("halt", server.dir)
      yield* pgScript("resume", server.dir)
      const b = yield* startBin(["--store", urlB])
      yield* admin((client) => client.query("ALTER ROLE runtime_a LOGIN"))

      yield* eventuallyLive(
        Effect.sync(a.output),
        (output) => /ERROR.*was taken by runtime .*while its connection was lost/.test(output),
        () => `A logging that its lock was taken; its output:\n${a.output()}`
      )
      const refused = yield* raw(a.url, `/v1/workers/${id}/input`, { method: "POST", body: { content: "to A" } })
      expect(refused.status).toBe(503)
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0)
      expect((yield* raw(a.url, "/v1/workers", { method: "POST", body: {} })).status).toBe(503)
      expect((yield* raw(a.url, "/readyz")).status).toBe(503)

      // B serves the database.
      const second = yield* raw(b.url, `/v1/workers/${id}/input`, { method: "POST", body: { content: "from B" } })
      expect(second.status).toBe(202)
      b.child.kill("SIGTERM")
      expect(yield* exitOf(b)).toBe(0)
      // The lock free again, A still writes nothing: what it holds in memory may be older than what B wrote.
      expect((yield* raw(a.url, "/v1/workers", { method: "POST", body: {} })).status).toBe(503)

      // Restarted, A serves again, with every acknowledged input.
      a.child.kill("SIGTERM")
      yield* exitOf(a)
      const again = yield* startBin(["--store", urlA])
      expect((yield* raw(again.url, "/readyz")).status).toBe(200)
      const page = (yield* raw(again.url, `/v1/workers/${id}/transcript?limit=100`)).json as {
        entries: Array<Entry>
      }
      for (const { json } of [first, second]) {
        const entry = (json as { entry: Entry }).entry
        expect(page.entries[entry.seq - 1]).toEqual(entry)
      }
      expect(page.entries.filter((entry) => entry.content === "to A")).toEqual([])
      expect(
        (yield* raw(again.url, `/v1/workers/${id}/input`, { method: "POST", body: { content: "A again" } })).status
      )
        .toBe(202)
    }))
})

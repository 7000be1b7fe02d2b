/**
 * A drain with many open event streams and turns in flight still answers:
 * `/readyz` says 503, reads answer, new work is refused with 503, and the
 * process exits 0 once the grace is over, keeping the queued inputs for the
 * next start (docs/operations.md, Stopping).
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { createConnection, type Socket } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"

import { exitOf, startBin } from "./support/bin.js"
import { eventuallyLive } from "./support/eventually.js"
import { raw } from "./support/raw.js"

const STREAMS = 300
const BUSY = 17
const QUEUED = 10

/** An events stream, once its first event has arrived. */
const follower = (port: number, path: string) =>
  Effect.async<Socket>((resume) => {
    const socket = createConnection(port, "127.0.0.1", () =>
      socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n`))
    socket.on("error", () => {})
    let text = ""
    const onData = (chunk: Buffer) => {
      text += chunk.toString()
      if (text.includes("event: worker")) {
        socket.off("data", onData)
        socket.resume()
        resume(Effect.succeed(socket))
      }
    }
    socket.on("data", onData)
  })

describe("a drain under load (sqlite store)", () => {
  it.scopedLive(`${STREAMS} open streams, ${BUSY} turns and ${BUSY * QUEUED} queued inputs: it answers, then exits 0`, () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "worker-runtime-drain-"))
      const profiles = join(dir, "profiles.json")
      writeFileSync(profiles, JSON.stringify({ slow: { engine: "echo", delayMs: 600_000 } }))
      const args = ["--store", `sqlite:${join(dir, "rt.db")}`, "--profiles", profiles]
      const bin = yield* startBin([...args, "--shutdown-grace-ms", "1000", "--max-streams", String(STREAMS + 10)])
      const ids: Array<string> = []
      for (let i = 0; i < BUSY; i++) {
        const { id } = (yield* raw(bin.url, "/v1/workers", { method: "POST", body: { profile: "slow" } })).json as {
          id: string
        }
        ids.push(id)
        yield* raw(bin.url, `/v1/workers/${id}/input`, { method: "POST", body: { content: "long" } })
        for (let q = 0; q < QUEUED; q++) {
          const queued = yield* raw(bin.url, `/v1/workers/${id}/input`, {
            method: "POST",
            body: { content: `q${q}`, ifBusy: "enqueue" }
          })
          expect(queued.status).toBe(202)
        }
      }
      const port = Number(new URL(bin.url).port)
      const sockets = yield* Effect.forEach(
        Array.from({ length: STREAMS }, (_, i) => ids[i % BUSY]!),
        (id) => follower(port, `/v1/workers/${id}/events`),
        { concurrency: 50 }
      )
      yield* Effect.addFinalizer(() => Effect.sync(() => sockets.forEach((socket) => socket.destroy())))
      bin.child.kill("SIGTERM")
      // Draining: not ready, reads answer, new work is refused; never a connection error.
      const ready = yield* eventuallyLive(raw(bin.url, "/readyz"), (r) => r.status === 503, "/readyz 503")
      expect(ready.json).toMatchObject({ _tag: "Unavailable" })
      expect((yield* raw(bin.url, `/v1/workers/${ids[0]}`)).status).toBe(200)
      const refused = yield* raw(bin.url, `/v1/workers/${ids[0]}/input`, { method: "POST", body: { content: "x" } })
      expect(refused.status).toBe(503)
      expect(yield* exitOf(bin)).toBe(0)
      // The next start has every queued input, and the turns in flight recorded interrupted.
      const after = yield* startBin(args)
      for (const id of ids) {
        const worker = (yield* raw(after.url, `/v1/workers/${id}`)).json as { status: string; queued: number }
        expect(worker.queued + (worker.status === "busy" ? 1 : 0)).toBeGreaterThanOrEqual(QUEUED)
      }
    }))
})

/**
 * Followers that never read cannot take the runtime's memory: a catch-up
 * reads the store a megabyte at a time, an events stream writes the next
 * block only once the socket has taken the last, and a follower's live
 * buffer is bounded in content as well as in events (docs/rest.md).
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { createConnection, type Socket } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"

import { startBin } from "./support/bin.js"
import { eventuallyLive } from "./support/eventually.js"
import { raw } from "./support/raw.js"

const MIB = 1024 * 1024
const ENTRIES = 48
const FOLLOWERS = 8

/** The resident memory of a process, in bytes (Linux). */
const rssOf = (pid: number) =>
  Effect.sync(() => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024)

/** An events stream that reads `atLeast` bytes and then stops reading (its socket stays open). */
const stalledFollower = (port: number, path: string, atLeast: number) =>
  Effect.async<Socket>((resume) => {
    let received = 0
    const socket = createConnection(port, "127.0.0.1", () =>
      socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n`))
    socket.on("error", () => {})
    socket.on("data", (chunk) => {
      received += chunk.length
      if (received >= atLeast) {
        socket.pause()
        socket.removeAllListeners("data")
        resume(Effect.succeed(socket))
      }
    })
  })

describe("followers that never read (sqlite store)", () => {
  it.scopedLive(`${FOLLOWERS} of a transcript of ${ENTRIES} entries of 1 MiB hold the runtime's memory bounded`, () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "worker-runtime-followers-"))
      const profiles = join(dir, "profiles.json")
      const print =
        `const line = "x".repeat(${MIB}) + "\\n"; for (let i = 0; i < ${ENTRIES}; i++) process.stdout.write(line)`
      writeFileSync(
        profiles,
        JSON.stringify({
          big: { engine: "process", command: [process.execPath, "-e", print], maxOutputBytes: (ENTRIES + 1) * MIB }
        })
      )
      const bin = yield* startBin(["--store", `sqlite:${join(dir, "rt.db")}`, "--profiles", profiles])
      const pid = bin.child.pid!
      const { id } = (yield* raw(bin.url, "/v1/workers", { method: "POST", body: { profile: "big" } })).json as {
        id: string
      }
      yield* raw(bin.url, `/v1/workers/${id}/input`, { method: "POST", body: { content: "go" } })
      const turn = (yield* raw(bin.url, `/v1/workers/${id}/turns/1?waitMs=60000`)).json
      expect(turn).toMatchObject({ status: "completed" })
      const before = yield* rssOf(pid)
      const port = Number(new URL(bin.url).port)
      const sockets = yield* Effect.forEach(
        Array.from({ length: FOLLOWERS }),
        () => stalledFollower(port, `/v1/workers/${id}/events?after=0`, 2 * MIB),
        { concurrency: "unbounded" }
      )
      yield* Effect.addFinalizer(() => Effect.sync(() => sockets.forEach((socket) => socket.destroy())))
      // Each has taken 2 MiB and stopped reading: the runtime holds what it could not write yet.
      let peak = 0
      for (let sample = 0; sample < 10; sample++) {
        peak = Math.max(peak, yield* rssOf(pid))
        yield* Effect.sleep(100)
      }
      const grown = (peak - before) / MIB
      // Before the fix each follower framed its whole catch-up (48 MiB) at once: over a gigabyte in all.
      expect(grown, `RSS grew ${grown.toFixed(0)} MiB (from ${(before / MIB).toFixed(0)} MiB)`).toBeLessThan(
        FOLLOWERS * 32
      )
      // And the runtime still answers.
      expect((yield* raw(bin.url, "/healthz")).status).toBe(200)
      console.log(`followers: RSS ${(before / MIB).toFixed(0)} MiB before, peak ${(peak / MIB).toFixed(0)} MiB`)
      yield* eventuallyLive(raw(bin.url, `/v1/workers/${id}`), (r) => r.status === 200, "the Worker")
    }))
})

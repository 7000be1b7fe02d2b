/**
 * A SQLite file deleted or replaced while the runtime runs: noticed within
 * seconds, writes refused with Unavailable (nothing acknowledged that is not
 * in the file), not ready, and an error logged that says what happened.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Logger, LogLevel } from "effect"
import { copyFileSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Runtime, RuntimeFromStore, Unavailable } from "../src/index.js"
import { SqliteStoreLive } from "../src/sqlite/index.js"
import { eventuallyLive } from "./support/eventually.js"

const root = mkdtempSync(join(tmpdir(), "store-lost-"))
afterAll(() => rmSync(root, { recursive: true, force: true }))
let files = 0

/** A Runtime on a fresh file, and the error lines it logs. */
const openRuntime = Effect.gen(function*() {
  const filename = join(root, `${++files}.db`)
  const errors: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    if (LogLevel.greaterThanEqual(logLevel, LogLevel.Error)) errors.push(String(message))
  })
  const context = yield* Layer.build(
    RuntimeFromStore().pipe(Layer.provide(SqliteStoreLive({ filename })))
  ).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
  return { filename, errors, runtime: Context.get(context, Runtime) }
})

describe("a SQLite store whose file goes away", () => {
  it.scopedLive("refuses writes once the file is deleted, is not ready, and logs why", () =>
    Effect.gen(function*() {
      const { errors, filename, runtime } = yield* openRuntime
      const worker = yield* runtime.create({})
      rmSync(filename)
      rmSync(`${filename}-wal`, { force: true })
      const input = yield* Effect.flip(runtime.input(worker.id, { content: "lost?" }))
      expect(input).toBeInstanceOf(Unavailable)
      expect(input.message).toContain("deleted")
      expect(yield* Effect.flip(runtime.create({}))).toBeInstanceOf(Unavailable)
      expect(yield* Effect.flip(runtime.info)).toBeInstanceOf(Unavailable)
      expect(errors.join("\n")).toContain("was deleted")
      // Nothing was acknowledged: the Worker is as it was.
      expect((yield* runtime.get(worker.id)).lastSeq).toBe(0)
    }))

  it.scopedLive("notices a replaced file within seconds, without a write", () =>
    Effect.gen(function*() {
      const { errors, filename, runtime } = yield* openRuntime
      yield* runtime.create({})
      const other = join(root, "other.db")
      copyFileSync(filename, other)
      rmSync(filename)
      copyFileSync(other, filename)
      const info = yield* eventuallyLive(
        Effect.either(runtime.info),
        (result) => result._tag === "Left",
        "the runtime not ready",
        {}
      )
      expect(info._tag === "Left" ? info.left.message : "").toContain("replaced")
      expect(errors.join("\n")).toContain("replaced")
    }))
})

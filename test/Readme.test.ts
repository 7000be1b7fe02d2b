/**
 * The README's curl blocks, run as written (bash and curl) against the built
 * bin, each command's output held against what its comment promises.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startBin } from "./support/bin.js"
import { HANG_MS } from "./support/eventually.js"
import { projectRoot } from "./support/packed.js"
import { raw } from "./support/raw.js"

const readme = readFileSync(join(projectRoot, "README.md"), "utf8")

/** The commands of the first `sh` block after `heading`: continuation lines joined, comment-only lines dropped. */
const commandsAfter = (heading: string): Array<{ readonly command: string; readonly comment: string }> => {
  const start = readme.indexOf(heading)
  const open = readme.indexOf("```sh\n", start)
  const block = readme.slice(open + 6, readme.indexOf("\n```", open))
  return block.replace(/\\\n\s*/g, " ").split("\n").filter((line) => !/^\s*(#|$)/.test(line)).map((line) => {
    // A comment starts at the first " # " outside quotes (the commands here quote no "#").
    const at = line.search(/\s#\s/)
    return at < 0
      ? { command: line.trim(), comment: "" }
      : { command: line.slice(0, at).trim(), comment: line.slice(at).replace(/^\s*#\s*/, "") }
  })
}

const MARK = "<<<end of command>>>"

/** Runs `commands` in one bash (so that variables carry over); the output of each, in order. */
const runAll = (commands: ReadonlyArray<string>, cwd: string, env: Record<string, string>) =>
  Effect.promise(() =>
    new Promise<Array<string>>((resolve, reject) => {
      const script = commands.map((command) => `${command}\nprintf '\\n%s\\n' '${MARK}'`).join("\n")
      execFile("bash", ["-euo", "pipefail", "-c", script], {
        cwd,
        env: { ...process.env, ...env },
        timeout: HANG_MS
      }, (error, stdout, stderr) => {
        if (error !== null) reject(new Error(`${error.message}\n${stdout}\n${stderr}`))
        else resolve(stdout.split(`\n${MARK}\n`).slice(0, commands.length))
      })
    })
  )

describe("the README's curl blocks", () => {
  it.scopedLive("Driving a Worker with curl: every command answers as its comment says", () =>
    Effect.gen(function*() {
      const commands = commandsAfter("## Driving a Worker with curl")
      expect(commands[0]!.command).toBe("R=http://127.0.0.1:8787")
      const bin = yield* startBin([])
      const dir = mkdtempSync(join(tmpdir(), "worker-runtime-readme-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      const outputs = yield* runAll(commands.slice(1).map((c) => c.command), dir, { R: bin.url })
      commands.slice(1).forEach(({ command, comment }, i) => {
        const output = outputs[i]!
        // No command of this block is refused (an error body starts with its tag; the OpenAPI document lists them).
        if (command.includes("openapi.json")) expect(output.startsWith("{\"openapi\":\"3.1.0\""), command).toBe(true)
        else expect(output.slice(0, 200), command).not.toContain("\"_tag\"")
        if (comment.startsWith("{")) expect(output, command).toBe(comment)
        if (comment.startsWith("200 Turn")) expect(JSON.parse(output), command).toMatchObject({ status: "completed" })
        if (comment.startsWith("200 Worker, status \"stopped\"")) {
          expect(JSON.parse(output), command).toMatchObject({ status: "stopped" })
        }
      })
      expect(commands.some((c) => c.command.includes("metadata.team=docs"))).toBe(true)
    }))

  it.scopedLive("When the Worker is busy: reject, enqueue, interrupt and cancel with the profile it shows", () =>
    Effect.gen(function*() {
      const commands = commandsAfter("### When the Worker is busy")
      const dir = mkdtempSync(join(tmpdir(), "worker-runtime-readme-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      // The profiles file, written by the block's own line; then the runtime, started as the block says.
      const [write, start, ...rest] = commands
      expect(write!.command).toMatch(/^echo '.*' > profiles\.json$/)
      yield* runAll([write!.command], dir, {})
      expect(start!.command).toMatch(/^npm start -- /)
      const args = start!.command.slice("npm start -- ".length).split(/\s+/).map((arg) =>
        arg.endsWith(".json") ? join(dir, arg) : arg
      )
      const bin = yield* startBin(args)
      const outputs = yield* runAll(rest.map((c) => c.command), dir, { R: bin.url })
      const inputs = rest.flatMap((c, i) => (c.command.includes("/input") ? [JSON.parse(outputs[i]!)] : []))
      expect(inputs).toHaveLength(4)
      expect(inputs[0]).toMatchObject({ queued: false, entry: { content: "one" } })
      expect(inputs[1]).toMatchObject({ _tag: "Busy" })
      expect(inputs[2]).toMatchObject({ queued: true, position: 1 })
      expect(inputs[3]).toMatchObject({ queued: false, entry: { content: "three" } })
      const cancel = JSON.parse(outputs[rest.findIndex((c) => c.command.includes("/cancel"))]!)
      expect(cancel).toMatchObject({ cancelled: true, worker: { status: "idle", queued: 0 } })
      const id = inputs[0].worker.id as string
      const page = (yield* raw(bin.url, `/v1/workers/${id}/transcript`)).json as {
        entries: Array<{ role: string; content: string }>
      }
      expect(page.entries.filter((entry) => entry.role === "runtime").map((entry) => entry.content)).toEqual([
        "cancelled: interrupted by new input",
        "cancelled (1 queued input dropped)"
      ])
    }))
})

/**
 * The core entry must work for a Backend that installed only `effect` and the
 * packed tarball, and its import graph must hold no platform or sql module.
 */
import { execFileSync } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"

import { describe, expect, it } from "@effect/vitest"

import { VERSION } from "../src/index.js"
import { packIntoScratchProject, projectRoot } from "./support/packed.js"

const embeddedProgram = `
import { Effect } from "effect"
import { Runtime, RuntimeLive, WorkerId } from "worker-runtime"

const program = Effect.gen(function* () {
  const rt = yield* Runtime
  const w = yield* rt.create({})
  const { entry } = yield* rt.input(w.id, { content: "hello" })
  let page = yield* rt.transcript(w.id, {})
  while (page.entries.length < 2) {
    yield* Effect.sleep(5)
    page = yield* rt.transcript(w.id, {})
  }
  const err = yield* Effect.flip(rt.get(WorkerId.make("nope")))
  return { seq: entry.seq, entries: page.entries.map(({ seq, role, content }) => ({ seq, role, content })), err: err._tag }
})

Effect.runPromise(program.pipe(Effect.provide(RuntimeLive()))).then((result) => {
  console.log(JSON.stringify(result))
})
`

describe("the packed package", () => {
  const scratch = packIntoScratchProject()

  it("installs with effect as the only other package", () => {
    expect(scratch.installed.filter((name) => name.startsWith("@effect/"))).toEqual([])
    expect(scratch.installed).toContain("effect")
    expect(scratch.installed).toContain("worker-runtime")
  })

  it("runs the README's embedded program", () => {
    writeFileSync(join(scratch.dir, "program.mjs"), embeddedProgram)
    const output = execFileSync("node", ["program.mjs"], { cwd: scratch.dir, encoding: "utf8" })
    expect(JSON.parse(output)).toEqual({
      seq: 1,
      entries: [
        { seq: 1, role: "user", content: "hello" },
        { seq: 2, role: "worker", content: "hello" }
      ],
      err: "UnknownWorker"
    })
  })

  it("has a core entry whose import graph reaches no platform or sql module", () => {
    const entry = join(scratch.dir, "node_modules", "worker-runtime", "dist", "index.js")
    const output = execFileSync("node", [join(projectRoot, "build", "scripts", "check-core-imports.js"), entry], {
      encoding: "utf8"
    })
    expect(output).toContain("packages: effect")
  })

  it("declares effect as its only dependency and the rest as optional peers", () => {
    const manifest = JSON.parse(readFileSync(join(projectRoot, "package.json"), "utf8")) as {
      version: string
      dependencies: Record<string, string>
      peerDependencies: Record<string, string>
      peerDependenciesMeta: Record<string, { optional: boolean }>
      exports: Record<string, unknown>
    }
    expect(Object.keys(manifest.dependencies)).toEqual(["effect"])
    for (const peer of ["@effect/platform", "@effect/platform-node", "@effect/sql", "@effect/sql-sqlite-node"]) {
      expect(manifest.peerDependencies[peer], peer).toBeDefined()
      expect(manifest.peerDependenciesMeta[peer]?.optional, peer).toBe(true)
    }
    expect(Object.keys(manifest.exports)).toEqual(expect.arrayContaining([".", "./http", "./sqlite", "./node"]))
    expect(manifest.version).toBe(VERSION)
  })
})

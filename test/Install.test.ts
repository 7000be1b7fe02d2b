/**
 * Installing as a new user would: `npm pack`, then the README's own install
 * commands in a new project (npm's normal resolution, from the registry),
 * then the README's and docs/engines.md's own code blocks, compiled with
 * TypeScript and run. Nothing here is a copy of the docs.
 */
import { describe, expect, it } from "@effect/vitest"
import { execFileSync, spawn } from "node:child_process"
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { VERSION } from "../src/index.js"
import { projectRoot } from "./support/packed.js"

const readme = readFileSync(join(projectRoot, "README.md"), "utf8")
const engines = readFileSync(join(projectRoot, "docs", "engines.md"), "utf8")

/** The first fenced block of `language` after `heading`. */
const codeBlock = (markdown: string, heading: string, language: string): string => {
  const start = markdown.indexOf(heading)
  if (start < 0) throw new Error(`no heading ${heading}`)
  const open = markdown.indexOf("```" + language + "\n", start)
  const close = markdown.indexOf("\n```", open + 4)
  return markdown.slice(open + language.length + 4, close + 1)
}

/** The `npm install` commands of the README's Install section, continuation lines joined, comments dropped. */
const installCommands = codeBlock(readme, "## Install", "sh")
  .replace(/\\\n\s*/g, "")
  .split("\n")
  .map((line) => line.replace(/#.*$/, "").trim())
  .filter((line) => line.startsWith("npm install "))
  .map((line) => line.slice("npm install ".length).split(/\s+/))

const run = (cwd: string, command: string, args: ReadonlyArray<string>) =>
  execFileSync(command, [...args], { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })

const tsc = (cwd: string) =>
  run(cwd, process.execPath, [join(projectRoot, "node_modules", "typescript", "lib", "tsc.js"), "-p", "."])

/** A new project holding the packed tarball and what `packages` names (with the tarball for `worker-runtime`). */
const newProject = (packages: ReadonlyArray<string>) => {
  const dir = mkdtempSync(join(tmpdir(), "worker-runtime-install-"))
  const tarball = run(projectRoot, "npm", ["pack", "--silent", "--pack-destination", dir]).trim().split("\n").pop()!
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "backend", private: true, type: "module" }))
  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        module: "NodeNext",
        moduleResolution: "NodeNext",
        target: "ES2022",
        lib: ["ES2022", "DOM"],
        types: [],
        skipLibCheck: true
      },
      include: ["*.ts"]
    })
  )
  const specs = packages.map((name) => (name === "worker-runtime" ? `./${tarball}` : name))
  run(dir, "npm", ["install", "--no-audit", "--no-fund", ...specs])
  return dir
}

/** The version of every installed copy of `name`: a `node_modules/<name>` directory anywhere in the tree. */
const copiesOf = (dir: string, name: string): Array<string> => {
  const versions: Array<string> = []
  const walk = (modules: string) => {
    if (!existsSync(modules)) return
    for (const entry of readdirSync(modules)) {
      const scoped = entry.startsWith("@") ? readdirSync(join(modules, entry)).map((sub) => `${entry}/${sub}`) : [entry]
      for (const pkg of scoped) {
        const path = join(modules, pkg)
        if (pkg === name) {
          const manifest = JSON.parse(readFileSync(join(path, "package.json"), "utf8")) as { version: string }
          versions.push(manifest.version)
        }
        walk(join(path, "node_modules"))
      }
    }
  }
  walk(join(dir, "node_modules"))
  return versions
}

describe("the package manifest", () => {
  it("has no dependencies: effect is a peer, the @effect packages optional peers", () => {
    const manifest = JSON.parse(readFileSync(join(projectRoot, "package.json"), "utf8")) as {
      version: string
      dependencies?: Record<string, string>
      peerDependencies: Record<string, string>
      peerDependenciesMeta: Record<string, { optional: boolean }>
      exports: Record<string, unknown>
    }
    expect(manifest.dependencies).toBeUndefined()
    expect(manifest.peerDependencies["effect"]).toBe("^3.22.4")
    expect(manifest.peerDependenciesMeta["effect"]).toBeUndefined()
    for (const peer of ["@effect/platform", "@effect/platform-node", "@effect/sql", "@effect/sql-sqlite-node"]) {
      expect(manifest.peerDependencies[peer], peer).toBeDefined()
      expect(manifest.peerDependenciesMeta[peer]?.optional, peer).toBe(true)
    }
    expect(Object.keys(manifest.exports)).toEqual(expect.arrayContaining([".", "./http", "./sqlite", "./node"]))
    expect(manifest.version).toBe(VERSION)
  })
})

describe("installing as the README says", () => {
  it("gives the core with one effect 3, and the README's program compiles and prints what it says", () => {
    const core = installCommands[0]!
    expect(core).toEqual(["worker-runtime", "effect@3"])
    const dir = newProject(core)
    try {
      const effects = copiesOf(dir, "effect")
      expect(effects).toHaveLength(1)
      expect(effects[0]).toMatch(/^3\./)
      const program = codeBlock(readme, "Embedded in a Backend", "ts")
      writeFileSync(join(dir, "program.ts"), program)
      tsc(dir)
      const output = run(dir, process.execPath, ["program.js"]).trim()
      const promised = /^\/\/ (\{.*\})$/m.exec(program)?.[1]
      expect(promised).toBeDefined()
      expect(JSON.parse(output)).toEqual(JSON.parse(promised!))
      // The core entry's import graph, as installed, holds no platform or sql module.
      const entry = join(dir, "node_modules", "worker-runtime", "dist", "index.js")
      const graph = run(projectRoot, process.execPath, [
        join(projectRoot, "build", "scripts", "check-core-imports.js"),
        entry
      ])
      expect(graph).toContain("packages: effect")
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 180_000)

  it(
    "runs the bin and an embedded process engine with platform-node and cli, without the SQLite packages",
    async () => {
      const node = installCommands[2]!
      expect(node).toContain("@effect/platform-node@^0.108")
      const dir = newProject(node)
      try {
        expect(() => run(dir, process.execPath, ["-e", "import('@effect/sql-sqlite-node')"])).toThrow()
        // The embedding example of docs/engines.md, with the profiles file its comment shows.
        const example = codeBlock(engines, "## Embedding the process engine", "ts")
        const profiles = /\/\/ profiles\.json: (\{.*\})$/m.exec(example)?.[1]
        expect(profiles).toBeDefined()
        writeFileSync(join(dir, "profiles.json"), profiles!)
        writeFileSync(join(dir, "embedded.ts"), example)
        tsc(dir)
        const printed = run(dir, process.execPath, ["embedded.js"]).trim()
        const promised = example.split("\n").filter((line) => /^\/\/ (user|worker|runtime): /.test(line)).map((line) =>
          line.slice(3)
        )
        expect(printed.split("\n")).toEqual(promised)
        // The bin on the memory store: it serves, and exits 0 on SIGTERM.
        const bin = spawn(join(dir, "node_modules", ".bin", "worker-runtime"), ["--port", "0"], { cwd: dir })
        let output = ""
        bin.stdout.on("data", (chunk) => (output += chunk))
        bin.stderr.on("data", (chunk) => (output += chunk))
        const url = await new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`the bin did not start: ${output}`)), 30_000)
          const poll = setInterval(() => {
            const match = /listening on (http:\/\/[^\s]+)/.exec(output)
            if (match !== null) {
              clearTimeout(timer)
              clearInterval(poll)
              resolve(match[1]!)
            }
          }, 50)
        })
        const health = await fetch(`${url}/healthz`)
        expect(await health.json()).toEqual({ status: "ok" })
        const exit = new Promise<number | null>((resolve) => bin.on("exit", resolve))
        bin.kill("SIGTERM")
        expect(await exit).toBe(0)
        // Asking for SQLite without its packages is a clear start-up error.
        const sqlite = spawn(join(dir, "node_modules", ".bin", "worker-runtime"), [
          "--port",
          "0",
          "--store",
          "sqlite:./data/runtime.db"
        ], { cwd: dir })
        let sqliteOutput = ""
        sqlite.stderr.on("data", (chunk) => (sqliteOutput += chunk))
        const sqliteExit = await new Promise<number | null>((resolve) => sqlite.on("exit", resolve))
        expect(sqliteExit).not.toBe(0)
        expect(sqliteOutput).toContain("@effect/sql-sqlite-node")
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
    240_000
  )
})

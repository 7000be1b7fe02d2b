/**
 * Installing as a new user would: `npm pack`, then the README's own install
 * commands in a new project (npm's normal resolution, from the registry),
 * then the README's and docs/engines.md's own code blocks, compiled with
 * TypeScript and run. Nothing here is a copy of the docs.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { execFile, spawn } from "node:child_process"
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { VERSION } from "../src/index.js"
import { HANG_MS } from "./support/eventually.js"
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

/** The README's Install block, continuation lines joined, comments dropped: one command a line. */
const installLines = codeBlock(readme, "## Install", "sh")
  .replace(/\\\n\s*/g, "")
  .split("\n")
  .map((line) => line.replace(/#.*$/, "").trim())
  .filter((line) => line !== "")

/** The line that packs the checkout and sets TGZ, without its leading `npm ci` (the checkout is installed). */
const packLine = (() => {
  const line = installLines[0]!
  if (!line.startsWith("npm ci && ")) throw new Error(`the Install block starts with ${line}`)
  return line.slice("npm ci && ".length)
})()

/** The `npm install` lines, as written (`$TGZ` included). */
const installCommands = installLines.filter((line) => line.startsWith("npm install "))

/** Every `ts` block of the README, in order: each is compiled and run below. */
const readmeTsBlocks = readme.split("```ts\n").slice(1).map((rest) => rest.slice(0, rest.indexOf("\n```") + 1))

/**
 * A command's stdout; its output in the error when it fails. Asynchronous: a
 * synchronous install would block the test worker for a minute, and vitest
 * then reports "Timeout calling onTaskUpdate".
 */
const run = (cwd: string, command: string, args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = process.env) =>
  new Promise<string>((resolve, reject) => {
    execFile(
      command,
      [...args],
      { cwd, encoding: "utf8", env, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error === null) resolve(stdout)
        else reject(new Error(`${command} ${args.join(" ")} failed: ${error.message}\n${stdout}\n${stderr}`))
      }
    )
  })

/** A line of the README run as a shell would, with `TGZ` set. */
const sh = (cwd: string, line: string, env: NodeJS.ProcessEnv = {}) =>
  run(cwd, "bash", ["-euo", "pipefail", "-c", line], { ...process.env, ...env })

const tsc = (cwd: string) =>
  run(cwd, process.execPath, [join(projectRoot, "node_modules", "typescript", "lib", "tsc.js"), "-p", "."])

/** The tarball, made by the README's own line in the checkout (and removed at the end). */
let tarball = ""
beforeAll(async () => {
  tarball = (await sh(projectRoot, `${packLine}; echo "$TGZ"`)).trim().split("\n").pop()!
  expect(tarball).toMatch(/\/worker-runtime-[0-9.]+\.tgz$/)
  expect(existsSync(tarball)).toBe(true)
}, 300_000)
afterAll(() => rmSync(tarball, { force: true }))

/** A new project where the README's install `lines` were run. */
const newProject = async (lines: ReadonlyArray<string>) => {
  const dir = mkdtempSync(join(tmpdir(), "worker-runtime-install-"))
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "backend", private: true, type: "module" }))
  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noUnusedLocals: true,
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
  for (const line of lines) await sh(dir, `${line} --no-audit --no-fund`, { TGZ: tarball })
  return dir
}

/** The lines a block promises it prints: its comments `// role: content`. */
const promisedLines = (block: string) =>
  block.split("\n").filter((line) => /^\/\/ (user|worker|runtime): /.test(line)).map((line) => line.slice(3))

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
  it("gives the core with one effect 3, and the README's core programs compile and print what they say", async () => {
    const core = installCommands[0]!
    expect(core).toBe("npm install $TGZ effect@3")
    const dir = await newProject([core])
    try {
      const effects = copiesOf(dir, "effect")
      expect(effects).toHaveLength(1)
      expect(effects[0]).toMatch(/^3\./)
      const program = codeBlock(readme, "Embedded in a Backend", "ts")
      writeFileSync(join(dir, "program.ts"), program)
      const following = codeBlock(readme, "### Following a Worker", "ts")
      writeFileSync(join(dir, "following.ts"), following)
      await tsc(dir)
      const output = (await run(dir, process.execPath, ["program.js"])).trim()
      const promised = /^\/\/ (\{.*\})$/m.exec(program)?.[1]
      expect(promised).toBeDefined()
      expect(JSON.parse(output)).toEqual(JSON.parse(promised!))
      const followed = (await run(dir, process.execPath, ["following.js"])).trim()
      expect(promisedLines(following)).toHaveLength(3)
      expect(followed.split("\n")).toEqual(promisedLines(following))
      // The core entry's import graph, as installed, holds no platform or sql module.
      const entry = join(dir, "node_modules", "worker-runtime", "dist", "index.js")
      const graph = await run(projectRoot, process.execPath, [
        join(projectRoot, "build", "scripts", "check-core-imports.js"),
        entry
      ])
      expect(graph).toContain("packages: effect")
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("runs every TypeScript block of the README (three: core, following, two layers)", () => {
    expect(readmeTsBlocks).toEqual([
      codeBlock(readme, "Embedded in a Backend", "ts"),
      codeBlock(readme, "### Following a Worker", "ts"),
      codeBlock(readme, "## One Backend, two layers", "ts")
    ])
  })

  it(
    "runs the bin, an embedded process engine and the two-layers program with platform-node and cli, " +
      "without the SQLite packages; /metrics once the README's OpenTelemetry line is installed",
    async () => {
      const node = installCommands[2]!
      expect(node).toContain("@effect/platform-node@^0.108")
      const dir = await newProject([node])
      /** The installed bin with `args`; its URL once it listens, and its exit. */
      const startBin = async (args: ReadonlyArray<string>) => {
        const bin = spawn(join(dir, "node_modules", ".bin", "worker-runtime"), ["--port", "0", ...args], { cwd: dir })
        let output = ""
        bin.stdout.on("data", (chunk) => (output += chunk))
        bin.stderr.on("data", (chunk) => (output += chunk))
        const exit = new Promise<number | null>((resolve) => bin.on("exit", resolve))
        const url = await new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`the bin did not start: ${output}`)), HANG_MS)
          const poll = setInterval(() => {
            const match = /listening on (http:\/\/[^\s]+)/.exec(output)
            if (match !== null || bin.exitCode !== null) {
              clearTimeout(timer)
              clearInterval(poll)
              if (match === null) reject(new Error(`the bin exited: ${output}`))
              else resolve(match[1]!)
            }
          }, 50)
        })
        return { url, exit, output: () => output, stop: () => bin.kill("SIGTERM") }
      }
      try {
        await expect(run(dir, process.execPath, ["-e", "import('@effect/sql-sqlite-node')"])).rejects.toThrow()
        // The embedding example of docs/engines.md, with the profiles file its comment shows.
        const example = codeBlock(engines, "## Embedding the process engine", "ts")
        const profiles = /\/\/ profiles\.json: (\{.*\})$/m.exec(example)?.[1]
        expect(profiles).toBeDefined()
        writeFileSync(join(dir, "profiles.json"), profiles!)
        writeFileSync(join(dir, "embedded.ts"), example)
        // The README's two layers: the same Backend code embedded, then against the bin.
        writeFileSync(join(dir, "layers.ts"), codeBlock(readme, "## One Backend, two layers", "ts"))
        await tsc(dir)
        const printed = (await run(dir, process.execPath, ["embedded.js"])).trim()
        expect(printed.split("\n")).toEqual(promisedLines(example))
        expect(await run(dir, process.execPath, ["layers.js"])).toMatch(/^started \S+\n$/)
        // The bin on the memory store: it serves, and exits 0 on SIGTERM.
        const bin = await startBin([])
        const health = await fetch(`${bin.url}/healthz`)
        expect(await health.json()).toEqual({ status: "ok" })
        const remote = await run(dir, process.execPath, ["layers.js"], { ...process.env, RUNTIME_URL: bin.url })
        const [, id] = /^started (\S+)\n$/.exec(remote) ?? []
        expect((await fetch(`${bin.url}/v1/workers/${id}`)).status).toBe(200)
        // Without the OpenTelemetry packages: no /metrics, and the bin said why.
        expect((await fetch(`${bin.url}/metrics`)).status).toBe(404)
        expect(bin.output()).toContain("@effect/opentelemetry")
        bin.stop()
        expect(await bin.exit).toBe(0)
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
        // The README's line for /metrics, as written: then it answers.
        const metricsLine = installCommands.find((line) => line.includes("@opentelemetry/exporter-prometheus"))
        expect(metricsLine).toBeDefined()
        await sh(dir, `${metricsLine!} --no-audit --no-fund`, { TGZ: tarball })
        const measured = await startBin([])
        const metrics = await fetch(`${measured.url}/metrics`)
        expect(metrics.status).toBe(200)
        expect(await metrics.text()).toContain("worker_runtime_workers")
        measured.stop()
        expect(await measured.exit).toBe(0)
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    }
  )
})

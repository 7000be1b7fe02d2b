/**
 * Packs the package (built by the global setup), and installs the tarball
 * into a scratch project that holds nothing but `effect` (and what `effect`
 * itself depends on), copied from this checkout's node_modules: the install a
 * Backend that embeds the core would have, without touching the network.
 */
import { execFileSync } from "node:child_process"
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..")

const copyPackageClosure = (name: string, into: string, seen = new Set<string>()): void => {
  if (seen.has(name)) return
  seen.add(name)
  const source = join(projectRoot, "node_modules", name)
  cpSync(source, join(into, "node_modules", name), { recursive: true, dereference: true })
  const manifest = JSON.parse(readFileSync(join(source, "package.json"), "utf8")) as {
    dependencies?: Record<string, string>
  }
  for (const dependency of Object.keys(manifest.dependencies ?? {})) copyPackageClosure(dependency, into, seen)
}

/** A scratch project with the packed `worker-runtime` and `effect`, nothing else. */
export const packIntoScratchProject = (): { readonly dir: string; readonly installed: ReadonlyArray<string> } => {
  const dir = mkdtempSync(join(tmpdir(), "worker-runtime-pack-"))
  const output = execFileSync("npm", ["pack", "--silent", "--pack-destination", dir], {
    cwd: projectRoot,
    encoding: "utf8"
  })
  const tarball = join(dir, output.trim().split("\n").pop()!)
  const target = join(dir, "node_modules", "worker-runtime")
  mkdirSync(target, { recursive: true })
  execFileSync("tar", ["-xzf", tarball, "-C", target, "--strip-components=1"])
  copyPackageClosure("effect", dir)
  const installed = readdirSync(join(dir, "node_modules")).flatMap((name) =>
    name.startsWith("@") ? readdirSync(join(dir, "node_modules", name)).map((sub) => `${name}/${sub}`) : [name]
  )
  if (!existsSync(join(target, "dist", "index.js"))) throw new Error("the tarball holds no dist/index.js")
  return { dir, installed }
}

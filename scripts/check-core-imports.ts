#!/usr/bin/env node
// Walks the import graph of a built entry (default: dist/index.js) and fails
// when any module it reaches is an @effect/platform* or @effect/sql* package:
// the core entry must run with `effect` alone. Runs compiled, from build/scripts/.
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..")
const entry = resolve(root, process.argv[2] ?? "dist/index.js")
const forbidden = /^@effect\/(platform|sql)/
const importPattern =
  /(?:^|[\s;])(?:import|export)\s*(?:[^'"]*?\sfrom\s*)?["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g

const seen = new Set<string>()
const packages = new Set<string>()
const offenders: Array<string> = []
const queue = [entry]
for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
  if (seen.has(file)) continue
  seen.add(file)
  const source = readFileSync(file, "utf8")
  for (const match of source.matchAll(importPattern)) {
    const specifier = match[1] ?? match[2]
    if (specifier === undefined) continue
    if (specifier.startsWith(".")) {
      queue.push(resolve(dirname(file), specifier))
      continue
    }
    if (specifier.startsWith("node:")) continue
    const name = specifier.startsWith("@")
      ? specifier.split("/").slice(0, 2).join("/")
      : specifier.split("/")[0] ?? specifier
    packages.add(name)
    if (forbidden.test(name)) offenders.push(`${file}: ${specifier}`)
    // Follow packages too, so a dependency that pulls in platform is caught.
    if (name !== "effect" && !forbidden.test(name)) {
      try {
        queue.push(createRequire(file).resolve(specifier))
      } catch {
        offenders.push(`${file}: ${specifier} (unresolvable)`)
      }
    }
  }
}
if (offenders.length > 0) {
  console.error(`core entry ${entry} reaches forbidden modules:\n  ${offenders.join("\n  ")}`)
  process.exit(1)
}
console.log(`core entry: ${seen.size} modules, packages: ${[...packages].sort().join(", ") || "none"}`)

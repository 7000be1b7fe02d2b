/**
 * Builds `dist/` once before any test file runs: the pack and bin tests use it;
 * and `build/` (the compiled scripts): the pack test runs check-core-imports.
 */
import { execFileSync } from "node:child_process"
import { dirname, resolve } from "node:path"
import { fileURLToPath } from "node:url"

export default function setup(): void {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..")
  execFileSync("npm", ["run", "build", "--silent"], { cwd: root, stdio: "inherit" })
  execFileSync("npm", ["run", "tools", "--silent"], { cwd: root, stdio: "inherit" })
}

/**
 * The `e2e` project's global setup (vitest.config.ts): builds `dist/` once
 * before its test files run (the pack, bin and crash tests and the SQLite
 * second process use it), and `build/` (the compiled scripts): the pack test
 * runs check-core-imports. The `unit` project needs neither.
 */
import { execFileSync } from "node:child_process"
import { dirname, resolve } from "node:path"
import { fileURLToPath } from "node:url"

export default function setup(): void {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..")
  execFileSync("npm", ["run", "build", "--silent"], { cwd: root, stdio: "inherit" })
  execFileSync("npm", ["run", "tools", "--silent"], { cwd: root, stdio: "inherit" })
}

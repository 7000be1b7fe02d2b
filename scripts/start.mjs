// `npm start`: the runtime process from the sources, quickly. A type-checked
// build (`npm run build`, tsc) takes tens of seconds on a busy machine; to
// start, the sources only need their types stripped, which esbuild does in
// well under a second. So: when dist/ is older than src/ (or missing), each
// source file is transpiled into dist/ as it is (no bundle), then the bin in
// dist/ runs. The build's incremental state is dropped then, so that the next
// `npm run build` writes the whole of dist/ again, declarations included.
import { transform } from "esbuild"
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { dirname, join, relative } from "node:path"
import { performance } from "node:perf_hooks"
import { fileURLToPath, pathToFileURL } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const src = join(root, "src")
const dist = join(root, "dist")
const main = join(dist, "node", "main.js")

const sources = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    return entry.isDirectory() ? sources(path) : entry.name.endsWith(".ts") ? [path] : []
  })

const mtime = (path) => {
  try {
    return statSync(path).mtimeMs
  } catch {
    return -1
  }
}

const files = sources(src)
const builtAt = mtime(main)
if (builtAt < 0 || files.some((file) => mtime(file) > builtAt)) {
  const started = performance.now()
  await Promise.all(files.map(async (file) => {
    const out = join(dist, relative(src, file)).replace(/\.ts$/, ".js")
    const { code, map } = await transform(readFileSync(file, "utf8"), {
      loader: "ts",
      format: "esm",
      platform: "node",
      target: "node20",
      sourcemap: "external",
      sourcefile: relative(dirname(out), file)
    })
    mkdirSync(dirname(out), { recursive: true })
    writeFileSync(out, `${code}//# sourceMappingURL=${out.slice(dirname(out).length + 1)}.map\n`)
    writeFileSync(`${out}.map`, map)
  }))
  rmSync(join(root, "tsconfig.build.tsbuildinfo"), { force: true })
  console.error(
    `worker-runtime: built dist/ from src/ (types stripped, not checked) in ${
      Math.round(performance.now() - started)
    } ms; npm run build type-checks`
  )
}

await import(pathToFileURL(main).href)

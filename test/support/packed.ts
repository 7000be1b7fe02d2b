/** The project's root directory, for tests that run its scripts, its bin or `npm pack`. */
import { dirname, resolve } from "node:path"
import { fileURLToPath } from "node:url"

export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..")

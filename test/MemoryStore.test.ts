import { Layer } from "effect"

import { makeMemoryStore, RuntimeStore } from "../src/index.js"
import { storeSuite } from "./support/storeSuite.js"

storeSuite("memory store", () => {
  const store = makeMemoryStore()
  return () => Layer.succeed(RuntimeStore, store)
})

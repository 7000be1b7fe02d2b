#!/usr/bin/env node
// Writes docs/openapi.json from RuntimeApi (`npm run openapi`); runs compiled,
// from build/scripts/.
import { OpenApi } from "@effect/platform"
import { writeFileSync } from "node:fs"
import { RuntimeApi } from "../src/http/Api.js"

writeFileSync(
  new URL("../../docs/openapi.json", import.meta.url),
  JSON.stringify(OpenApi.fromApi(RuntimeApi), null, 2) + "\n"
)
console.log("wrote docs/openapi.json")

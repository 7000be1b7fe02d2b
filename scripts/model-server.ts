#!/usr/bin/env node
// A model server to try the model engines by hand, without a model: it speaks
// the OpenAI Responses API and the Anthropic Messages API, streaming, and
// answers every request by echoing the last user message word by word.
// Runs compiled, from build/scripts/ (`npx tsc -p tsconfig.tools.json`):
//   node build/scripts/model-server.js [--port 8787] [--delay-ms 150]
import { reply } from "./modelServer/Script.js"
import { lastUserText, startModelServer } from "./modelServer/Server.js"

const flag = (name: string, fallback: number): number => {
  const at = process.argv.indexOf(`--${name}`)
  const value = at === -1 ? undefined : Number(process.argv[at + 1])
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value < 0) {
    console.error(`model-server: --${name} takes a whole number (got ${process.argv[at + 1] ?? "nothing"})`)
    process.exit(2)
  }
  return value
}

const port = flag("port", 8787)
const delayMs = flag("delay-ms", 150)

const server = await startModelServer({
  port,
  fallback: (request) => {
    const text = lastUserText(request.body).trim()
    return reply(text === "" ? "You said nothing." : `You said: ${text}`, { delayMs })
  }
})

console.log(`model server listening on ${server.url}`)
console.log(`  openai    (Responses API, POST /v1/responses): apiUrl ${server.url}/v1`)
console.log(`  anthropic (Messages API,  POST /v1/messages):  apiUrl ${server.url}`)
console.log(`try: curl -N ${server.url}/v1/responses -d '{"model":"m","input":"hello there"}'`)

const stop = () => {
  void server.close().then(() => process.exit(0))
}
process.on("SIGINT", stop)
process.on("SIGTERM", stop)

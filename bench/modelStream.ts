// A bare reader of the model server's streamed reply (OpenAI Responses SSE,
// bench/model.ts): one node:http POST, frames split on blank lines, every
// frame's JSON parsed (as a client library does), the text deltas of each
// chunk read handed on together with the monotonic time (ns) it arrived. What the pass-through proxy
// and the in-process bare client of the model benchmarks do with the stream.
import { request } from "node:http"
import { now } from "./lib.js"

export interface DeltaStream {
  /** Resolves once the reply has ended (or the connection failed). */
  readonly ended: Promise<void>
}

const dataOf = (frame: string): string | undefined => {
  for (const line of frame.split("\n")) if (line.startsWith("data: ")) return line.slice(6)
  return undefined
}

const deltaOf = (json: unknown): string | undefined =>
  typeof json === "object" && json !== null && "type" in json && json.type === "response.output_text.delta" &&
    "delta" in json && typeof json.delta === "string"
    ? json.delta
    : undefined

/** POSTs `body` to `url` (a Responses endpoint) and calls `onDeltas` with the text deltas of each chunk read. */
export const streamDeltas = (
  url: string,
  body: unknown,
  onDeltas: (texts: ReadonlyArray<string>, at: bigint) => void
): DeltaStream => {
  let done: () => void = () => {}
  const ended = new Promise<void>((resolve) => (done = resolve))
  const req = request(url, {
    method: "POST",
    agent: false,
    headers: { "content-type": "application/json", accept: "text/event-stream" }
  }, (response) => {
    response.setEncoding("utf8")
    let buffer = ""
    response.on("data", (chunk: string) => {
      const at = now()
      buffer += chunk
      const texts: Array<string> = []
      for (;;) {
        const end = buffer.indexOf("\n\n")
        if (end < 0) break
        const data = dataOf(buffer.slice(0, end))
        buffer = buffer.slice(end + 2)
        if (data === undefined) continue
        const delta = deltaOf(JSON.parse(data))
        if (delta !== undefined) texts.push(delta)
      }
      if (texts.length > 0) onDeltas(texts, at)
    })
    response.on("close", done)
  })
  req.on("error", done)
  req.end(JSON.stringify(body))
  return { ended }
}

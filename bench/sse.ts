// A minimal server-sent events consumer for the benchmarks: one node:http
// request (and socket) per stream, `accept: text/event-stream`, frames split
// on blank lines. The runtime's frames are `id: <seq>\nevent: entry\ndata:
// <json>\n\n`; comments (`: ping`) and `retry:` are skipped.
import { request } from "node:http"
import { now } from "./lib.js"

export interface SseFrame {
  readonly event: string
  readonly data: string
  readonly id: string | undefined
}

export interface SseStream {
  /** Resolves with the first frame's event name (the runtime sends `worker` first). */
  readonly opened: Promise<string>
  /** Resolves once the response has ended or the socket closed. */
  readonly closed: Promise<void>
  readonly close: () => void
}

const parseFrame = (text: string): SseFrame | undefined => {
  let event = "message"
  let id: string | undefined = undefined
  const data: Array<string> = []
  let fields = 0
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith(":")) continue
    const colon = line.indexOf(":")
    const name = colon < 0 ? line : line.slice(0, colon)
    const value = colon < 0 ? "" : line.slice(line[colon + 1] === " " ? colon + 2 : colon + 1)
    if (name === "event") event = value
    else if (name === "data") data.push(value)
    else if (name === "id") id = value
    else continue
    fields++
  }
  return fields === 0 ? undefined : { event, data: data.join("\n"), id }
}

/**
 * Opens `url` as an event stream; `onFrame` gets each frame and the monotonic
 * time (ns) its bytes arrived.
 */
export const openSse = (url: string, onFrame: (frame: SseFrame, at: bigint) => void): SseStream => {
  let resolveOpened: (event: string) => void = () => {}
  let rejectOpened: (error: Error) => void = () => {}
  let resolveClosed: () => void = () => {}
  const opened = new Promise<string>((resolve, reject) => {
    resolveOpened = resolve
    rejectOpened = reject
  })
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve))
  let first = true
  const req = request(url, { agent: false, headers: { accept: "text/event-stream" } }, (response) => {
    if (response.statusCode !== 200) {
      rejectOpened(new Error(`${url}: status ${response.statusCode}`))
      response.resume()
      return
    }
    response.setEncoding("utf8")
    let buffer = ""
    response.on("data", (chunk: string) => {
      const at = now()
      buffer += chunk
      for (;;) {
        const end = buffer.indexOf("\n\n")
        if (end < 0) break
        const frame = parseFrame(buffer.slice(0, end))
        buffer = buffer.slice(end + 2)
        if (frame === undefined) continue
        if (first) {
          first = false
          resolveOpened(frame.event)
        }
        onFrame(frame, at)
      }
    })
    response.on("close", () => resolveClosed())
  })
  req.on("error", (error) => {
    rejectOpened(error)
    resolveClosed()
  })
  req.end()
  return { opened, closed, close: () => req.destroy() }
}

/** A transcript entry's `role` and `content` from an `entry` frame's data; undefined if it is not one. */
export const entryOf = (data: string): { readonly role: string; readonly content: string } | undefined => {
  const json: unknown = JSON.parse(data)
  if (
    typeof json === "object" && json !== null && "role" in json && typeof json.role === "string" &&
    "content" in json && typeof json.content === "string"
  ) return { role: json.role, content: json.content }
  return undefined
}

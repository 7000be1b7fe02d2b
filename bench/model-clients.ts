// The child process of bench/modelClients.ts: opens SSE streams when told and
// counts, per stream, the delta text it gets until its reply ends.
import { Schema } from "effect"
import type { Opened } from "./clients.js"
import { ModelClientCommand, type Relayed } from "./modelClients.js"
import { entryOf, openSse, type SseStream } from "./sse.js"

interface Follower {
  readonly stream: SseStream
  chars: number
  ended: boolean
}

const followers: Array<Follower> = []
let lastAt = 0n
let endedCount = 0
let onAllEnded: () => void = () => {}

const textOf = (data: string): string => {
  const json: unknown = JSON.parse(data)
  return typeof json === "object" && json !== null && "text" in json && typeof json.text === "string" ? json.text : ""
}

const open = async (url: string, count: number, concurrency: number): Promise<Opened> => {
  let next = 0
  let opened = 0
  let failed = 0
  let error: string | undefined = undefined
  const one = async () => {
    while (next < count) {
      next++
      const follower: Follower = {
        chars: 0,
        ended: false,
        stream: openSse(url, (frame, at) => {
          if (frame.event === "delta") {
            follower.chars += textOf(frame.data).length
            if (at > lastAt) lastAt = at
            return
          }
          const end = frame.event === "end" || (frame.event === "entry" && entryOf(frame.data)?.role === "runtime")
          if (end && !follower.ended) {
            follower.ended = true
            if (++endedCount === followers.length) onAllEnded()
          }
        })
      }
      try {
        await follower.stream.opened
        followers.push(follower)
        opened++
      } catch (cause) {
        failed++
        error ??= cause instanceof Error ? cause.message : String(cause)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, one))
  return error === undefined ? { type: "opened", opened, failed } : { type: "opened", opened, failed, error }
}

const relayed = (timeoutMs: number): Promise<Relayed> =>
  new Promise((resolve) => {
    const finish = () => {
      clearTimeout(timer)
      onAllEnded = () => {}
      const chars = followers.reduce((sum, follower) => sum + follower.chars, 0)
      const minChars = followers.reduce((least, follower) => Math.min(least, follower.chars), Infinity)
      const answer: Relayed = {
        type: "relayed",
        streams: followers.length,
        ended: endedCount,
        chars,
        minChars: followers.length === 0 ? 0 : minChars,
        lastAt: String(lastAt)
      }
      for (const follower of followers) {
        follower.chars = 0
        follower.ended = false
      }
      endedCount = 0
      lastAt = 0n
      resolve(answer)
    }
    const timer = setTimeout(finish, timeoutMs)
    onAllEnded = finish
    if (endedCount === followers.length) finish()
  })

const close = async () => {
  for (const follower of followers) follower.stream.close()
  await Promise.all(followers.map((follower) => follower.stream.closed))
  followers.length = 0
  endedCount = 0
  return { type: "closed" as const }
}

const decode = Schema.decodeUnknownSync(ModelClientCommand)
process.on("message", (message: unknown) => {
  const command = decode(message)
  const answer = command.type === "open"
    ? open(command.url, command.count, command.concurrency)
    : command.type === "await"
    ? relayed(command.timeoutMs)
    : close()
  void answer.then((reply) => process.send?.(reply))
})
process.on("disconnect", () => process.exit(0))
process.send?.({ type: "ready" })

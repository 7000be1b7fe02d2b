// The child process of bench/clients.ts: opens SSE streams when told, and
// measures, per stream and entry, arrival minus the timestamp the engine put
// in the entry's content (process.hrtime: the machine's monotonic clock, the
// same in every process).
import { Schema } from "effect"
import { ClientCommand, type Closed, type Opened, type Received } from "./clients.js"
import { entryOf, openSse, type SseStream } from "./sse.js"

interface Consumer {
  readonly stream: SseStream
  received: number
}

const consumers: Array<Consumer> = []
let latencies: Array<number> = []
/** Per entry seq: how many streams got it, and the latest arrival (ms after its timestamp). */
let perSeq = new Map<string, { count: number; last: number }>()
/** Entries each stream is awaited for, and how many streams have them. */
let target = Number.POSITIVE_INFINITY
let reached = 0
let onReached: () => void = () => {}

const open = async (url: string, count: number, concurrency: number): Promise<Opened> => {
  let next = 0
  let opened = 0
  let failed = 0
  let error: string | undefined = undefined
  const one = async () => {
    while (next < count) {
      next++
      const consumer: Consumer = {
        received: 0,
        stream: openSse(url, (frame, at) => {
          if (frame.event !== "entry") return
          const entry = entryOf(frame.data)
          if (entry?.role !== "worker") return
          const latency = Number(at - BigInt(entry.content)) / 1e6
          latencies.push(latency)
          const key = frame.id ?? entry.content
          const seen = perSeq.get(key)
          if (seen === undefined) perSeq.set(key, { count: 1, last: latency })
          else {
            seen.count++
            seen.last = Math.max(seen.last, latency)
          }
          if (++consumer.received === target && ++reached === consumers.length) onReached()
        })
      }
      try {
        await consumer.stream.opened
        consumers.push(consumer)
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

const received = (entries: number, timeoutMs: number): Promise<Received> =>
  new Promise((resolve) => {
    const finish = () => {
      clearTimeout(timer)
      onReached = () => {}
      target = Number.POSITIVE_INFINITY
      const complete = consumers.filter((consumer) => consumer.received >= entries).length
      const untilAll = [...perSeq.values()].filter((seq) => seq.count >= consumers.length).map((seq) => seq.last)
      const answer: Received = { type: "received", streams: consumers.length, complete, latencies, untilAll }
      for (const consumer of consumers) consumer.received = 0
      reached = 0
      latencies = []
      perSeq = new Map()
      resolve(answer)
    }
    const timer = setTimeout(finish, timeoutMs)
    target = entries
    reached = consumers.filter((consumer) => consumer.received >= entries).length
    onReached = finish
    if (reached === consumers.length) finish()
  })

const close = async (): Promise<Closed> => {
  for (const consumer of consumers) consumer.stream.close()
  await Promise.all(consumers.map((consumer) => consumer.stream.closed))
  consumers.length = 0
  return { type: "closed" }
}

const decode = Schema.decodeUnknownSync(ClientCommand)
process.on("message", (message: unknown) => {
  const command = decode(message)
  const answer = command.type === "open"
    ? open(command.url, command.count, command.concurrency)
    : command.type === "await"
    ? received(command.entries, command.timeoutMs)
    : close()
  void answer.then((reply) => process.send?.(reply))
})
process.on("disconnect", () => process.exit(0))
process.send?.({ type: "ready" })

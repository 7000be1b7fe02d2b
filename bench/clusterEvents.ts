// Events across runners: two SSE followers of one Worker, one on the
// Worker's owner and one on another runner, while inputs are sent to the
// owner one at a time; per input, the time from the POST being sent and
// from its 202 being read until each follower has the input's entry.
import { now, quantile, sleep } from "./lib.js"
import { openSse, type SseStream } from "./sse.js"

export interface Delivery {
  /** Milliseconds from the input's 202 until the follower had its entry (negative: before the 202). */
  readonly fromAck: { readonly p50: number; readonly p99: number }
  /** Milliseconds from the POST being sent until the follower had its entry. */
  readonly fromSend: { readonly p50: number; readonly p99: number }
}

export interface EventsAcross {
  readonly local: Delivery
  readonly across: Delivery
  /** Milliseconds from the POST being sent until its 202 (p50). */
  readonly ackP50: number
  readonly samples: number
}

interface Entry {
  readonly role: string
  readonly content: string
  readonly turn: number
}

const entryOf = (data: string): Entry | undefined => {
  const json: unknown = JSON.parse(data)
  if (
    typeof json === "object" && json !== null && "role" in json && typeof json.role === "string" &&
    "content" in json && typeof json.content === "string" && "turn" in json && typeof json.turn === "number"
  ) return { role: json.role, content: json.content, turn: json.turn }
  return undefined
}

/** A follower: when each input content's entry arrived, and which turns have ended. */
interface Follower {
  readonly stream: SseStream
  readonly arrivals: Map<string, bigint>
  readonly turnOf: Map<string, number>
  readonly ended: Set<number>
}

const follow = async (baseUrl: string, workerId: string): Promise<Follower> => {
  const arrivals = new Map<string, bigint>()
  const turnOf = new Map<string, number>()
  const ended = new Set<number>()
  const stream = openSse(`${baseUrl}/v1/workers/${workerId}/events`, (frame, at) => {
    if (frame.event !== "entry") return
    const entry = entryOf(frame.data)
    if (entry === undefined) return
    if (entry.role === "user") {
      arrivals.set(entry.content, at)
      turnOf.set(entry.content, entry.turn)
    } else if (entry.role === "runtime") ended.add(entry.turn)
  })
  await stream.opened
  return { stream, arrivals, turnOf, ended }
}

const SAMPLE_DEADLINE_MS = 30_000

/** Polls `done` every millisecond or so; fails after the deadline (a lost entry is a failure, not a figure). */
const until = async (what: string, done: () => boolean): Promise<void> => {
  const deadline = Date.now() + SAMPLE_DEADLINE_MS
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`no ${what} within ${SAMPLE_DEADLINE_MS} ms`)
    await sleep(1)
  }
}

const postInput = async (url: string, content: string): Promise<void> => {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ content })
  })
  await response.arrayBuffer()
  if (response.status !== 202) throw new Error(`input answered ${response.status}`)
}

/** `inputs` inputs (after `warmup` unmeasured) to `workerId`, posted to its owner, followed on both runners. */
export const eventsAcross = async (options: {
  readonly owner: string
  readonly other: string
  readonly workerId: string
  readonly inputs: number
  readonly warmup: number
}): Promise<EventsAcross> => {
  const local = await follow(options.owner, options.workerId)
  const across = await follow(options.other, options.workerId)
  const followers = [local, across]
  const sent: Array<bigint> = []
  const acked: Array<bigint> = []
  const contents: Array<string> = []
  try {
    for (let i = 0; i < options.warmup + options.inputs; i++) {
      const content = `cluster bench ${i} ${Math.random().toString(36).slice(2)}`
      const at = now()
      await postInput(`${options.owner}/v1/workers/${options.workerId}/input`, content)
      const ack = now()
      await until(`entry of input ${i} on both followers`, () => followers.every((f) => f.arrivals.has(content)))
      const turn = local.turnOf.get(content) ?? 0
      // The next input once the turn has ended (it would be refused Busy before).
      await until(`end of turn ${turn} on both followers`, () => followers.every((f) => f.ended.has(turn)))
      if (i >= options.warmup) {
        sent.push(at)
        acked.push(ack)
        contents.push(content)
      }
    }
  } finally {
    for (const follower of followers) follower.stream.close()
  }
  const delivery = (follower: Follower): Delivery => {
    const arrived = contents.map((content) => follower.arrivals.get(content) ?? 0n)
    const fromAck = arrived.map((at, i) => Number(at - acked[i]!) / 1e6)
    const fromSend = arrived.map((at, i) => Number(at - sent[i]!) / 1e6)
    return {
      fromAck: { p50: quantile(fromAck, 0.5), p99: quantile(fromAck, 0.99) },
      fromSend: { p50: quantile(fromSend, 0.5), p99: quantile(fromSend, 0.99) }
    }
  }
  return {
    local: delivery(local),
    across: delivery(across),
    ackP50: quantile(acked.map((ack, i) => Number(ack - sent[i]!) / 1e6), 0.5),
    samples: contents.length
  }
}

/**
 * A Worker's followers (`Runtime.events`): each has a buffer it drains,
 * bounded in events and in content; a follower that falls behind drops its
 * buffer and catches up from the store (`Events.ts`). The Worker's actor
 * publishes to them after each commit, in commit order.
 */
import * as Effect from "effect/Effect"
import type { WorkerEvent } from "./Domain.js"

/** Events a follower may have waiting before it is told to catch up from the store instead. */
export const LIVE_BUFFER = 1024
/**
 * Content a follower's waiting events may hold (UTF-16 code units of entry
 * content) before it catches up from the store instead: with large entries,
 * an event count alone would let one follower that does not read hold a
 * gigabyte.
 */
export const LIVE_BUFFER_CHARS = 1024 * 1024

/** One follower of a Worker. */
export interface Listener {
  readonly events: Array<WorkerEvent>
  /** Entry content and delta text in `events`, in UTF-16 code units. */
  chars: number
  /** It fell behind: the buffer was dropped; catch up from the store. */
  overflowed: boolean
  /** The Worker was deleted, or the Runtime closed its streams. */
  ended: boolean
  /** Opened whenever something arrives. */
  readonly wake: Effect.Latch
  /** Called once, when something next arrives: a reader that waits without a fiber (src/http/EventStream.ts). */
  onWake: (() => void) | undefined
}

export const makeListener = (): Listener => ({
  events: [],
  chars: 0,
  overflowed: false,
  ended: false,
  wake: Effect.unsafeMakeLatch(false),
  onWake: undefined
})

/** Wakes whoever waits on `listener`: a fiber on the latch, a reader through `onWake`. */
const wake = (listener: Listener) => {
  listener.wake.unsafeOpen()
  const onWake = listener.onWake
  if (onWake !== undefined) {
    listener.onWake = undefined
    onWake()
  }
}

/** Hands `events` to every listener, or tells a listener that has no room to catch up. */
export const publish = (listeners: ReadonlySet<Listener> | undefined, events: ReadonlyArray<WorkerEvent>) => {
  if (listeners === undefined || events.length === 0) return
  let chars = 0
  for (const event of events) {
    if (event.type === "entry") chars += event.entry.content.length
    else if (event.type === "delta") chars += event.text.length
  }
  for (const listener of listeners) {
    if (listener.overflowed) continue
    if (
      listener.events.length + events.length > LIVE_BUFFER ||
      (listener.chars + chars > LIVE_BUFFER_CHARS && listener.events.length > 0)
    ) {
      // Memory per follower stays bounded: it catches up from the store.
      listener.overflowed = true
      listener.events.length = 0
      listener.chars = 0
    } else {
      for (const event of events) listener.events.push(event)
      listener.chars += chars
    }
    wake(listener)
  }
}

/** Ends a follower's stream once it has drained what it holds. */
export const endListener = (listener: Listener) => {
  listener.ended = true
  wake(listener)
}

/**
 * The Runtime's live view of its Workers: one slot per Worker, the counts by
 * status, each Worker's lock, and who follows it. A change is committed to
 * the store first and only then applied here and published to the Worker's
 * followers, in commit order, so memory and the event streams never show
 * what the store lacks.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import type { Turn, Worker, WorkerEvent, WorkerId, WorkerStatus } from "./Domain.js"
import { UnknownWorker } from "./Errors.js"
import * as Metrics from "./Metrics.js"
import type { Change, QueuedRef, RuntimeStoreService, StoreError } from "./RuntimeStore.js"
import type { WorkerEngine } from "./WorkerEngine.js"

/** Events a follower may have waiting before it is told to catch up from the store instead. */
export const LIVE_BUFFER = 1024
/**
 * Content a follower's waiting events may hold (UTF-16 code units of entry
 * content) before it catches up from the store instead: with large entries,
 * an event count alone would let one follower that does not read hold a
 * gigabyte.
 */
export const LIVE_BUFFER_CHARS = 1024 * 1024

/** One follower of a Worker (`Runtime.events`): a buffer it drains, bounded in events and in content. */
export interface Listener {
  readonly events: Array<WorkerEvent>
  /** Entry content in `events`, in UTF-16 code units. */
  chars: number
  /** It fell behind: the buffer was dropped; catch up from the store. */
  overflowed: boolean
  /** The Worker was deleted, or the Runtime closed its streams. */
  ended: boolean
  /** Opened whenever something arrives. */
  readonly wake: Effect.Latch
}

export interface Slot {
  worker: Worker
  /** The profile's engine; absent when the profile is no longer configured. */
  readonly engine: WorkerEngine | undefined
  /**
   * Made on first use: most Workers sit idle, and a semaphore each would be
   * a large share of an idle Worker's memory (docs/benchmarks.md).
   */
  lock: Effect.Semaphore | undefined
  /** The fiber of the turn in flight; whoever ends the turn under the lock takes it. */
  fiber: Fiber.RuntimeFiber<void> | undefined
  /** The turn's output waiting for a commit (`Turns.ts`). */
  output: OutputBuffer | undefined
  /** The record of the latest turn (running or ended), and a latch opened when it ends. */
  latest: { record: Turn; readonly ended: Effect.Latch } | undefined
  /** Inputs queued under `ifBusy: enqueue`, in order. */
  queue: Array<QueuedRef>
  readonly idempotencyKey: string | undefined
  listeners: Set<Listener> | undefined
  deleted: boolean
}

/** Lines a turn emitted that are not committed yet; taken only under the Worker's lock. */
export interface OutputBuffer {
  readonly turn: number
  readonly lines: Array<string>
  /** A commit of these lines is on its way. */
  flushing: boolean
  /** Open while there is room; emitters wait on it past the high-water mark. */
  readonly room: Effect.Latch
  /** Why the last commit failed; the next emit fails with it. */
  failure: string | undefined
}

export interface WorkerTable {
  readonly size: () => number
  readonly count: (status: WorkerStatus) => number
  readonly slots: () => IterableIterator<Slot>
  readonly lookup: (workerId: WorkerId) => Effect.Effect<Slot, UnknownWorker>
  readonly find: (workerId: WorkerId) => Slot | undefined
  /** Adds a Worker the store already holds. */
  readonly add: (
    worker: Worker,
    engine: WorkerEngine | undefined,
    extra?: { readonly queue?: ReadonlyArray<QueuedRef>; readonly idempotencyKey?: string | undefined }
  ) => Slot
  /** Forgets a Worker the store no longer holds, and ends its streams. */
  readonly remove: (slot: Slot) => void
  /**
   * Commits `change` to the store, then shows its Worker in memory and
   * publishes its entries and (if its status or queue changed) the Worker.
   */
  readonly commit: (slot: Slot, change: Change) => Effect.Effect<Worker, StoreError>
  /** Shows `next` in memory without a commit (when the store refused and memory must move on). */
  readonly apply: (slot: Slot, next: Worker) => Worker
  /**
   * Runs `effect` holding the Worker's lock. Waiting for the lock can be
   * interrupted; the change itself cannot, so a caller that goes away never
   * leaves a commit half-applied in memory.
   */
  readonly locked: <A, E>(slot: Slot, effect: Effect.Effect<A, E>) => Effect.Effect<A, E>
  /** Starts following a Worker; undo with `unlisten`. */
  readonly listen: (slot: Slot) => Listener
  readonly unlisten: (slot: Slot, listener: Listener) => void
  /** Ends every stream (the Runtime is shutting down). */
  readonly endStreams: () => void
  /** Open event streams, all Workers. */
  readonly streams: () => number
}

/** `onChange` runs after every status change shown in memory. */
export const makeWorkerTable = (
  store: RuntimeStoreService,
  /** Labels this Runtime's gauges: several Runtimes may share a process (and its metrics). */
  runtimeId: string,
  onChange: () => void,
  /** A span per store commit. */
  tracing = false
): WorkerTable => {
  const slots = new Map<string, Slot>()
  const counts: Record<WorkerStatus, number> = { idle: 0, busy: 0, stopped: 0, failed: 0 }
  let streams = 0
  let closed = false
  const runtimeLabel = Metrics.label("runtime_id", runtimeId)
  const statusLabels = {
    idle: [runtimeLabel, Metrics.label("status", "idle")],
    busy: [runtimeLabel, Metrics.label("status", "busy")],
    stopped: [runtimeLabel, Metrics.label("status", "stopped")],
    failed: [runtimeLabel, Metrics.label("status", "failed")]
  }
  const streamLabels = [runtimeLabel]
  const count = (status: WorkerStatus, by: number) => {
    counts[status] += by
    Metrics.workers.unsafeUpdate(counts[status], statusLabels[status])
  }
  const countStreams = (by: number) => {
    streams += by
    Metrics.eventStreams.unsafeUpdate(streams, streamLabels)
  }
  // Every series exists from the start, at 0, so that dashboards and alerts see it.
  for (const status of ["idle", "busy", "stopped", "failed"] as const) count(status, 0)
  countStreams(0)

  const publish = (slot: Slot, events: ReadonlyArray<WorkerEvent>) => {
    if (slot.listeners === undefined || events.length === 0) return
    let chars = 0
    for (const event of events) if (event.type === "entry") chars += event.entry.content.length
    for (const listener of slot.listeners) {
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
      listener.wake.unsafeOpen()
    }
  }

  const end = (listener: Listener) => {
    listener.ended = true
    listener.wake.unsafeOpen()
  }

  const apply = (slot: Slot, next: Worker): Worker => {
    const before = slot.worker
    slot.worker = next
    if (before.status !== next.status) {
      count(before.status, -1)
      count(next.status, 1)
      onChange()
    }
    return next
  }

  return {
    size: () => slots.size,
    count: (status) => counts[status],
    slots: () => slots.values(),
    lookup: (workerId) => {
      const slot = slots.get(workerId)
      return slot === undefined
        ? Effect.fail(new UnknownWorker({ workerId, message: `There is no Worker ${JSON.stringify(workerId)}.` }))
        : Effect.succeed(slot)
    },
    find: (workerId) => slots.get(workerId),
    add: (worker, engine, extra = {}) => {
      const slot: Slot = {
        worker,
        engine,
        lock: undefined,
        fiber: undefined,
        output: undefined,
        latest: undefined,
        queue: [...(extra.queue ?? [])],
        idempotencyKey: extra.idempotencyKey,
        listeners: undefined,
        deleted: false
      }
      slots.set(worker.id, slot)
      count(worker.status, 1)
      return slot
    },
    remove: (slot) => {
      if (slot.deleted) return
      slot.deleted = true
      slots.delete(slot.worker.id)
      count(slot.worker.status, -1)
      for (const listener of slot.listeners ?? []) end(listener)
      onChange()
    },
    commit: (slot, change) =>
      Effect.map(
        Effect.timed(tracing ? Effect.withSpan(store.commit(change), "store.commit") : store.commit(change)),
        ([took]) => {
          Metrics.storeCommitDuration.unsafeUpdate(Duration.toSeconds(took), [])
          const before = slot.worker
          const next = apply(slot, change.worker)
          const events: Array<WorkerEvent> = change.entries.map((entry) => ({ type: "entry", entry }))
          if (before.status !== next.status || before.queued !== next.queued) {
            events.push({ type: "worker", worker: next })
          }
          publish(slot, events)
          return next
        }
      ),
    apply: (slot, next) => {
      const before = slot.worker
      apply(slot, next)
      if (before.status !== next.status) publish(slot, [{ type: "worker", worker: next }])
      return next
    },
    locked: (slot, effect) => {
      const lock = slot.lock ??= Effect.unsafeMakeSemaphore(1)
      return lock.withPermits(1)(Effect.uninterruptible(effect))
    },
    listen: (slot) => {
      const listener: Listener = {
        events: [],
        chars: 0,
        overflowed: false,
        ended: false,
        wake: Effect.unsafeMakeLatch(false)
      }
      slot.listeners ??= new Set()
      slot.listeners.add(listener)
      countStreams(1)
      if (slot.deleted || closed) end(listener)
      return listener
    },
    unlisten: (slot, listener) => {
      if (slot.listeners?.delete(listener) === true) countStreams(-1)
      if (slot.listeners?.size === 0) slot.listeners = undefined
    },
    endStreams: () => {
      closed = true
      for (const slot of slots.values()) for (const listener of slot.listeners ?? []) end(listener)
    },
    streams: () => streams
  }
}

/**
 * The Runtime's live view of its Workers: one slot per Worker, the counts by
 * status, and each Worker's lock. A change is committed to the store first
 * and only then applied here, so memory never shows what the store lacks.
 */
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import type { TranscriptEntry, Worker, WorkerId, WorkerStatus } from "./Domain.js"
import { UnknownWorker } from "./Errors.js"
import type { RuntimeStoreService, StoreError } from "./RuntimeStore.js"
import type { WorkerEngine } from "./WorkerEngine.js"

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
  /** Adds a Worker the store already holds. */
  readonly add: (worker: Worker, engine: WorkerEngine | undefined) => Slot
  /** Commits `next` and `entries` to the store, then shows `next` in memory. */
  readonly commit: (
    slot: Slot,
    next: Worker,
    entries: ReadonlyArray<TranscriptEntry>
  ) => Effect.Effect<Worker, StoreError>
  /** Shows `next` in memory without a commit (when the store refused and memory must move on). */
  readonly apply: (slot: Slot, next: Worker) => Worker
  /**
   * Runs `effect` holding the Worker's lock. Waiting for the lock can be
   * interrupted; the change itself cannot, so a caller that goes away never
   * leaves a commit half-applied in memory.
   */
  readonly locked: <A, E>(slot: Slot, effect: Effect.Effect<A, E>) => Effect.Effect<A, E>
}

/** `onChange` runs after every status change shown in memory. */
export const makeWorkerTable = (store: RuntimeStoreService, onChange: () => void): WorkerTable => {
  const slots = new Map<string, Slot>()
  const counts: Record<WorkerStatus, number> = { idle: 0, busy: 0, stopped: 0, failed: 0 }

  const apply = (slot: Slot, next: Worker): Worker => {
    const before = slot.worker.status
    slot.worker = next
    if (before !== next.status) {
      counts[before]--
      counts[next.status]++
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
        ? Effect.fail(new UnknownWorker({ workerId, message: `no Worker ${JSON.stringify(workerId)}` }))
        : Effect.succeed(slot)
    },
    add: (worker, engine) => {
      const slot: Slot = { worker, engine, lock: undefined, fiber: undefined, output: undefined }
      slots.set(worker.id, slot)
      counts[worker.status]++
      return slot
    },
    commit: (slot, next, entries) => Effect.map(store.commit(next, entries), () => apply(slot, next)),
    apply,
    locked: (slot, effect) => {
      const lock = slot.lock ??= Effect.unsafeMakeSemaphore(1)
      return lock.withPermits(1)(Effect.uninterruptible(effect))
    }
  }
}

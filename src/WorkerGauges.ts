/**
 * This Runtime's Workers by status and its open event streams, as counts
 * kept in memory (set from the store's counts at start, then moved by every
 * change this Runtime makes) and exported as gauges labelled with the
 * runtime id: several Runtimes may share a process, and its metrics.
 */
import type { WorkerStatus } from "./Domain.js"
import * as Metrics from "./Metrics.js"
import type { WorkerCounts } from "./RuntimeStore.js"

const STATUSES = ["idle", "busy", "stopped", "failed"] as const

export interface WorkerGauges {
  readonly count: (status: WorkerStatus) => number
  /** Workers that are not stopped (what `maxWorkers` bounds). */
  readonly notStopped: () => number
  /** A Worker's status changed; `undefined` before: it is new; after: it is deleted. */
  readonly move: (from: WorkerStatus | undefined, to: WorkerStatus | undefined) => void
  readonly countStreams: (by: number) => void
  /** The counts as the store has them now (a cluster's other runners change them too). */
  readonly recount: (counts: WorkerCounts) => void
}

/** Workers that are not stopped (what `maxWorkers` bounds), from counts by status. */
export const notStopped = (counts: WorkerCounts): number => counts.idle + counts.busy + counts.failed

export const makeWorkerGauges = (runtimeId: string, initial: WorkerCounts): WorkerGauges => {
  const counts: Record<WorkerStatus, number> = { ...initial }
  let streams = 0
  const runtimeLabel = Metrics.label("runtime_id", runtimeId)
  const statusLabels = {
    idle: [runtimeLabel, Metrics.label("status", "idle")],
    busy: [runtimeLabel, Metrics.label("status", "busy")],
    stopped: [runtimeLabel, Metrics.label("status", "stopped")],
    failed: [runtimeLabel, Metrics.label("status", "failed")]
  }
  const streamLabels = [runtimeLabel]
  const add = (status: WorkerStatus, by: number) => {
    counts[status] += by
    Metrics.workers.unsafeUpdate(counts[status], statusLabels[status])
  }
  const countStreams = (by: number) => {
    streams += by
    Metrics.eventStreams.unsafeUpdate(streams, streamLabels)
  }
  // Every series exists from the start, so that dashboards and alerts see it.
  for (const status of STATUSES) add(status, 0)
  countStreams(0)
  return {
    count: (status) => counts[status],
    notStopped: () => notStopped(counts),
    move: (from, to) => {
      if (from === to) return
      if (from !== undefined) add(from, -1)
      if (to !== undefined) add(to, 1)
    },
    countStreams,
    recount: (now) => {
      for (const status of STATUSES) add(status, now[status] - counts[status])
    }
  }
}

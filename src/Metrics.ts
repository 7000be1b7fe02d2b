/**
 * The Runtime's metrics, made with Effect's `Metric` (the core stays free of
 * exporters): the runtime process exports them in Prometheus text at
 * `/metrics` (docs/operations.md lists them). Updated from synchronous code
 * with `unsafeUpdate`, where the change they count happens.
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricLabel from "effect/MetricLabel"

/** Seconds, from 5 ms to about 87 minutes (and beyond, in +Inf). */
const durations = MetricBoundaries.exponential({ start: 0.005, factor: 2, count: 22 })

export const workers = Metric.gauge("worker_runtime_workers", { description: "Workers by status" })
export const turnsStarted = Metric.counter("worker_runtime_turns_started_total", {
  description: "Turns started",
  incremental: true
})
export const turnsEnded = Metric.counter("worker_runtime_turns_ended_total", {
  description: "Turns ended, by outcome",
  incremental: true
})
export const turnDuration = Metric.histogram(
  "worker_runtime_turn_duration_seconds",
  durations,
  "How long turns ran, by outcome"
)
export const storeCommitDuration = Metric.histogram(
  "worker_runtime_store_commit_duration_seconds",
  MetricBoundaries.exponential({ start: 0.0001, factor: 2, count: 18 }),
  "How long a store commit took, from the call to its answer"
)
export const modelTokens = Metric.counter("worker_runtime_model_tokens_total", {
  description: "Tokens of model turns, by profile and direction (input, output), as the model's server reported them",
  incremental: true
})
export const eventStreams = Metric.gauge("worker_runtime_event_streams", { description: "Open event streams" })
export const childProcesses = Metric.gauge("worker_runtime_child_processes", {
  description: "Child processes of the process engine not yet gone"
})
export const requests = Metric.counter("worker_runtime_http_requests_total", {
  description: "HTTP requests, by route, method and status",
  incremental: true
})
export const requestDuration = Metric.histogram(
  "worker_runtime_http_request_duration_seconds",
  MetricBoundaries.exponential({ start: 0.0005, factor: 2, count: 18 }),
  "HTTP request latency, by route and method"
)

export const label = (key: string, value: string) => MetricLabel.make(key, value)

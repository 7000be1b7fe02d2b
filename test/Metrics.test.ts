/** The Runtime's gauges say which Runtime they count: several may share a process. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Metric } from "effect"

import { Runtime, RuntimeLive } from "../src/index.js"
import * as Metrics from "../src/Metrics.js"

const idleOf = (runtimeId: string) =>
  Metric.value(Metrics.workers.pipe(Metric.tagged("runtime_id", runtimeId), Metric.tagged("status", "idle"))).pipe(
    Effect.map((state) => state.value)
  )

describe("gauges", () => {
  it.scoped("two Runtimes in one process each set their own worker_runtime_workers series", () =>
    Effect.gen(function*() {
      const first = yield* Layer.build(RuntimeLive({ runtimeId: "rt-metrics-a" }))
      const second = yield* Layer.build(RuntimeLive({ runtimeId: "rt-metrics-b" }))
      const create = Effect.flatMap(Runtime, (rt) => rt.create({}))
      yield* Effect.provide(create, first)
      yield* Effect.provide(create, first)
      yield* Effect.provide(create, second)
      expect(yield* idleOf("rt-metrics-a")).toBe(2)
      expect(yield* idleOf("rt-metrics-b")).toBe(1)
    }))
})

/** Ids: their time is the Clock's (a TestClock here), and they sort by creation. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"

import { idTimeMillis, makeClockId, makeClockIdGenerator, makeIdGenerator } from "../src/Ids.js"

const START = Date.UTC(2024, 0, 2, 3, 4, 5, 678)

describe("ids", () => {
  it.effect("take their time prefix from the Clock, and sort by creation", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(START)
      const ids = yield* makeClockIdGenerator()
      const made: Array<string> = []
      made.push(yield* ids.next)
      expect(idTimeMillis(made[0]!)).toBe(START)
      // The clock stalls: still strictly increasing, at the same time.
      made.push(yield* ids.next, yield* ids.next)
      expect(made.map(idTimeMillis)).toEqual([START, START, START])
      yield* TestClock.adjust("5 millis")
      made.push(yield* ids.next)
      expect(idTimeMillis(made[3]!)).toBe(START + 5)
      yield* TestClock.adjust("3 days")
      made.push(yield* ids.next)
      expect(idTimeMillis(made[4]!)).toBe(START + 5 + 3 * 86_400_000)
      expect(made.every((id) => /^[0-9A-HJKMNP-TV-Z]{26}$/.test(id))).toBe(true)
      expect(new Set(made).size).toBe(made.length)
      expect([...made].sort()).toEqual(made)
    }))

  it.effect("sort after the floor given, even when the Clock is behind it", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(START + 60_000)
      const floor = yield* makeClockId
      yield* TestClock.setTime(START)
      const ids = yield* makeClockIdGenerator(floor)
      const next = yield* ids.next
      expect(next > floor).toBe(true)
      expect(idTimeMillis(next)).toBe(START + 60_000)
      yield* TestClock.setTime(START + 120_000)
      expect(idTimeMillis(yield* ids.next)).toBe(START + 120_000)
    }))

  it.effect("makeClockId is one id at the Clock's time", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(START)
      expect(idTimeMillis(yield* makeClockId)).toBe(START)
    }))

  it("makeIdGenerator still takes its time from the function given", () => {
    let now = START
    const ids = makeIdGenerator(undefined, () => now)
    const first = ids.next()
    now += 1
    const second = ids.next()
    expect([idTimeMillis(first), idTimeMillis(second)]).toEqual([START, START + 1])
    expect(second > first).toBe(true)
  })
})

/** Ids: their time is the Clock's (a TestClock here), and they sort by creation. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"

import { idTimeMillis, makeClockId, makeClockIdGenerator, makeIdGenerator } from "../src/Ids.js"

const START = Date.UTC(2024, 0, 2, 3, 4, 5, 678)
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
const ID = /^[0-9A-HJKMNP-TV-Z]{26}$/

/** The random part of an id (its last 16 characters) as a number. */
const randomPart = (id: string): bigint =>
  Array.from(id.slice(10), (char) => BigInt(ALPHABET.indexOf(char))).reduce((n, digit) => n * 32n + digit, 0n)

/**
 * Many ids made within one millisecond: strictly increasing, all of that
 * millisecond, and none predictable from its neighbour (the random part does
 * not step by a small amount).
 */
const expectUnpredictableWithinOneMs = (made: ReadonlyArray<string>, ms: number) => {
  expect(made.every((id) => ID.test(id))).toBe(true)
  expect(made.every((id) => idTimeMillis(id) === ms)).toBe(true)
  let plusOne = 0
  let small = 0
  for (let i = 1; i < made.length; i++) {
    expect(made[i]! > made[i - 1]!, `${made[i]} after ${made[i - 1]}`).toBe(true)
    const step = randomPart(made[i]!) - randomPart(made[i - 1]!)
    expect(step > 0n).toBe(true)
    if (step === 1n) plusOne++
    if (step < 2n ** 16n) small++
  }
  expect(plusOne, "ids that are the previous one + 1").toBe(0)
  expect(small, "steps under 2^16").toBeLessThan((made.length - 1) / 100)
}

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

  it.effect("within one millisecond of the Clock: 10,000 ids strictly increasing, none next to its neighbour", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(START)
      const ids = yield* makeClockIdGenerator()
      const made: Array<string> = []
      for (let i = 0; i < 10_000; i++) made.push(yield* ids.next)
      expectUnpredictableWithinOneMs(made, START)
    }))

  it("within one millisecond of makeIdGenerator's fixed time: the same", () => {
    const ids = makeIdGenerator(undefined, () => START)
    expectUnpredictableWithinOneMs(Array.from({ length: 10_000 }, () => ids.next()), START)
  })

  it.effect("after a floor from a store, at the floor's millisecond: the same", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(START)
      const floor = yield* makeClockId
      const ids = yield* makeClockIdGenerator(floor)
      const made = [floor]
      for (let i = 0; i < 10_000; i++) made.push(yield* ids.next)
      expectUnpredictableWithinOneMs(made, START)
    }))

  it("after a floor whose random part is (nearly) exhausted: the next millisecond, still increasing", () => {
    for (const tail of ["ZZZZZZZZZZZZZZZZ", "ZZZZZZZZZZZZZZZY", "ZZZZZZZZZZZZZZZ0"]) {
      const floor = makeIdGenerator(undefined, () => START).next().slice(0, 10) + tail
      const ids = makeIdGenerator(floor, () => START)
      const made = [floor, ...Array.from({ length: 100 }, () => ids.next())]
      expect(made.every((id) => ID.test(id))).toBe(true)
      for (let i = 1; i < made.length; i++) expect(made[i]! > made[i - 1]!).toBe(true)
      // Exhausted: the next millisecond at once; nearly: at the latest after a step or two.
      if (tail === "ZZZZZZZZZZZZZZZZ") expect(idTimeMillis(made[1]!)).toBe(START + 1)
      expect(made.slice(1).every((id) => idTimeMillis(id) <= START + 1)).toBe(true)
      expect(idTimeMillis(made[made.length - 1]!)).toBe(START + 1)
    }
  })
})

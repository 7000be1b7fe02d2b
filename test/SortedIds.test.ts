/** The memory store's index: a sorted set of ids in blocks, checked against a sorted array. */
import { describe, expect, it } from "@effect/vitest"
import { SortedIds } from "../src/SortedIds.js"

/** A small deterministic generator (mulberry32), so that a failure replays. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const idOf = (n: number) => `w${String(n).padStart(6, "0")}`

const pageAfter = (ids: SortedIds, after: string | undefined, limit: number) => {
  const out: Array<string> = []
  ids.forEachAfter(after, (id) => {
    out.push(id)
    return out.length < limit
  })
  return out
}

describe("SortedIds", () => {
  it("stays sorted and exact through 60,000 random adds and deletes, splitting and merging blocks", () => {
    const next = random(7)
    const ids = new SortedIds()
    const reference = new Set<string>()
    for (let step = 0; step < 60_000; step++) {
      // Phases that grow to thousands of ids (blocks split) and shrink to few (blocks merge and go).
      const growing = Math.floor(step / 15_000) % 2 === 0
      const id = idOf(Math.floor(next() * 6000))
      if (next() < (growing ? 0.8 : 0.2)) {
        ids.add(id)
        reference.add(id)
      } else {
        ids.delete(id)
        reference.delete(id)
      }
      if (step % 997 === 0) {
        const sorted = [...reference].sort()
        expect(ids.size).toBe(sorted.length)
        expect(ids.toArray()).toEqual(sorted)
        for (let probe = 0; probe < 20; probe++) {
          // Cursors that are present, absent, before the first and after the last.
          const after = probe === 0 ? undefined : idOf(Math.floor(next() * 6100) - 50)
          const expected = sorted.filter((x) => after === undefined || x > after).slice(0, 50)
          expect(pageAfter(ids, after, 50)).toEqual(expected)
        }
      }
    }
  })

  it("adds in increasing order as appends and ignores repeats and unknown deletes", () => {
    const ids = new SortedIds()
    for (let n = 0; n < 5000; n++) ids.add(idOf(n))
    ids.add(idOf(10))
    ids.delete("nope")
    expect(ids.size).toBe(5000)
    expect(pageAfter(ids, idOf(4997), 10)).toEqual([idOf(4998), idOf(4999)])
    expect(pageAfter(ids, idOf(5000), 10)).toEqual([])
    for (let n = 0; n < 5000; n++) ids.delete(idOf(n))
    expect(ids.size).toBe(0)
    expect(pageAfter(ids, undefined, 10)).toEqual([])
  })
})

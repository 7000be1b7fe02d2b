/**
 * Worker and runtime ids: ULID-shaped (10 chars of millisecond time, 16 of
 * randomness, Crockford base32), so they are URL-safe, unique across restarts
 * and sort by creation. Within one generator ids are strictly increasing even
 * when the clock stalls or steps back. The time is Effect's `Clock`'s
 * (`makeClockIdGenerator`), so a `TestClock` sets it.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
const TIME_LENGTH = 10
const RANDOM_LENGTH = 16

const encodeTime = (ms: number): string => {
  let out = ""
  for (let i = 0; i < TIME_LENGTH; i++) {
    out = ALPHABET[ms % 32] + out
    ms = Math.floor(ms / 32)
  }
  return out
}

/** The time (ms since the epoch) an id was made at, from its first 10 characters; 0 when they are not an id's. */
export const idTimeMillis = (id: string): number => {
  let ms = 0
  for (let i = 0; i < TIME_LENGTH; i++) {
    const digit = ALPHABET.indexOf(id[i] ?? "")
    if (digit < 0) return 0
    ms = ms * 32 + digit
  }
  return ms
}

const randomDigits = (): Array<number> => {
  const bytes = new Uint8Array(RANDOM_LENGTH)
  globalThis.crypto.getRandomValues(bytes)
  return Array.from(bytes, (byte) => byte & 31)
}

/** Adds one to a base32 digit string; false when it overflows. */
const increment = (digits: Array<number>): boolean => {
  for (let i = digits.length - 1; i >= 0; i--) {
    const digit = digits[i]!
    if (digit < 31) {
      digits[i] = digit + 1
      return true
    }
    digits[i] = 0
  }
  return false
}

export interface IdGenerator {
  readonly next: () => string
}

/** Ids made at the Clock's time; `next` is an Effect, so it reads the Clock in context (`TestClock` in tests). */
export interface ClockIdGenerator {
  readonly next: Effect.Effect<string>
}

/** The state of a generator: the id made at `time`, after every id before it and after `floor`. */
const makeNextAt = (floor: string | undefined): (time: number) => string => {
  let lastTime = -1
  let lastRandom: Array<number> = []
  if (floor !== undefined && floor.length === TIME_LENGTH + RANDOM_LENGTH) {
    lastTime = idTimeMillis(floor)
    lastRandom = Array.from(floor.slice(TIME_LENGTH), (char) => Math.max(0, ALPHABET.indexOf(char)))
  }
  return (time) => {
    if (time > lastTime) {
      lastTime = time
      lastRandom = randomDigits()
    } else if (!increment(lastRandom)) {
      // 80 random bits exhausted within one millisecond: borrow the next one.
      lastTime += 1
      lastRandom = randomDigits()
    }
    return encodeTime(lastTime) + lastRandom.map((digit) => ALPHABET[digit]).join("")
  }
}

/**
 * Makes a generator whose ids all sort after `floor` (the greatest id already
 * issued, e.g. loaded from a durable store), timed by `now`. Inside Effect
 * code use `makeClockIdGenerator`, which reads the `Clock`.
 */
export const makeIdGenerator = (floor?: string, now: () => number = Date.now): IdGenerator => {
  const nextAt = makeNextAt(floor)
  return { next: () => nextAt(now()) }
}

/**
 * Makes a generator whose ids all sort after `floor` (the greatest id already
 * issued, e.g. loaded from a durable store), timed by `Clock.currentTimeMillis`.
 */
export const makeClockIdGenerator = (floor?: string): Effect.Effect<ClockIdGenerator> =>
  Effect.sync(() => {
    const nextAt = makeNextAt(floor)
    return { next: Effect.map(Clock.currentTimeMillis, nextAt) }
  })

/** One id at the Clock's time (e.g. a runtime id), from a generator of its own. */
export const makeClockId: Effect.Effect<string> = Effect.flatMap(makeClockIdGenerator(), (ids) => ids.next)

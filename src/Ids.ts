/**
 * Worker and runtime ids: ULID-shaped (10 chars of millisecond time, 16 of
 * randomness, Crockford base32), so they are URL-safe, unique across restarts
 * and sort by creation. Within one generator ids are strictly increasing even
 * when the clock stalls or steps back, yet not guessable from a neighbour:
 * within a millisecond the random part grows by a random step, not by one.
 * The time is Effect's `Clock`'s (`makeClockIdGenerator`), so a `TestClock`
 * sets it.
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

const RANDOM_BITS = BigInt(5 * RANDOM_LENGTH) // 80
const RANDOM_LIMIT = 1n << RANDOM_BITS
/** Bits of the random step between two ids of one millisecond: a neighbour does not tell the next id. */
const STEP_BITS = 48

const randomBits = (bits: number): bigint => {
  const bytes = new Uint8Array(Math.ceil(bits / 8))
  globalThis.crypto.getRandomValues(bytes)
  let n = 0n
  for (const byte of bytes) n = (n << 8n) | BigInt(byte)
  return n & ((1n << BigInt(bits)) - 1n)
}

/**
 * The random part of a millisecond's first id: 79 random bits, so at least
 * 2^79 is left above it, room for more than 2^31 random steps of at most 2^48.
 */
const firstRandom = (): bigint => randomBits(Number(RANDOM_BITS) - 1)

/** The step to the next id within one millisecond: 1 to 2^48, at random. */
const randomStep = (): bigint => randomBits(STEP_BITS) + 1n

const encodeRandom = (random: bigint): string => {
  let out = ""
  for (let i = 0; i < RANDOM_LENGTH; i++) {
    out = ALPHABET[Number(random & 31n)] + out
    random >>= 5n
  }
  return out
}

const decodeRandom = (text: string): bigint =>
  Array.from(text, (char) => BigInt(Math.max(0, ALPHABET.indexOf(char)))).reduce(
    (n, digit) => (n << 5n) | digit,
    0n
  )

export interface IdGenerator {
  readonly next: () => string
}

/** Ids made at the Clock's time; `next` is an Effect, so it reads the Clock in context (`TestClock` in tests). */
export interface ClockIdGenerator {
  readonly next: Effect.Effect<string>
}

/**
 * The state of a generator: the id made at `time`, after every id before it
 * and after `floor`. Within one millisecond (or while the clock is behind the
 * last id) the random part grows by a random step of up to 48 bits, not by
 * one, so an id does not give its successor away; when it would pass 80 bits
 * the id takes the next millisecond.
 */
const makeNextAt = (floor: string | undefined): (time: number) => string => {
  let lastTime = -1
  let lastRandom = 0n
  if (floor !== undefined && floor.length === TIME_LENGTH + RANDOM_LENGTH) {
    lastTime = idTimeMillis(floor)
    lastRandom = decodeRandom(floor.slice(TIME_LENGTH))
  }
  return (time) => {
    if (time > lastTime) {
      lastTime = time
      lastRandom = firstRandom()
    } else {
      lastRandom += randomStep()
      if (lastRandom >= RANDOM_LIMIT) {
        // 80 random bits exhausted within one millisecond: borrow the next one.
        lastTime += 1
        lastRandom = firstRandom()
      }
    }
    return encodeTime(lastTime) + encodeRandom(lastRandom)
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

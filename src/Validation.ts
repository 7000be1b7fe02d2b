/** Request decoding shared by every `Runtime` method: schema failures become `InvalidInput`. */
import * as Effect from "effect/Effect"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

import {
  CancelRequest,
  CreateWorker,
  EventsQuery,
  ListQuery,
  StopRequest,
  TranscriptQuery,
  TurnQuery,
  type Worker,
  WorkerInput
} from "./Domain.js"
import { InvalidInput, type ValidationIssue } from "./Errors.js"

/** A schema issue as ArrayFormatter gives it. */
interface RawIssue {
  readonly _tag?: string
  readonly path: ReadonlyArray<PropertyKey>
  readonly message: string
}

const TYPE_WORDS: Record<string, string> = {
  string: "a string",
  number: "a number",
  boolean: "a boolean",
  Int: "an integer",
  null: "null"
}

/** `"a"`, `"a" or "b"`, `one of "a", "b" or "c"`. */
const oneOf = (literals: ReadonlyArray<string>): string =>
  literals.length <= 2 ? literals.join(" or ") : `one of ${literals.slice(0, -1).join(", ")} or ${literals.at(-1)}`

/** "must be …" for what a type issue expected, without schema dumps. */
const mustBe = (expected: string): string => {
  const word = TYPE_WORDS[expected]
  if (word !== undefined) return `must be ${word}`
  if (expected.startsWith("{") || expected.startsWith("Record<")) return "must be a JSON object"
  if (expected.startsWith("ReadonlyArray<") || expected.startsWith("readonly [")) return "must be an array"
  if (/^(a|an) /.test(expected)) return `must be ${expected}`
  if (/^"[^"]*"( \| "[^"]*")*$/.test(expected)) return `must be ${oneOf(expected.split(" | "))}`
  return "has the wrong type"
}

/** One readable predicate per issue: "must be a string", "is required", "is not allowed". */
const reword = (issue: RawIssue): string => {
  if (issue._tag === "Missing") return "is required"
  if (issue._tag === "Unexpected") return "is not allowed"
  const expected = /^Expected (.+), actual .*$/s.exec(issue.message)
  if (expected === null) return issue.message
  // A literal union reports one issue per member: "Expected \"user\"".
  return mustBe(expected[1]!)
}

/**
 * Schema issues as the contract's `ValidationIssue`s: paths of strings and
 * numbers, messages that are readable predicates, one per path (a literal
 * union's members merged, the `undefined` of an optional field dropped).
 */
export const toValidationIssues = (issues: ReadonlyArray<RawIssue>): Array<ValidationIssue> => {
  const byPath = new Map<string, { path: Array<string | number>; literals: Array<string>; messages: Array<string> }>()
  for (const issue of issues) {
    if (issue._tag === "Type" && /^Expected undefined, actual/.test(issue.message)) continue
    const path = issue.path.map((key) => (typeof key === "symbol" ? String(key) : key))
    const key = JSON.stringify(path)
    const entry = byPath.get(key) ?? { path, literals: [], messages: [] }
    byPath.set(key, entry)
    const literal = /^Expected ("[^"]*"), actual .*$/s.exec(issue.message)
    if (issue._tag === "Type" && literal !== null) entry.literals.push(literal[1]!)
    else entry.messages.push(reword(issue))
  }
  return Array.from(byPath.values(), ({ literals, messages, path }) => ({
    path,
    message: messages[0] ?? `must be ${oneOf(literals)}`
  }))
}

export const issuesOf = (error: ParseResult.ParseError): Array<ValidationIssue> =>
  toValidationIssues(ParseResult.ArrayFormatter.formatErrorSync(error))

/** One readable sentence naming the first problem, e.g. "Invalid input: content must not be empty." */
export const invalidInputOf = (issues: ReadonlyArray<ValidationIssue>, what: string): InvalidInput => {
  const first = issues[0]
  if (first === undefined) return new InvalidInput({ message: `Invalid ${what}.`, issues })
  const subject = first.path.length === 0 ? "the body" : first.path.join(".")
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : ""
  return new InvalidInput({ message: `Invalid ${what}: ${subject} ${first.message}${more}.`, issues })
}

export const invalidInputFromParseError = (error: ParseResult.ParseError, what: string): InvalidInput =>
  invalidInputOf(issuesOf(error), what)

/** A decoder for one request schema; strictness comes from the schema's own parse options. */
export const decodeRequest = <A, I>(schema: Schema.Schema<A, I>, what: string) => {
  // Synchronous (request schemas have no effectful parts): no fiber steps per decode.
  const decode = Schema.decodeUnknownEither(schema, { errors: "all" })
  return (input: unknown): Effect.Effect<A, InvalidInput> => {
    const decoded = decode(input)
    return decoded._tag === "Right"
      ? Effect.succeed(decoded.right)
      : Effect.fail(invalidInputFromParseError(decoded.left, what))
  }
}

/** UTF-8 byte length without `Buffer` (the core stays free of Node-only APIs). */
export const utf8Length = (text: string): number => {
  let bytes = 0
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x80) bytes += 1
    else if (code < 0x800) bytes += 2
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1)
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4
        i++
      } else bytes += 3
    } else bytes += 3
  }
  return bytes
}

/** True when `text` is longer than `max` UTF-8 bytes; cheap for the common short case. */
export const exceedsBytes = (text: string, max: number): boolean =>
  text.length > max || (text.length * 3 > max && utf8Length(text) > max)

const decodeInput = decodeRequest(WorkerInput, "input")

/**
 * The common well-formed input, checked by hand: the schema decode is the
 * larger part of an embedded input's cost. Anything else goes through the
 * schema, which also words the error.
 */
const plainInput = (input: unknown): WorkerInput | undefined => {
  if (typeof input !== "object" || input === null) return undefined
  let fields = 0
  let content: unknown
  let kind: unknown
  let ifBusy: unknown
  for (const key in input) {
    if (!Object.hasOwn(input, key)) continue
    fields++
    if (key === "content") content = Reflect.get(input, key)
    else if (key === "kind") kind = Reflect.get(input, key)
    else if (key === "ifBusy") ifBusy = Reflect.get(input, key)
    else return undefined
  }
  if (typeof content !== "string" || content.length === 0) return undefined
  if (kind !== undefined && kind !== "user" && kind !== "system") return undefined
  if (ifBusy !== undefined && ifBusy !== "reject" && ifBusy !== "enqueue" && ifBusy !== "interrupt") return undefined
  if (fields !== 1 + (kind === undefined ? 0 : 1) + (ifBusy === undefined ? 0 : 1)) return undefined
  return {
    content,
    ...(kind === undefined ? {} : { kind }),
    ...(ifBusy === undefined ? {} : { ifBusy })
  }
}

/** The shape checks of every request, shared by `RuntimeLive` and the HTTP client. */
export const validate = {
  create: decodeRequest(CreateWorker, "create request"),
  input: (input: unknown): Effect.Effect<WorkerInput, InvalidInput> => {
    const plain = plainInput(input)
    return plain === undefined ? decodeInput(input) : Effect.succeed(plain)
  },
  list: decodeRequest(ListQuery, "list query"),
  transcript: decodeRequest(TranscriptQuery, "transcript query"),
  turn: decodeRequest(TurnQuery, "turn query"),
  events: decodeRequest(EventsQuery, "events query"),
  cancel: decodeRequest(CancelRequest, "cancel request"),
  stop: decodeRequest(StopRequest, "stop request")
}

/**
 * A follower's `after` (or `Last-Event-ID`) past the Worker's last entry
 * would silently skip the entries written later up to it: refused, as an
 * unknown turn is (docs/rest.md).
 */
export const followableAfter = (after: number, worker: Worker): Effect.Effect<number, InvalidInput> =>
  after <= worker.lastSeq
    ? Effect.succeed(after)
    : Effect.fail(
      new InvalidInput({
        message: `after ${after} is past the Worker's last entry (seq ${worker.lastSeq}); follow from at most that`
      })
    )

/**
 * Cancel and stop are typed as taking no `InvalidInput` (docs/rest.md); a bad
 * body can only come from an untyped caller, so its reason is dropped rather
 * than failing the call.
 */
export const reasonOf = (request: unknown): Effect.Effect<string | undefined> =>
  validate.stop(request ?? {}).pipe(
    // An empty reason is no reason: the entry and `stopReason` then say "stopped".
    Effect.map((decoded) => (decoded.reason === "" ? undefined : decoded.reason)),
    Effect.orElseSucceed(() => undefined)
  )

/** A cancel's reason and whether it clears the queue; dropped when malformed, like `reasonOf`. */
export const cancelOf = (request: unknown): Effect.Effect<{ reason: string | undefined; clearQueue: boolean }> =>
  validate.cancel(request ?? {}).pipe(
    Effect.map((decoded) => ({
      reason: decoded.reason === "" ? undefined : decoded.reason,
      clearQueue: decoded.clearQueue === true
    })),
    Effect.orElseSucceed(() => ({ reason: undefined, clearQueue: false }))
  )

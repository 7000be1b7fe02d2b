/** Request decoding shared by every `Runtime` method: schema failures become `InvalidInput`. */
import * as Effect from "effect/Effect"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

import { CreateWorker, ListQuery, StopRequest, TranscriptQuery, WorkerInput } from "./Domain.js"
import { InvalidInput, type ValidationIssue } from "./Errors.js"

/** A formatted schema issue as the contract's `ValidationIssue` (symbol keys as strings). */
export const toValidationIssue = (
  issue: { readonly path: ReadonlyArray<PropertyKey>; readonly message: string }
): ValidationIssue => ({
  path: issue.path.map((key) => (typeof key === "symbol" ? String(key) : key)),
  message: issue.message
})

export const issuesOf = (error: ParseResult.ParseError): Array<ValidationIssue> =>
  ParseResult.ArrayFormatter.formatErrorSync(error).map(toValidationIssue)

export const invalidInputFromParseError = (error: ParseResult.ParseError, what: string): InvalidInput => {
  const issues = issuesOf(error)
  const first = issues[0]
  const where = first && first.path.length > 0 ? ` at ${first.path.join(".")}` : ""
  return new InvalidInput({
    message: `invalid ${what}${first ? `${where}: ${first.message}` : ""}`,
    issues
  })
}

/** A decoder for one request schema; strictness comes from the schema's own parse options. */
export const decodeRequest = <A, I>(schema: Schema.Schema<A, I>, what: string) => {
  const decode = Schema.decodeUnknown(schema)
  return (input: unknown): Effect.Effect<A, InvalidInput> =>
    Effect.mapError(decode(input), (error) => invalidInputFromParseError(error, what))
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
  for (const key in input) {
    if (!Object.hasOwn(input, key)) continue
    fields++
    if (key === "content") content = Reflect.get(input, key)
    else if (key === "kind") kind = Reflect.get(input, key)
    else return undefined
  }
  if (typeof content !== "string" || content.length === 0) return undefined
  if (kind === undefined) return fields === 1 ? { content } : undefined
  return kind === "user" || kind === "system" ? { content, kind } : undefined
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
  stop: decodeRequest(StopRequest, "stop request")
}

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

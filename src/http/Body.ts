/**
 * Request bodies, read by the Runtime rather than by the platform: only JSON
 * is ever read (a form or multipart body is refused before a byte of it is,
 * so nothing reaches a temp file), its size is capped, and bytes that are not
 * UTF-8 or JSON nested deeper than `MAX_JSON_DEPTH` are refused before any
 * decoding. docs/rest.md lists the order in which these are checked.
 */
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Schema from "effect/Schema"
import { InvalidInput } from "../Errors.js"
import { decodeRequest } from "../Validation.js"
import { PayloadTooLarge, UnsupportedMediaType } from "./Errors.js"

export const MAX_JSON_DEPTH = 64

/** `application/json` or any `+json` type, parameters allowed; no content type at all is read as JSON. */
export const isJsonMediaType = (contentType: string | undefined): boolean => {
  if (contentType === undefined || contentType.trim() === "") return true
  const essence = contentType.split(";")[0]!.trim().toLowerCase()
  return essence === "application/json" || /^[a-z0-9!#$&^_.-]+\/[a-z0-9!#$&^_.+-]+\+json$/.test(essence)
}

/** True when arrays and objects nest deeper than `max`; linear, and strings are skipped. */
export const jsonNestsDeeperThan = (text: string, max: number): boolean => {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (inString) {
      if (code === 0x5c) i++ // a backslash escapes the next character
      else if (code === 0x22) inString = false
    } else if (code === 0x22) {
      inString = true
    } else if (code === 0x7b || code === 0x5b) {
      if (++depth > max) return true
    } else if (code === 0x7d || code === 0x5d) {
      depth--
    }
  }
  return false
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false })

export interface BodyOptions {
  readonly maxBodyBytes: number
  /** What the body is, for messages ("input", "create request"). */
  readonly what: string
}

const tooLarge = (maxBodyBytes: number) =>
  new PayloadTooLarge({ message: `The request body exceeds ${maxBodyBytes} bytes.`, limitBytes: maxBodyBytes })

/** The body's bytes: checked for size and media type first; empty when there is none. */
const readBytes = (options: BodyOptions) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    // docs/rest.md's order: PayloadTooLarge, then UnsupportedMediaType.
    const declared = Number(request.headers["content-length"] ?? 0)
    if (declared > options.maxBodyBytes) return yield* tooLarge(options.maxBodyBytes)
    const contentType = request.headers["content-type"]
    if (!isJsonMediaType(contentType)) {
      return yield* new UnsupportedMediaType({
        message: `The request body must be JSON (application/json), not ${contentType}.`,
        contentType: contentType ?? ""
      })
    }
    return yield* request.arrayBuffer.pipe(
      Effect.mapError((error): PayloadTooLarge | InvalidInput =>
        error instanceof HttpServerError.RequestError && String(error.cause).includes("maxBytes")
          ? tooLarge(options.maxBodyBytes)
          : new InvalidInput({ message: "The request body could not be read." })
      )
    )
  })

// Either, not Effect: the input lane decodes every body, and these steps need no fiber.
const textOf = (bytes: ArrayBuffer | Uint8Array): Either.Either<string, InvalidInput> =>
  Either.try({
    try: () => utf8.decode(bytes),
    catch: () => new InvalidInput({ message: "The request body is not valid UTF-8." })
  })

const parse = (text: string): Either.Either<unknown, InvalidInput> =>
  jsonNestsDeeperThan(text, MAX_JSON_DEPTH)
    ? Either.left(new InvalidInput({ message: `The request body nests JSON deeper than ${MAX_JSON_DEPTH} levels.` }))
    : Either.try({
      try: (): unknown => JSON.parse(text),
      catch: () => new InvalidInput({ message: "The request body is not valid JSON." })
    })

/**
 * A required JSON body, from its bytes (read and checked for size and media
 * type already), decoded with `schema`: what `jsonBody` does after reading,
 * and what a fast lane (InputLane.ts) does with a body it read itself.
 */
export const requiredJsonOf = <A, I>(schema: Schema.Schema<A, I>, what: string) => {
  const decode = decodeRequest(schema, what)
  return (bytes: ArrayBuffer | Uint8Array): Effect.Effect<A, InvalidInput> => {
    const text = textOf(bytes)
    if (text._tag === "Left") return Effect.fail(text.left)
    if (text.right.trim() === "") return Effect.fail(new InvalidInput({ message: `The ${what} body is missing.` }))
    const json = parse(text.right)
    return json._tag === "Left" ? Effect.fail(json.left) : decode(json.right)
  }
}

/** A required JSON body decoded with `schema`. */
export const jsonBody = <A, I>(schema: Schema.Schema<A, I>, options: BodyOptions) =>
  Effect.flatMap(readBytes(options), requiredJsonOf(schema, options.what))

/** An optional JSON body (none, or `null`, is `undefined`) decoded with `schema`. */
export const optionalJsonBody = <A, I>(schema: Schema.Schema<A, I>, options: BodyOptions) => {
  const decode = decodeRequest(schema, options.what)
  return Effect.gen(function*() {
    const text = yield* textOf(yield* readBytes(options))
    if (text.trim() === "") return undefined
    const json = yield* parse(text)
    return json === null ? undefined : yield* decode(json)
  })
}

/**
 * Answers of immutable snapshots encoded once. A Worker value and a
 * transcript entry never change (a change makes a new object), so the JSON
 * of the last ones encoded is kept by identity and reused: a Worker read
 * again and again, an entry sent to a thousand followers. Bounded (the
 * oldest go first), so that a store that keeps its objects, like the memory
 * store, never holds a second copy of everything. test/Snapshots.test.ts
 * pins each encoding to what the schema encoder produces.
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Schema from "effect/Schema"
import { TranscriptEntry, type TranscriptPage, Worker } from "../Domain.js"

/** Objects whose encoding is kept, per kind. */
const KEPT = 1024

/** A bounded map by identity: past `KEPT`, the oldest entry goes. */
const identityCache = <K extends object>(encode: (key: K) => string) => {
  const kept = new Map<K, string>()
  return (key: K): string => {
    const hit = kept.get(key)
    if (hit !== undefined) return hit
    const json = encode(key)
    if (kept.size >= KEPT) {
      const oldest = kept.keys().next()
      if (oldest.done !== true) kept.delete(oldest.value)
    }
    kept.set(key, json)
    return json
  }
}

const encodeWorker = Schema.encodeSync(Worker)
const encodeEntry = Schema.encodeSync(TranscriptEntry)

/** The Worker as JSON, as its schema encodes it. */
export const workerJson: (worker: Worker) => string = identityCache((worker: Worker) =>
  JSON.stringify(encodeWorker(worker))
)

/** The entry as JSON, as its schema encodes it. */
export const entryJson: (entry: TranscriptEntry) => string = identityCache((entry: TranscriptEntry) =>
  JSON.stringify(encodeEntry(entry))
)

/** A delta event's data as JSON: `{"turn":n,"text":"…"}` (sent once, so not cached). */
export const deltaJson = (turn: number, text: string): string => `{"turn":${turn},"text":${JSON.stringify(text)}}`

/** The page as JSON, as `TranscriptPage` encodes it (its fields in the schema's order), from its entries' JSON. */
export const transcriptPageJson = (page: TranscriptPage): string =>
  `{"workerId":${JSON.stringify(page.workerId)},"entries":[${page.entries.map(entryJson).join(",")}],"nextAfter":${
    JSON.stringify(page.nextAfter)
  },"lastSeq":${JSON.stringify(page.lastSeq)}}`

/** A 2xx answer with a JSON body already encoded. */
export const jsonResponse = (json: string, status = 200) =>
  HttpServerResponse.text(json, { status, contentType: "application/json" })

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
import type { InputAccepted, Metadata, TranscriptEntry, TranscriptPage, Worker } from "../Domain.js"

/** Objects whose encoding is kept, per kind. */
const KEPT = 64

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

// Written field by field, in the schemas' order, rather than through the
// schema encoder: every field of these encodes as itself, and a new Worker
// snapshot per input made the encoder a tenth of an input's CPU
// (docs/benchmarks.md). test/Snapshots.test.ts pins each to the encoder on
// generated values, so a field added to a schema and not here fails there.
const str = JSON.stringify

/** A Worker's metadata is shared by its snapshots until it changes: its JSON is kept by identity. */
const metadataJsons = new WeakMap<Metadata, string>()

const metadataJson = (metadata: Metadata): string => {
  let json = metadataJsons.get(metadata)
  if (json === undefined) {
    json = str(metadata)
    metadataJsons.set(metadata, json)
  }
  return json
}

const encodeWorker = (w: Worker): string =>
  `{"id":${str(w.id)},"runtimeId":${str(w.runtimeId)},"profile":${str(w.profile)},"status":${
    str(w.status)
  },"createdAt":${str(w.createdAt)},"updatedAt":${
    str(w.updatedAt)
  },"turn":${w.turn},"lastSeq":${w.lastSeq},"metadata":${metadataJson(w.metadata)},"queued":${w.queued}${
    w.stopReason === undefined ? "" : `,"stopReason":${str(w.stopReason)}`
  }}`

const encodeEntry = (e: TranscriptEntry): string =>
  `{"seq":${e.seq},"at":${str(e.at)},"role":${str(e.role)},"content":${str(e.content)},"turn":${e.turn}${
    e.outcome === undefined ? "" : `,"outcome":${str(e.outcome)}`
  }}`

/** The Worker as JSON, as its schema encodes it. */
export const workerJson: (worker: Worker) => string = identityCache(encodeWorker)

/** The entry as JSON, as its schema encodes it. */
export const entryJson: (entry: TranscriptEntry) => string = identityCache(encodeEntry)

/** An input's answer as JSON, as `InputAccepted` encodes it. */
export const inputAcceptedJson = (a: InputAccepted): string =>
  `{"worker":${workerJson(a.worker)},"queued":${a.queued}${
    a.entry === undefined ? "" : `,"entry":${entryJson(a.entry)}`
  }${a.position === undefined ? "" : `,"position":${a.position}`}}`

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

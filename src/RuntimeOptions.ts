/** What an embedding Backend or the runtime process may set on `RuntimeLive`, and the defaults. */
import type { Profiles } from "./WorkerEngine.js"

/** Workers not stopped, at once. */
export const DEFAULT_MAX_WORKERS = 10_000
/** Largest input content, in UTF-8 bytes. */
export const DEFAULT_MAX_INPUT_BYTES = 1024 * 1024
/** The hard ceiling of a list or transcript page; `maxPage` may lower it. */
export const MAX_PAGE = 1000
/** A page's size when the caller gives no `limit`. */
export const DEFAULT_PAGE = 100
/** What `Unavailable.retryAfterMs` suggests when nothing better is known. */
export const RETRY_AFTER_MS = 1000

export interface RuntimeOptions {
  /** A fixed runtime id; generated when absent (a durable store keeps the first one). */
  readonly runtimeId?: string | undefined
  /** A human-readable name reported by `info`. */
  readonly displayName?: string | undefined
  /** Engines by profile name; default `{ default: echo }`. Only the operator chooses them. */
  readonly profiles?: Profiles | undefined
  /** Workers not stopped, at once; creates beyond it are `Unavailable` (default 10,000). */
  readonly maxWorkers?: number | undefined
  /** Largest input content in UTF-8 bytes; more is `InvalidInput` (default 1 MiB). */
  readonly maxInputBytes?: number | undefined
  /** Largest page of a list or a transcript (default and ceiling 1000). */
  readonly maxPage?: number | undefined
  /** How long turns in flight may go on once draining begins before they are interrupted (default 0). */
  readonly shutdownGraceMs?: number | undefined
}

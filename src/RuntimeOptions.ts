/** What an embedding Backend or the runtime process may set on `RuntimeLive`, and the defaults. */
import type { Profiles } from "./WorkerEngine.js"

/** The default `maxWorkers`: Workers not stopped, at once. */
export const DEFAULT_MAX_WORKERS = 10_000
/** The default `maxInputBytes`: the largest input content, in UTF-8 bytes (1 MiB). */
export const DEFAULT_MAX_INPUT_BYTES = 1024 * 1024
/** The hard ceiling of a list or transcript page, and the default `maxPage`; `maxPage` may only lower it. */
export const MAX_PAGE = 1000
/** A page's size when the caller gives no `limit`; `maxPage` when that is lower. */
export const DEFAULT_PAGE = 100
/** Inputs that may wait under `ifBusy: enqueue`, per Worker. */
export const DEFAULT_MAX_QUEUED_INPUTS = 100
/** Content that may wait per Worker under `ifBusy: enqueue`, in UTF-8 bytes. */
export const DEFAULT_MAX_QUEUED_BYTES = 16 * 1024 * 1024
/** What `Unavailable.retryAfterMs` suggests when nothing better is known. */
export const RETRY_AFTER_MS = 1000
/** How long an active Worker with nothing to do stays in memory. */
export const DEFAULT_PASSIVATE_AFTER_MS = 60_000

/** Options of `RuntimeLive` and `RuntimeFromStore`; every one may be left out. */
export interface RuntimeOptions {
  /**
   * The runtime's id; generated when absent. A durable store keeps the id it
   * was created with: then a different `runtimeId` fails the start.
   */
  readonly runtimeId?: string | undefined
  /** A human-readable name, reported by `info` (`null` when absent). */
  readonly displayName?: string | undefined
  /**
   * Engines by profile name (default `{ default: echo }`). Only the operator
   * chooses them; an API caller only names a profile on create.
   */
  readonly profiles?: Profiles | undefined
  /**
   * How many Workers that are not stopped (idle, busy or failed) may exist at
   * once; a create beyond it is `Unavailable` (default 10,000).
   */
  readonly maxWorkers?: number | undefined
  /**
   * The largest input content in UTF-8 bytes; longer content is `InvalidInput`
   * (default 1 MiB). Over HTTP the body limit follows from it.
   */
  readonly maxInputBytes?: number | undefined
  /**
   * The largest `limit` a list or transcript query may ask for; a larger one is
   * `InvalidInput`. Default and ceiling `MAX_PAGE` (1000).
   */
  readonly maxPage?: number | undefined
  /**
   * Once draining begins, how many milliseconds turns in flight may run on
   * before they are interrupted and recorded (default 0: at once).
   */
  readonly shutdownGraceMs?: number | undefined
  /** Inputs that may wait under `ifBusy: enqueue`, per Worker; more are `Busy` (default 100). */
  readonly maxQueuedInputs?: number | undefined
  /**
   * Content that may wait under `ifBusy: enqueue`, per Worker, in UTF-8
   * bytes; an input past it is `Busy` (default 16 MiB). A durable store keeps
   * queued content on disk; memory holds each input's place and size only.
   */
  readonly maxQueuedBytes?: number | undefined
  /**
   * Delete Workers stopped or failed longer ago than this (ms), in the
   * background; absent (the default): never delete on its own.
   */
  readonly retainStoppedMs?: number | undefined
  /**
   * How long a Worker with no turn, no queued input and no follower stays in
   * memory before it is passivated (its memory returned; the store holds it).
   * Default 60 s.
   */
  readonly passivateAfterMs?: number | undefined
  /**
   * Spans for every Runtime method, store commit and turn, for the tracer in
   * context (e.g. OTLP from `@effect/opentelemetry`). Off by default: then
   * no span is made at all.
   */
  readonly tracing?: boolean | undefined
}

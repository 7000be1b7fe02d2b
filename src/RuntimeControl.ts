/** The Runtime's options and the control it gives the process that hosts it. */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"

import type { Profiles } from "./WorkerEngine.js"

/** Defaults shared by `RuntimeLive`, the HTTP server and the process flags. */
export const DEFAULT_MAX_WORKERS = 10_000
export const DEFAULT_MAX_INPUT_BYTES = 1024 * 1024

export interface RuntimeOptions {
  /** Fixed runtime id; generated when absent (durable stores keep theirs). */
  readonly runtimeId?: string | undefined
  readonly displayName?: string | undefined
  /** Engines by profile name; default `{ default: echo }`. */
  readonly profiles?: Profiles | undefined
  /** Workers not stopped, at once (default 10000). */
  readonly maxWorkers?: number | undefined
  /** Largest input content in UTF-8 bytes (default 1 MiB). */
  readonly maxInputBytes?: number | undefined
  /** Largest page of a list or transcript (default and ceiling 1000). */
  readonly maxTranscriptPage?: number | undefined
  /** How long turns may run on after shutdown begins before they are interrupted (default 0). */
  readonly shutdownGraceMs?: number | undefined
}

export interface RuntimeControlService {
  /**
   * Stops taking new work (`draining`), gives turns in flight the shutdown
   * grace period, then interrupts and records the rest. Idempotent; closing
   * the layer's scope does the same.
   */
  readonly drain: Effect.Effect<void>
}

export class RuntimeControl extends Context.Tag("worker-runtime/RuntimeControl")<
  RuntimeControl,
  RuntimeControlService
>() {}

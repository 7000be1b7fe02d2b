/**
 * `RuntimeLive`: the one place Worker semantics live. HTTP handlers, the
 * client and the CLI translate and delegate to what is built here.
 *
 * Every change to a Worker happens under that Worker's lock and is committed
 * to the store before it becomes visible in memory (`WorkerTable`); a turn is
 * a fiber (`Turns`); `Draining` knows when no turn is left. The contract is
 * docs/rest.md; docs/architecture.md shows how the pieces fit.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { admitInput, refuseCancel } from "./Admission.js"
import {
  type CancelResult,
  RuntimeId,
  type RuntimeInfo,
  type TranscriptEntry,
  type Worker,
  WorkerId
} from "./Domain.js"
import { makeDraining } from "./Draining.js"
import { makeEchoEngine } from "./EchoEngine.js"
import { InvalidInput, Unavailable } from "./Errors.js"
import { makeIdGenerator } from "./Ids.js"
import { MemoryStoreLive } from "./MemoryStore.js"
import { Runtime, type RuntimeService } from "./Runtime.js"
import { RuntimeControl, type RuntimeControlService } from "./RuntimeControl.js"
import {
  DEFAULT_MAX_INPUT_BYTES,
  DEFAULT_MAX_WORKERS,
  DEFAULT_PAGE,
  MAX_PAGE,
  RETRY_AFTER_MS,
  type RuntimeOptions
} from "./RuntimeOptions.js"
import { RuntimeStore, type StoreError } from "./RuntimeStore.js"
import { ending, makeTurns, notEnding, nowIso, withReason } from "./Turns.js"
import { exceedsBytes, reasonOf, validate } from "./Validation.js"
import { VERSION } from "./version.js"
import type { Profiles, WorkerEngine } from "./WorkerEngine.js"
import { makeWorkerTable, type WorkerTable } from "./WorkerTable.js"

const defaultProfiles: Profiles = { default: makeEchoEngine() }
const EMPTY_METADATA: Worker["metadata"] = {}
/** A transcript page stops before its entries' content would pass this (docs/rest.md). */
export const MAX_PAGE_BYTES = 4 * 1024 * 1024

/** A store failure as callers see it: the Runtime cannot serve now. */
const unavailable = (error: StoreError) =>
  new Unavailable({ message: `store failure: ${error.message}`, retryAfterMs: RETRY_AFTER_MS })

/** Builds the Runtime over whatever `RuntimeStore` is provided. */
export const makeRuntime = (
  options: RuntimeOptions = {}
): Effect.Effect<
  { readonly runtime: RuntimeService; readonly control: RuntimeControlService },
  StoreError,
  RuntimeStore | Scope.Scope
> =>
  Effect.gen(function*() {
    const store = yield* RuntimeStore
    const profiles = options.profiles ?? defaultProfiles
    const profileNames = Object.keys(profiles)
    // Own keys only: a profile named "constructor" must not find Object's.
    const engineOf = (name: string): WorkerEngine | undefined =>
      Object.hasOwn(profiles, name) ? profiles[name] : undefined
    const maxWorkers = options.maxWorkers ?? DEFAULT_MAX_WORKERS
    const maxInputBytes = options.maxInputBytes ?? DEFAULT_MAX_INPUT_BYTES
    const maxPage = Math.min(options.maxPage ?? MAX_PAGE, MAX_PAGE)
    const defaultPage = Math.min(DEFAULT_PAGE, maxPage)
    const displayName = options.displayName ?? null

    const runtimeId = RuntimeId.make(yield* store.runtimeId(options.runtimeId, () => makeIdGenerator().next()))
    const startedAt = yield* nowIso
    const draining = yield* makeDraining(options.shutdownGraceMs ?? 0, () => table)
    const table: WorkerTable = makeWorkerTable(store, () => draining.notify())
    const turns = makeTurns(store, table, runtimeId)

    // Load, then repair: a turn in flight when the process died is recorded as
    // interrupted and its Worker freed. A store that cannot record this fails
    // the start: better no Runtime than one that shows Workers busy forever.
    const loaded = yield* store.loadWorkers
    const ids = makeIdGenerator(loaded.length > 0 ? loaded[loaded.length - 1]!.id : undefined)
    for (const worker of loaded) {
      const slot = table.add(worker, engineOf(worker.profile))
      if (worker.status === "busy") yield* turns.end(slot, "idle", "interrupted by restart")
    }
    // Creates whose insert is in progress: they count against the capacity.
    let reserved = 0

    const asUnavailable = Effect.mapError(unavailable)

    /** The store lost for good (its file deleted or replaced): the Runtime cannot serve, and is not ready. */
    const storeLost = Effect.suspend(() => {
      const failure = store.failure()
      return failure === undefined
        ? Effect.void
        : Effect.fail(new Unavailable({ message: `store failure: ${failure}`, retryAfterMs: RETRY_AFTER_MS }))
    })

    const runtime: RuntimeService = {
      info: Effect.zipRight(
        storeLost,
        Effect.sync((): RuntimeInfo => ({
          runtimeId,
          displayName,
          version: VERSION,
          status: draining.active() ? "draining" : "running",
          store: store.kind,
          startedAt,
          profiles: profileNames,
          workers: {
            total: table.size(),
            idle: table.count("idle"),
            busy: table.count("busy"),
            stopped: table.count("stopped"),
            failed: table.count("failed")
          },
          limits: { maxWorkers, maxInputBytes, maxTranscriptPage: maxPage }
        }))
      ),

      list: (query) =>
        Effect.gen(function*() {
          const { after, limit = defaultPage, status } = yield* validate.list(query)
          if (limit > maxPage) return yield* new InvalidInput({ message: `limit must be at most ${maxPage}` })
          const workers = yield* asUnavailable(store.listWorkers({ after, limit: limit + 1, status }))
          const page = workers.length > limit ? workers.slice(0, limit) : workers
          return { workers: page, nextAfter: workers.length > limit ? page[page.length - 1]!.id : null }
        }),

      get: (workerId) => Effect.map(table.lookup(workerId), (slot) => slot.worker),

      create: (request) =>
        Effect.gen(function*() {
          const { metadata, profile = "default" } = yield* validate.create(request)
          const engine = engineOf(profile)
          if (engine === undefined) {
            return yield* new InvalidInput({
              message: `unknown profile ${JSON.stringify(profile)}; configured: ${profileNames.join(", ")}`
            })
          }
          if (draining.active()) return yield* draining.error()
          if (table.size() - table.count("stopped") + reserved >= maxWorkers) {
            return yield* new Unavailable({
              message: `at capacity: ${maxWorkers} Workers not stopped`,
              retryAfterMs: RETRY_AFTER_MS
            })
          }
          // Reserve the place before the (possibly asynchronous) insert so that
          // concurrent creates cannot overshoot the capacity.
          reserved++
          const at = yield* nowIso
          const worker: Worker = {
            id: WorkerId.make(ids.next()),
            runtimeId,
            profile,
            status: "idle",
            createdAt: at,
            updatedAt: at,
            turn: 0,
            lastSeq: 0,
            metadata: metadata !== undefined && Object.keys(metadata).length > 0 ? metadata : EMPTY_METADATA
          }
          return yield* store.insertWorker(worker).pipe(
            asUnavailable,
            Effect.map(() => table.add(worker, engine).worker),
            Effect.ensuring(Effect.sync(() => reserved--))
          )
        }).pipe(Effect.uninterruptible),

      input: (workerId, input) =>
        Effect.gen(function*() {
          const { content, kind = "user" } = yield* validate.input(input)
          const slot = yield* table.lookup(workerId)
          if (exceedsBytes(content, maxInputBytes)) {
            return yield* new InvalidInput({ message: `content exceeds ${maxInputBytes} UTF-8 bytes` })
          }
          if (draining.active()) return yield* draining.error()
          yield* admitInput(slot.worker, slot.engine, kind)
          return yield* table.locked(
            slot,
            draining.starting(
              slot,
              Effect.gen(function*() {
                // Checked again under the lock: this is the one place a turn starts.
                if (draining.active()) return yield* draining.error()
                const engine = yield* admitInput(slot.worker, slot.engine, kind)
                const at = yield* nowIso
                const current = slot.worker
                const turn = current.turn + 1
                const entry: TranscriptEntry = { seq: current.lastSeq + 1, at, role: kind, content, turn }
                const worker = yield* asUnavailable(
                  table.commit(slot, { ...current, status: "busy", turn, lastSeq: entry.seq, updatedAt: at }, [entry])
                )
                yield* turns.start(slot, engine, { content, kind })
                return { worker, entry }
              })
            )
          )
        }),

      cancel: (workerId, request) =>
        Effect.gen(function*() {
          const reason = yield* reasonOf(request)
          const slot = yield* table.lookup(workerId)
          const refusal = refuseCancel(slot.worker, slot.engine)
          if (refusal !== undefined) return yield* refusal
          return yield* turns.ending(
            slot,
            Effect.gen(function*() {
              const refusal = refuseCancel(slot.worker, slot.engine)
              if (refusal !== undefined) return yield* refusal
              if (slot.worker.status !== "busy") {
                return notEnding<CancelResult>({ worker: slot.worker, cancelled: false })
              }
              const [worker, fiber] = yield* asUnavailable(turns.end(slot, "idle", withReason("cancelled", reason)))
              return ending<CancelResult>({ worker, cancelled: true }, fiber)
            })
          )
        }),

      stop: (workerId, request) =>
        Effect.gen(function*() {
          const reason = yield* reasonOf(request)
          const slot = yield* table.lookup(workerId)
          return yield* turns.ending(
            slot,
            Effect.suspend(() =>
              slot.worker.status === "stopped"
                ? Effect.succeed(notEnding(slot.worker))
                : asUnavailable(
                  turns.end(slot, "stopped", withReason("stopped", reason), { stopReason: reason ?? "stopped" })
                )
            )
          )
        }),

      transcript: (workerId, query) =>
        Effect.gen(function*() {
          const { after = 0, limit = defaultPage } = yield* validate.transcript(query)
          if (limit > maxPage) return yield* new InvalidInput({ message: `limit must be at most ${maxPage}` })
          const slot = yield* table.lookup(workerId)
          const entries = yield* asUnavailable(store.transcript(workerId, { after, limit, maxBytes: MAX_PAGE_BYTES }))
          const last = entries[entries.length - 1]
          // The store may be a commit ahead of memory, never behind.
          const lastSeq = Math.max(slot.worker.lastSeq, last?.seq ?? 0)
          return { workerId, entries, nextAfter: last !== undefined && last.seq < lastSeq ? last.seq : null, lastSeq }
        })
    }

    // --- shutdown ----------------------------------------------------------------

    const interruptInFlight = Effect.suspend(() =>
      Effect.forEach(
        draining.busySlots(),
        (slot) =>
          // The lock waits out a turn that is still starting.
          turns.ending(
            slot,
            Effect.suspend(() =>
              slot.worker.status === "busy"
                ? turns.end(slot, "idle", "interrupted: the runtime shut down")
                : Effect.succeed(notEnding<Worker | undefined>(undefined))
            )
          ).pipe(Effect.catchAll((error) => Effect.logError("could not record an interrupted turn", error))),
        { concurrency: "unbounded", discard: true }
      )
    )

    const drain = yield* Effect.cached(
      Effect.gen(function*() {
        yield* draining.begin
        yield* interruptInFlight
        // Turns already ended by cancel or stop may still be releasing (a child being killed).
        yield* turns.interruptAll
      })
    )
    yield* Effect.addFinalizer(() => drain)

    return { runtime, control: { drain } }
  })

/** `Runtime` and `RuntimeControl` over the `RuntimeStore` in context (e.g. the SQLite store). */
export const RuntimeFromStore = (
  options: RuntimeOptions = {}
): Layer.Layer<Runtime | RuntimeControl, StoreError, RuntimeStore> =>
  Layer.scopedContext(
    Effect.map(
      makeRuntime(options),
      ({ control, runtime }) => Context.make(Runtime, runtime).pipe(Context.add(RuntimeControl, control))
    )
  )

/** A ready Runtime on a fresh memory store: what an embedding Backend provides. */
export const RuntimeLive = (options: RuntimeOptions = {}): Layer.Layer<Runtime | RuntimeControl> =>
  RuntimeFromStore(options).pipe(
    Layer.provide(MemoryStoreLive()),
    // The memory store cannot fail; this only narrows the type.
    Layer.orDie
  )

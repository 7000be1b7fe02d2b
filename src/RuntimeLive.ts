/**
 * `RuntimeLive`: the one place Worker semantics live. HTTP handlers, the
 * client and the CLI translate and delegate to what is built here.
 *
 * Every change to a Worker happens under that Worker's lock and is committed
 * to the store before it becomes visible in memory and to followers
 * (`WorkerTable`); a turn is a fiber, and every change of turns one commit
 * (`Turns`); `Draining` knows when no turn is left; `Events` follows a
 * Worker. The contract is docs/rest.md; docs/architecture.md shows how the
 * pieces fit.
 */
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { admitInput, refuseCancel } from "./Admission.js"
import {
  type CancelResult,
  type CreateWorker,
  type InputAccepted,
  type Metadata,
  RuntimeId,
  type RuntimeInfo,
  type StopRequest,
  type Turn,
  type Worker,
  WorkerId
} from "./Domain.js"
import { makeDraining } from "./Draining.js"
import { makeEchoEngine } from "./EchoEngine.js"
import { Busy, InvalidInput, Unavailable, UnknownWorker, Unsupported } from "./Errors.js"
import { followWorker } from "./Events.js"
import { makeClockId, makeClockIdGenerator } from "./Ids.js"
import { MemoryStoreLive } from "./MemoryStore.js"
import { startRetention } from "./Retention.js"
import { Runtime, type RuntimeService } from "./Runtime.js"
import { RuntimeControl, type RuntimeControlService } from "./RuntimeControl.js"
import {
  DEFAULT_MAX_INPUT_BYTES,
  DEFAULT_MAX_QUEUED_BYTES,
  DEFAULT_MAX_QUEUED_INPUTS,
  DEFAULT_MAX_WORKERS,
  DEFAULT_PAGE,
  MAX_PAGE,
  RETRY_AFTER_MS,
  type RuntimeOptions
} from "./RuntimeOptions.js"
import { asUnavailable, RuntimeStore, type StoreError } from "./RuntimeStore.js"
import { traced } from "./Tracing.js"
import { ending, makeTurns, notEnding, nowIso, type TransitionResult } from "./Turns.js"
import { cancelOf, exceedsBytes, followableAfter, reasonOf, utf8Length, validate } from "./Validation.js"
import { VERSION } from "./version.js"
import type { Profiles, WorkerEngine } from "./WorkerEngine.js"
import { makeWorkerTable, type Slot, type WorkerTable } from "./WorkerTable.js"

const defaultProfiles: Profiles = { default: makeEchoEngine() }
const EMPTY_METADATA: Worker["metadata"] = {}
/** A transcript page stops before its entries' content would pass this (docs/rest.md). */
export const MAX_PAGE_BYTES = 4 * 1024 * 1024

// Workers a create returned because its idempotency key was known: the HTTP
// layer answers those 200 instead of 201.
const replayedCreates = new WeakSet<Worker>()

/** True when `create` returned this Worker for a key it already knew (it made no new one). */
export const wasCreatedBefore = (worker: Worker): boolean => replayedCreates.has(worker)

const sameMetadata = (a: Metadata, b: Metadata) => {
  const keys = Object.keys(a)
  return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && a[key] === b[key])
}

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
    const maxQueued = options.maxQueuedInputs ?? DEFAULT_MAX_QUEUED_INPUTS
    const maxQueuedBytes = options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES
    const maxPage = Math.min(options.maxPage ?? MAX_PAGE, MAX_PAGE)
    const defaultPage = Math.min(DEFAULT_PAGE, maxPage)
    const displayName = options.displayName ?? null

    const freshId = yield* makeClockId
    const runtimeId = RuntimeId.make(yield* store.runtimeId(options.runtimeId, () => freshId))
    const startedAt = yield* nowIso
    const draining = yield* makeDraining(options.shutdownGraceMs ?? 0, () => table)
    const tracing = options.tracing === true
    const table: WorkerTable = makeWorkerTable(store, runtimeId, () => draining.notify(), tracing)
    const turns = makeTurns(store, table, runtimeId, () => !draining.active(), tracing)
    // Idempotency keys of the Workers held, and creates with a key in progress
    // (in this process; the store's unique key decides between processes).
    const keys = new Map<string, Slot>()
    const keysInFlight = new Map<string, Deferred.Deferred<Worker, InvalidInput | Unavailable>>()

    // Load, then repair: a turn in flight when the process died is recorded as
    // interrupted and its Worker freed. A store that cannot record this fails
    // the start: better no Runtime than one that shows Workers busy forever.
    const loaded = yield* store.loadWorkers
    const ids = yield* makeClockIdGenerator(loaded.length > 0 ? loaded[loaded.length - 1]!.worker.id : undefined)
    let repaired = 0
    for (const stored of loaded) {
      const slot = table.add(stored.worker, engineOf(stored.worker.profile), stored)
      if (stored.idempotencyKey !== undefined) keys.set(stored.idempotencyKey, slot)
      if (stored.worker.status !== "busy") continue
      repaired++
      const record = yield* store.turn(stored.worker.id, stored.worker.turn)
      if (record !== undefined) slot.latest = { record, ended: Effect.unsafeMakeLatch(false) }
      yield* turns.transition(slot, {
        end: { outcome: "interrupted", reason: "interrupted by restart" },
        status: "idle"
      })
    }
    if (repaired > 0) {
      yield* Effect.logInfo("Workers repaired at start: their turn was in flight when the runtime stopped").pipe(
        Effect.annotateLogs({ workers: repaired })
      )
    }
    // Inputs queued before the restart run now, in order.
    for (const slot of table.slots()) {
      if (slot.worker.status === "idle" && slot.queue.length > 0) {
        yield* turns.transition(slot, { status: "idle", next: "queued" })
      }
    }
    // Creates whose insert is in progress: they count against the capacity.
    let reserved = 0

    /** The store lost for good (its file deleted or replaced): the Runtime cannot serve, and is not ready. */
    const storeLost = Effect.suspend(() => {
      const failure = store.failure()
      return failure === undefined
        ? Effect.void
        : Effect.fail(new Unavailable({ message: `store failure: ${failure}`, retryAfterMs: RETRY_AFTER_MS }))
    })

    /** A Worker deleted while its caller waited for the lock. */
    const gone = (slot: Slot) =>
      Effect.fail(
        new UnknownWorker({
          workerId: slot.worker.id,
          message: `There is no Worker ${JSON.stringify(slot.worker.id)}.`
        })
      )

    // Effect.fnUntraced defines each generator once: an `Effect.gen(function*…)`
    // per call makes a new generator function per call, and V8 keeps a list
    // of their prototypes that grows with how many were made between two full
    // collections and never shrinks (docs/benchmarks.md, reclaim).
    const createNew = Effect.fnUntraced(
      function*(request: CreateWorker, engine: WorkerEngine, key: string | undefined) {
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
        const { metadata } = request
        const worker: Worker = {
          id: WorkerId.make(yield* ids.next),
          runtimeId,
          profile: request.profile ?? "default",
          status: "idle",
          createdAt: at,
          updatedAt: at,
          turn: 0,
          lastSeq: 0,
          metadata: metadata !== undefined && Object.keys(metadata).length > 0 ? metadata : EMPTY_METADATA,
          queued: 0
        }
        return yield* store.insertWorker(worker, key).pipe(
          asUnavailable,
          Effect.flatMap((result) => {
            if (result.created || key === undefined) {
              const slot = table.add(worker, engine, { idempotencyKey: key })
              if (key !== undefined) keys.set(key, slot)
              return Effect.succeed(worker)
            }
            // The store's unique key decided: another create (another process,
            // sharing the database) took it first. Its Worker, as it is now.
            return replay(request, table.find(result.existing.id)?.worker ?? result.existing, key)
          }),
          Effect.ensuring(Effect.sync(() => reserved--))
        )
      }
    )

    /** The Worker a known key made, if the request is the same; `InvalidInput` if not. */
    const replay = (request: CreateWorker, worker: Worker, key: string) =>
      (request.profile ?? "default") === worker.profile && sameMetadata(request.metadata ?? {}, worker.metadata)
        ? Effect.sync(() => {
          // A copy: the Worker the first create returned is the same object, and is not a replay.
          const replayed = { ...worker }
          replayedCreates.add(replayed)
          return replayed
        })
        : Effect.fail(
          new InvalidInput({
            message: `The idempotency key ${
              JSON.stringify(key)
            } was used for a create with another profile or metadata.`
          })
        )

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
          const { after, limit = defaultPage, metadata, status } = yield* validate.list(query)
          if (limit > maxPage) return yield* new InvalidInput({ message: `limit must be at most ${maxPage}` })
          const workers = yield* asUnavailable(store.listWorkers({ after, limit: limit + 1, status, metadata }))
          const page = workers.length > limit ? workers.slice(0, limit) : workers
          const nextAfter = workers.length > limit ? page[page.length - 1]!.id : null
          // Memory is as new as the store or newer; a Worker being deleted is gone already.
          const current = page.flatMap((worker) => {
            const slot = table.find(worker.id)
            return slot === undefined ? [] : [slot.worker]
          })
          return { workers: current, nextAfter }
        }),

      get: (workerId) => Effect.map(table.lookup(workerId), (slot) => slot.worker),

      create: Effect.fnUntraced(
        function*(request: CreateWorker) {
          const valid = yield* validate.create(request)
          const profile = valid.profile ?? "default"
          const engine = engineOf(profile)
          if (engine === undefined) {
            return yield* new InvalidInput({
              message: `unknown profile ${JSON.stringify(profile)}; configured: ${profileNames.join(", ")}`
            })
          }
          const key = valid.idempotencyKey
          // Making a Worker cannot be interrupted (a caller that goes away
          // never leaves it half made); waiting for another create can.
          if (key === undefined) return yield* Effect.uninterruptible(createNew(valid, engine, undefined))
          const known = keys.get(key)
          if (known !== undefined) return yield* replay(valid, known.worker, key)
          const inFlight = keysInFlight.get(key)
          if (inFlight !== undefined) return yield* replay(valid, yield* Deferred.await(inFlight), key)
          // The first create with this key makes the Worker; concurrent ones wait for it.
          return yield* Effect.uninterruptible(Effect.suspend(() => {
            const done = Deferred.unsafeMake<Worker, InvalidInput | Unavailable>(FiberId.none)
            keysInFlight.set(key, done)
            return createNew(valid, engine, key).pipe(
              Effect.exit,
              Effect.tap((exit) => Deferred.done(done, exit)),
              Effect.ensuring(Effect.sync(() => keysInFlight.delete(key))),
              Effect.flatten
            )
          }))
        }
      ),

      input: (workerId, input) =>
        Effect.gen(function*() {
          const { content, ifBusy = "reject", kind = "user" } = yield* validate.input(input)
          const slot = yield* table.lookup(workerId)
          if (exceedsBytes(content, maxInputBytes)) {
            return yield* new InvalidInput({ message: `content exceeds ${maxInputBytes} UTF-8 bytes` })
          }
          if (draining.active()) return yield* draining.error()
          if (ifBusy === "reject") yield* admitInput(slot.worker, slot.engine, kind)
          return yield* turns.ending(
            slot,
            draining.starting(
              slot,
              Effect.gen(function*() {
                if (slot.deleted) return yield* gone(slot)
                // Checked again under the lock: this is the one place a turn starts.
                if (draining.active()) return yield* draining.error()
                const busy = slot.worker.status === "busy"
                yield* admitInput(
                  { ...slot.worker, status: busy && ifBusy !== "reject" ? "idle" : slot.worker.status },
                  slot.engine,
                  kind
                )
                if (busy && ifBusy === "enqueue") {
                  if (slot.queue.length >= maxQueued) {
                    return yield* new Busy({
                      workerId,
                      turn: slot.worker.turn,
                      message: `Worker ${workerId} has ${maxQueued} inputs queued already`
                    })
                  }
                  const bytes = utf8Length(content)
                  const queuedBytes = slot.queue.reduce((sum, input) => sum + input.bytes, 0)
                  if (queuedBytes + bytes > maxQueuedBytes) {
                    return yield* new Busy({
                      workerId,
                      turn: slot.worker.turn,
                      message: `Worker ${workerId} has ${queuedBytes} bytes of input queued; at most ${maxQueuedBytes}`
                    })
                  }
                  const at = yield* nowIso
                  const last = slot.queue[slot.queue.length - 1]
                  const id = (last?.id ?? slot.worker.lastSeq) + 1
                  const worker = yield* asUnavailable(table.commit(slot, {
                    worker: { ...slot.worker, queued: slot.queue.length + 1, updatedAt: at },
                    entries: [],
                    enqueue: { id, content, kind, at }
                  }))
                  // Memory keeps its place and size; the content is the store's.
                  slot.queue = [...slot.queue, { id, kind, at, bytes }]
                  return notEnding<InputAccepted>({ worker, queued: true, position: slot.queue.length })
                }
                const [result, ended] = yield* asUnavailable(turns.transition(slot, {
                  ...(busy ? { end: { outcome: "cancelled", reason: "interrupted by new input" } } : {}),
                  status: "busy",
                  next: { content, kind }
                }))
                return ending<InputAccepted>(accepted(result), ended)
              })
            )
          )
        }),

      cancel: (workerId, request) =>
        Effect.gen(function*() {
          const { clearQueue, reason } = yield* cancelOf(request)
          const slot = yield* table.lookup(workerId)
          const refusal = refuseCancel(slot.worker, slot.engine)
          if (refusal !== undefined) return yield* refusal
          return yield* turns.ending(
            slot,
            Effect.gen(function*() {
              if (slot.deleted) return yield* gone(slot)
              const refusal = refuseCancel(slot.worker, slot.engine)
              if (refusal !== undefined) return yield* refusal
              if (slot.worker.status !== "busy") {
                if (!clearQueue || slot.queue.length === 0) {
                  return notEnding<CancelResult>({ worker: slot.worker, cancelled: false })
                }
              }
              const busy = slot.worker.status === "busy"
              const [{ worker }, ended] = yield* asUnavailable(turns.transition(slot, {
                ...(busy ? { end: { outcome: "cancelled", reason } } : {}),
                status: "idle",
                dropQueue: clearQueue,
                next: clearQueue ? undefined : "queued"
              }))
              return ending<CancelResult>({ worker, cancelled: busy }, ended)
            })
          )
        }),

      stop: Effect.fnUntraced(function*(workerId: WorkerId, request?: StopRequest) {
        const reason = yield* reasonOf(request)
        const slot = yield* table.lookup(workerId)
        return yield* turns.ending(slot, stopLocked(slot, reason))
      }),

      transcript: (workerId, query) =>
        Effect.gen(function*() {
          const { after = 0, limit = defaultPage } = yield* validate.transcript(query)
          if (limit > maxPage) return yield* new InvalidInput({ message: `limit must be at most ${maxPage}` })
          const slot = yield* table.lookup(workerId)
          const entries = yield* asUnavailable(
            store.transcript(workerId, { after, limit, maxBytes: MAX_PAGE_BYTES })
          )
          const last = entries[entries.length - 1]
          // The store may be a commit ahead of memory, never behind.
          const lastSeq = Math.max(slot.worker.lastSeq, last?.seq ?? 0)
          return { workerId, entries, nextAfter: last !== undefined && last.seq < lastSeq ? last.seq : null, lastSeq }
        }),

      turn: (workerId, turn, query) =>
        Effect.gen(function*() {
          const { waitMs = 0 } = yield* validate.turn(query ?? {})
          const slot = yield* table.lookup(workerId)
          if (!Number.isInteger(turn) || turn < 1 || turn > slot.worker.turn) {
            return yield* new InvalidInput({
              message: `Worker ${workerId} has no turn ${turn}; its turns are 1 to ${slot.worker.turn}.`
            })
          }
          const latest = slot.latest
          if (latest !== undefined && latest.record.turn === turn) {
            if (latest.record.status === "running" && waitMs > 0) {
              yield* Effect.timeoutOption(latest.ended.await, waitMs)
            }
            const record: Turn = latest.record
            // A running turn's last entry is the Worker's.
            return record.status === "running" ? { ...record, lastSeq: slot.worker.lastSeq } : record
          }
          const stored = yield* asUnavailable(store.turn(workerId, turn))
          if (stored === undefined) {
            return yield* new Unavailable({
              message: `store failure: no record of turn ${turn} of Worker ${workerId}`,
              retryAfterMs: RETRY_AFTER_MS
            })
          }
          return stored
        }),

      events: (workerId, query) =>
        followWorker(
          store,
          table,
          Effect.gen(function*() {
            const { after = 0 } = yield* validate.events(query ?? {})
            const slot = yield* table.lookup(workerId)
            return { slot, after: yield* followableAfter(after, slot.worker) }
          })
        ),

      delete: Effect.fnUntraced(function*(workerId: WorkerId) {
        const slot = yield* table.lookup(workerId)
        yield* table.locked(slot, deleteLocked(slot))
      })
    }

    const accepted = (result: TransitionResult): InputAccepted =>
      result.started === undefined
        ? { worker: result.worker, queued: false }
        : { worker: result.worker, queued: false, entry: result.started }

    const stopLocked = Effect.fnUntraced(function*(slot: Slot, reason: string | undefined) {
      if (slot.deleted) return yield* gone(slot)
      if (slot.worker.status === "stopped") return notEnding(slot.worker)
      const [{ worker }, ended] = yield* asUnavailable(turns.transition(slot, {
        end: { outcome: "stopped", reason },
        status: "stopped",
        patch: { stopReason: reason ?? "stopped" },
        dropQueue: true
      }))
      return ending(worker, ended)
    })

    const deleteLocked = Effect.fnUntraced(function*(slot: Slot) {
      if (slot.deleted) return yield* gone(slot)
      const { id, status } = slot.worker
      if (status !== "stopped" && status !== "failed") {
        return yield* new Unsupported({
          operation: "delete",
          workerId: id,
          message: `Worker ${id} is ${status}; stop it first`
        })
      }
      // Gone for callers at once: the store deletes a long transcript in
      // batches, and nobody should read it half deleted meanwhile. A delete
      // the store could not finish is finished by deleting again after a
      // restart (the Worker then shows up again, still stopped).
      table.remove(slot)
      if (slot.idempotencyKey !== undefined) keys.delete(slot.idempotencyKey)
      yield* asUnavailable(store.deleteWorker(id))
    })

    if (options.retainStoppedMs !== undefined) yield* startRetention(table, options.retainStoppedMs, deleteLocked)

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
                ? turns.transition(slot, {
                  end: { outcome: "interrupted", reason: "the runtime shut down" },
                  status: "idle"
                })
                : Effect.succeed(notEnding<TransitionResult | undefined>(undefined))
            )
          ).pipe(Effect.catchAll((error) => Effect.logError("could not record an interrupted turn", error))),
        { concurrency: "unbounded", discard: true }
      )
    )

    const drain = yield* Effect.cached(
      Effect.gen(function*() {
        yield* draining.begin
        const interrupted = draining.busySlots().length
        yield* interruptInFlight
        // Turns already ended by cancel or stop may still be releasing (a child being killed).
        yield* turns.interruptAll
        if (!store.durable) {
          const dropped = Array.from(table.slots()).reduce((sum, slot) => sum + slot.queue.length, 0)
          if (dropped > 0) {
            yield* Effect.logWarning(`${dropped} queued inputs dropped: the ${store.kind} store keeps nothing`)
          }
        }
        table.endStreams()
        return { turnsInterrupted: interrupted }
      })
    )
    yield* Effect.addFinalizer(() => drain)

    return {
      runtime: tracing ? traced(runtime) : runtime,
      control: { drain, turnsInFlight: Effect.sync(() => draining.busySlots().length) }
    }
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

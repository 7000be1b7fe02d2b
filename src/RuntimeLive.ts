/**
 * `RuntimeLive`: the one place Worker semantics live. HTTP handlers, the
 * client and the CLI translate and delegate to what is built here.
 *
 * Every change to a Worker happens under that Worker's lock, is committed to
 * the store, and only then becomes visible in memory; a turn is a fiber in a
 * `FiberMap` keyed by Worker id. Whoever interrupts a turn (cancel, stop,
 * shutdown) records why; a turn that ends on its own records its own end.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"

import { admitInput, refuseCancel } from "./Admission.js"
import {
  type CancelResult,
  DEFAULT_PAGE,
  MAX_PAGE,
  type RuntimeInfo,
  type TranscriptEntry,
  type Worker,
  type WorkerStatus
} from "./Domain.js"
import { makeEchoEngine } from "./EchoEngine.js"
import { InvalidInput, Unavailable, UnknownWorker } from "./Errors.js"
import { makeIdGenerator } from "./Ids.js"
import { MemoryStoreLive } from "./MemoryStore.js"
import { Runtime, type RuntimeService } from "./Runtime.js"
import {
  DEFAULT_MAX_INPUT_BYTES,
  DEFAULT_MAX_WORKERS,
  RuntimeControl,
  type RuntimeControlService,
  type RuntimeOptions
} from "./RuntimeControl.js"
import { RuntimeStore, type StoreError } from "./RuntimeStore.js"
import { exceedsBytes, reasonOf, validate } from "./Validation.js"
import { VERSION } from "./version.js"
import { type Profiles, type TurnContext, TurnFailed, type WorkerEngine } from "./WorkerEngine.js"

interface Slot {
  worker: Worker
  readonly engine: WorkerEngine | undefined
  lock: Effect.Semaphore | undefined
  /** The fiber of the turn in flight; whoever ends the turn under the lock takes it. */
  fiber: Fiber.RuntimeFiber<void> | undefined
}

/** A result, and the fiber of the turn it ended (to interrupt once the lock is released). */
type Ending<A> = readonly [A, Fiber.RuntimeFiber<void> | undefined]

const ending = <A>(result: A, fiber: Fiber.RuntimeFiber<void> | undefined): Ending<A> => [result, fiber]
const notEnding = <A>(result: A): Ending<A> => [result, undefined]

/** How often an interrupt is sent again to a turn that has not ended yet. */
const INTERRUPT_RESEND_MS = 250

const defaultProfiles: Profiles = { default: makeEchoEngine() }
const EMPTY_METADATA: Worker["metadata"] = {}
const STORE_RETRY_MS = 1000

const nowIso = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms).toISOString())

const unavailable = (error: StoreError) =>
  new Unavailable({ message: `store failure: ${error.message}`, retryAfterMs: STORE_RETRY_MS })

const withReason = (what: string, reason: string | undefined) =>
  reason === undefined || reason === "" ? what : `${what}: ${reason}`

const failureMessage = (cause: Cause.Cause<TurnFailed>): TurnFailed => {
  const failure = Cause.failureOption(cause)
  if (failure._tag === "Some") return failure.value
  return new TurnFailed({ message: `engine defect: ${Cause.pretty(cause).split("\n")[0]}` })
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
    const maxPage = Math.min(options.maxTranscriptPage ?? MAX_PAGE, MAX_PAGE)
    const graceMs = options.shutdownGraceMs ?? 0
    const displayName = options.displayName ?? null

    const runtimeId = yield* store.runtimeId(options.runtimeId, () => makeIdGenerator().next())
    const startedAt = yield* nowIso
    const loaded = yield* store.loadWorkers
    const ids = makeIdGenerator(loaded.length > 0 ? loaded[loaded.length - 1]!.id : undefined)

    const slots = new Map<string, Slot>()
    const counts: Record<WorkerStatus, number> = { idle: 0, busy: 0, stopped: 0, failed: 0 }
    let reserved = 0
    let draining = false
    // Turn fibers not yet ended, including ones already interrupted.
    const turnFibers = new Set<Fiber.RuntimeFiber<void>>()

    for (const worker of loaded) {
      slots.set(worker.id, { worker, engine: engineOf(worker.profile), lock: undefined, fiber: undefined })
      counts[worker.status]++
    }

    // --- state changes ---------------------------------------------------------

    const locked = <A, E>(slot: Slot, effect: Effect.Effect<A, E>): Effect.Effect<A, E> => {
      const lock = slot.lock ??= Effect.unsafeMakeSemaphore(1)
      // The wait is interruptible; the change itself is not, so a caller that
      // goes away never leaves a commit half-applied in memory.
      return lock.withPermits(1)(Effect.uninterruptible(effect))
    }

    // Opened when draining and no turn is left in flight.
    const turnsDone = yield* Effect.makeLatch(false)
    // Workers whose turn is being started (its input commit in progress):
    // drain must wait for them too, or a turn could start after its snapshot.
    const starting = new Set<Slot>()
    const noTurnsLeft = () => counts.busy === 0 && starting.size === 0

    /** Makes a committed change visible in memory. */
    const apply = (slot: Slot, next: Worker): Worker => {
      counts[slot.worker.status]--
      counts[next.status]++
      slot.worker = next
      if (draining && noTurnsLeft()) turnsDone.unsafeOpen()
      return next
    }

    const commitRaw = (slot: Slot, next: Worker, entries: ReadonlyArray<TranscriptEntry>) =>
      Effect.map(store.commit(next, entries), () => apply(slot, next))

    const commit = (slot: Slot, next: Worker, entries: ReadonlyArray<TranscriptEntry>) =>
      Effect.mapError(commitRaw(slot, next, entries), unavailable)

    /**
     * Interrupts a turn's fiber and waits until it has ended, sending the
     * interrupt again until it has. Effect 3 can lose an interrupt: one that
     * arrives while a scope finalizer runs is erased when a later-registered
     * `Effect.addFinalizer` finalizer restores the fiber's FiberRefs (a child
     * process has two). A daemon does it, so that a caller that goes away
     * cannot leave a turn running with its interrupt lost.
     */
    const interruptTurn = (fiber: Fiber.RuntimeFiber<void>) =>
      Effect.forkDaemon(
        Effect.gen(function*() {
          for (;;) {
            yield* Fiber.interruptFork(fiber)
            const ended = yield* Effect.timeout(Fiber.await(fiber), INTERRUPT_RESEND_MS).pipe(Effect.option)
            if (ended._tag === "Some") return
          }
          // Real time: the resend is a safety net, not part of a turn's logic.
        }).pipe(Effect.interruptible, Effect.withClock(Clock.make()))
      ).pipe(Effect.flatMap(Fiber.join))

    /**
     * Records why the Worker's turn ended (a `runtime` entry) and moves it to
     * `status`, under the lock; the turn's own writes then find it is no longer
     * current. Returns the turn's fiber for the caller to interrupt *after*
     * the lock is released: waiting for a turn while holding the lock the turn
     * may be waiting for is a deadlock.
     */
    const endTurnRaw = (slot: Slot, status: WorkerStatus, content: string, patch?: Partial<Worker>) =>
      Effect.gen(function*() {
        const at = yield* nowIso
        const worker = slot.worker
        const entry: TranscriptEntry = { seq: worker.lastSeq + 1, at, role: "runtime", content, turn: worker.turn }
        const next = yield* commitRaw(slot, { ...worker, ...patch, status, lastSeq: entry.seq, updatedAt: at }, [entry])
        const fiber = slot.fiber
        slot.fiber = undefined
        return ending(next, fiber)
      })

    const endTurn = (slot: Slot, status: WorkerStatus, content: string, patch?: Partial<Worker>) =>
      Effect.mapError(endTurnRaw(slot, status, content, patch), unavailable)

    /** Runs `end` (which may end the turn) under the lock, then interrupts the ended turn outside it. */
    const endingTurn = <A, E>(
      slot: Slot,
      end: Effect.Effect<Ending<A>, E>
    ): Effect.Effect<A, E> =>
      Effect.flatMap(locked(slot, end), ([result, fiber]) =>
        fiber === undefined ? Effect.succeed(result) : Effect.as(interruptTurn(fiber), result))

    const lookup = (workerId: string): Effect.Effect<Slot, UnknownWorker> => {
      const slot = slots.get(workerId)
      return slot === undefined
        ? Effect.fail(new UnknownWorker({ workerId, message: `no Worker ${JSON.stringify(workerId)}` }))
        : Effect.succeed(slot)
    }

    // --- turns -----------------------------------------------------------------

    const isCurrentTurn = (slot: Slot, turn: number) =>
      slot.worker.status === "busy" && slot.worker.turn === turn

    const emit = (slot: Slot, turn: number) => (content: string) =>
      locked(
        slot,
        Effect.gen(function*() {
          // A turn that lost its Worker (cancelled, stopped) must not write.
          if (!isCurrentTurn(slot, turn)) return yield* Effect.interrupt
          const at = yield* nowIso
          const worker = slot.worker
          const entry: TranscriptEntry = { seq: worker.lastSeq + 1, at, role: "worker", content, turn }
          yield* commit(slot, { ...worker, lastSeq: entry.seq, updatedAt: at }, [entry])
        })
      ).pipe(Effect.mapError((error) => new TurnFailed({ message: error.message })))

    const finishTurn = (slot: Slot, turn: number, outputs: ReadonlyArray<string>, failure: TurnFailed | undefined) =>
      locked(
        slot,
        Effect.gen(function*() {
          if (!isCurrentTurn(slot, turn)) return
          const at = yield* nowIso
          const worker = slot.worker
          const entries: Array<TranscriptEntry> = []
          let seq = worker.lastSeq
          for (const content of outputs) entries.push({ seq: ++seq, at, role: "worker", content, turn })
          if (failure !== undefined) {
            entries.push({ seq: ++seq, at, role: "runtime", content: withReason("failed", failure.message), turn })
          }
          const status: WorkerStatus = failure?.fatal === true ? "failed" : "idle"
          slot.fiber = undefined
          yield* commit(slot, { ...worker, status, lastSeq: seq, updatedAt: at }, entries).pipe(
            Effect.catchAll((error) =>
              // The store refused the end of the turn. Free the Worker in memory
              // anyway (a durable store shows it busy, which recovery repairs on
              // the next start) rather than leave it busy forever.
              Effect.logError("could not record the end of a turn", error).pipe(
                Effect.zipRight(Effect.sync(() => apply(slot, { ...slot.worker, status: "idle" })))
              )
            )
          )
        })
      )

    const runTurn = (slot: Slot, engine: WorkerEngine, context: TurnContext) =>
      engine.run(context).pipe(
        Effect.matchCauseEffect({
          onSuccess: (outputs) => finishTurn(slot, context.turn, outputs ?? [], undefined),
          // Interruption is recorded by whoever interrupted.
          onFailure: (cause) =>
            Cause.isInterruptedOnly(cause)
              ? Effect.void
              : finishTurn(slot, context.turn, [], failureMessage(cause))
        })
      )

    const transcriptOf = (workerId: string) =>
      Effect.gen(function*() {
        const out: Array<TranscriptEntry> = []
        for (;;) {
          const page = yield* store.transcript(workerId, out.length, MAX_PAGE)
          out.push(...page)
          if (page.length < MAX_PAGE) return out
        }
      }).pipe(Effect.mapError((error) => new TurnFailed({ message: error.message })))

    // --- the service -----------------------------------------------------------

    const drainingError = () =>
      new Unavailable({ message: "the runtime is draining", retryAfterMs: Math.max(graceMs, STORE_RETRY_MS) })

    const runtime: RuntimeService = {
      info: Effect.sync((): RuntimeInfo => ({
        runtimeId,
        displayName,
        version: VERSION,
        status: draining ? "draining" : "running",
        store: store.kind,
        startedAt,
        profiles: profileNames,
        workers: {
          total: slots.size,
          idle: counts.idle,
          busy: counts.busy,
          stopped: counts.stopped,
          failed: counts.failed
        },
        limits: { maxWorkers, maxInputBytes, maxTranscriptPage: maxPage }
      })),

      list: (query) =>
        Effect.gen(function*() {
          const { after, limit = Math.min(DEFAULT_PAGE, maxPage), status } = yield* validate.list(query)
          if (limit > maxPage) {
            return yield* new InvalidInput({ message: `limit must be at most ${maxPage}` })
          }
          const workers = yield* Effect.mapError(store.listWorkers({ after, limit: limit + 1, status }), unavailable)
          const page = workers.length > limit ? workers.slice(0, limit) : workers
          return { workers: page, nextAfter: workers.length > limit ? page[page.length - 1]!.id : null }
        }),

      get: (workerId) => Effect.map(lookup(workerId), (slot) => slot.worker),

      create: (request) =>
        Effect.gen(function*() {
          const { metadata, profile = "default" } = yield* validate.create(request)
          const engine = engineOf(profile)
          if (engine === undefined) {
            return yield* new InvalidInput({
              message: `unknown profile ${JSON.stringify(profile)}; configured: ${profileNames.join(", ")}`
            })
          }
          if (draining) return yield* drainingError()
          if (slots.size - counts.stopped + reserved >= maxWorkers) {
            return yield* new Unavailable({
              message: `at capacity: ${maxWorkers} Workers not stopped`,
              retryAfterMs: STORE_RETRY_MS
            })
          }
          // Reserve the place before the (possibly asynchronous) insert so that
          // concurrent creates cannot overshoot the capacity.
          reserved++
          const at = yield* nowIso
          const worker: Worker = {
            id: ids.next(),
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
            Effect.mapError(unavailable),
            Effect.map(() => {
              slots.set(worker.id, { worker, engine, lock: undefined, fiber: undefined })
              counts.idle++
              return worker
            }),
            Effect.ensuring(Effect.sync(() => reserved--))
          )
        }).pipe(Effect.uninterruptible),

      input: (workerId, input) =>
        Effect.gen(function*() {
          const { content, kind = "user" } = yield* validate.input(input)
          const slot = yield* lookup(workerId)
          if (exceedsBytes(content, maxInputBytes)) {
            return yield* new InvalidInput({ message: `content exceeds ${maxInputBytes} UTF-8 bytes` })
          }
          if (draining) return yield* drainingError()
          yield* admitInput(slot.worker, slot.engine, kind)
          return yield* locked(
            slot,
            Effect.gen(function*() {
              // Checked again under the lock: this is the one place a turn starts.
              if (draining) return yield* drainingError()
              const engine = yield* admitInput(slot.worker, slot.engine, kind)
              starting.add(slot)
              const at = yield* nowIso
              const current = slot.worker
              const turn = current.turn + 1
              const entry: TranscriptEntry = { seq: current.lastSeq + 1, at, role: kind, content, turn }
              const worker = yield* commit(
                slot,
                { ...current, status: "busy", turn, lastSeq: entry.seq, updatedAt: at },
                [entry]
              )
              const context: TurnContext = {
                runtimeId,
                workerId,
                profile: worker.profile,
                turn,
                input: { content, kind },
                emit: emit(slot, turn),
                transcript: transcriptOf(workerId)
              }
              // A daemon: the turn outlives the request that started it. Forked
              // from this uninterruptible region, it must be made interruptible.
              const fiber = yield* Effect.forkDaemon(Effect.interruptible(runTurn(slot, engine, context)))
              slot.fiber = fiber
              turnFibers.add(fiber)
              fiber.addObserver(() => turnFibers.delete(fiber))
              return { worker, entry }
            }).pipe(Effect.ensuring(Effect.sync(() => {
              starting.delete(slot)
              if (draining && noTurnsLeft()) turnsDone.unsafeOpen()
            })))
          )
        }),

      cancel: (workerId, request) =>
        Effect.gen(function*() {
          const reason = yield* reasonOf(request)
          const slot = yield* lookup(workerId)
          const refusal = refuseCancel(slot.worker, slot.engine)
          if (refusal !== undefined) return yield* refusal
          return yield* endingTurn(
            slot,
            Effect.gen(function*() {
              const refusal = refuseCancel(slot.worker, slot.engine)
              if (refusal !== undefined) return yield* refusal
              if (slot.worker.status !== "busy") {
                return notEnding<CancelResult>({ worker: slot.worker, cancelled: false })
              }
              const [worker, fiber] = yield* endTurn(slot, "idle", withReason("cancelled", reason))
              return ending<CancelResult>({ worker, cancelled: true }, fiber)
            })
          )
        }),

      stop: (workerId, request) =>
        Effect.gen(function*() {
          const reason = yield* reasonOf(request)
          const slot = yield* lookup(workerId)
          return yield* endingTurn(
            slot,
            Effect.suspend(() =>
              slot.worker.status === "stopped"
                ? Effect.succeed(notEnding(slot.worker))
                : endTurn(slot, "stopped", withReason("stopped", reason), { stopReason: reason ?? "stopped" })
            )
          )
        }),

      transcript: (workerId, query) =>
        Effect.gen(function*() {
          const { after = 0, limit = Math.min(DEFAULT_PAGE, maxPage) } = yield* validate.transcript(query)
          if (limit > maxPage) {
            return yield* new InvalidInput({ message: `limit must be at most ${maxPage}` })
          }
          const slot = yield* lookup(workerId)
          const entries = yield* Effect.mapError(store.transcript(workerId, after, limit), unavailable)
          const last = entries[entries.length - 1]
          // The store may be a commit ahead of memory, never behind.
          const lastSeq = Math.max(slot.worker.lastSeq, last?.seq ?? 0)
          return { workerId, entries, nextAfter: last !== undefined && last.seq < lastSeq ? last.seq : null, lastSeq }
        })
    }

    // --- start and stop ----------------------------------------------------------

    // Turns in flight when the process died: record them and free the Worker.
    // A store that cannot record this fails the start: better no Runtime than
    // one that shows Workers busy forever.
    for (const slot of slots.values()) {
      if (slot.worker.status === "busy") yield* endTurnRaw(slot, "idle", "interrupted by restart")
    }

    const busySlots = () => [
      ...starting,
      ...Array.from(slots.values()).filter((slot) => slot.worker.status === "busy" && !starting.has(slot))
    ]

    const waitForTurns = Effect.suspend(() => {
      if (noTurnsLeft()) turnsDone.unsafeOpen()
      // Drain also runs as a scope finalizer, which is uninterruptible: the
      // wait must be made interruptible or the timeout could never cut it.
      return Effect.timeoutOption(Effect.interruptible(turnsDone.await), graceMs)
    })

    const interruptAll = Effect.suspend(() =>
      Effect.forEach(
        busySlots(),
        (slot) =>
          // The lock waits out a turn that is still starting.
          endingTurn(
            slot,
            Effect.suspend(() =>
              slot.worker.status === "busy"
                ? endTurn(slot, "idle", "interrupted: the runtime shut down")
                : Effect.succeed(notEnding<Worker | undefined>(undefined))
            )
          ).pipe(Effect.catchAll((error) => Effect.logError("could not record an interrupted turn", error))),
        { concurrency: "unbounded", discard: true }
      )
    )

    const drainOnce = yield* Effect.cached(
      Effect.gen(function*() {
        draining = true
        if (graceMs > 0) yield* waitForTurns
        yield* interruptAll
        // Turns already ended by cancel or stop may still be releasing (a child being killed).
        yield* Effect.forEach(turnFibers, interruptTurn, { concurrency: "unbounded", discard: true })
      })
    )
    yield* Effect.addFinalizer(() => drainOnce)

    return { runtime, control: { drain: drainOnce } }
  })

/** `Runtime` and `RuntimeControl` over the `RuntimeStore` in context (e.g. the SQLite store). */
export const RuntimeFromStore = (
  options: RuntimeOptions = {}
): Layer.Layer<Runtime | RuntimeControl, StoreError, RuntimeStore> =>
  Layer.scopedContext(
    Effect.map(makeRuntime(options), ({ control, runtime }) =>
      Context.make(Runtime, runtime).pipe(Context.add(RuntimeControl, control)))
  )

/** A ready Runtime on a fresh memory store: what an embedding Backend provides. */
export const RuntimeLive = (options: RuntimeOptions = {}): Layer.Layer<Runtime | RuntimeControl> =>
  RuntimeFromStore(options).pipe(
    Layer.provide(MemoryStoreLive),
    // The memory store cannot fail; this only narrows the type.
    Layer.orDie
  )

/**
 * Turns: a turn is a fiber running its engine. Every change of a Worker's
 * turns (one starts, one ends, one ends and the next starts) is one
 * `transition`: one commit under the Worker's lock, with the `runtime` entry
 * that closes a turn (its `outcome`), the input entry that opens the next,
 * both turn records and the queue. The turn writes its output through the
 * same lock and only while it is still current; whoever ends it from outside
 * (cancel, stop, a new input that interrupts, shutdown) records the end
 * first and interrupts the fiber after releasing the lock.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type { InputKind, TranscriptEntry, Turn, TurnOutcome, Worker, WorkerStatus } from "./Domain.js"
import * as Metrics from "./Metrics.js"
import { MAX_PAGE } from "./RuntimeOptions.js"
import type { QueuedRef, RuntimeStoreService, StoreError } from "./RuntimeStore.js"
import { failureReason, forEachChunkInFiber, type TurnContext, TurnFailed, type WorkerEngine } from "./WorkerEngine.js"
import type { OutputBuffer, Slot, WorkerTable } from "./WorkerTable.js"

/** How often an interrupt is sent again to a turn that has not ended yet. */
const INTERRUPT_RESEND_MS = 250
/** Lines a turn may have waiting for a commit before its emits wait. */
const OUTPUT_HIGH_WATER = 4096

export const nowIso = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms).toISOString())

/** "what" or "what: reason". */
export const withReason = (what: string, reason: string | undefined) =>
  reason === undefined || reason === "" ? what : `${what}: ${reason}`

/** The `TurnFailed` a failed turn records: the engine's own, or a defect described. */
export const turnFailureOf = (cause: Cause.Cause<TurnFailed>): TurnFailed => {
  const failure = Cause.failureOption(cause)
  if (failure._tag === "Some") return failure.value
  return new TurnFailed({ message: `engine defect: ${Cause.pretty(cause).split("\n")[0]}` })
}

/** A result, and the fiber of the turn it ended (to interrupt once the lock is released). */
export type Ending<A> = readonly [A, Fiber.RuntimeFiber<void> | undefined]

export const ending = <A>(result: A, fiber: Fiber.RuntimeFiber<void> | undefined): Ending<A> => [result, fiber]
export const notEnding = <A>(result: A): Ending<A> => [result, undefined]

export interface TurnInput {
  readonly content: string
  readonly kind: InputKind
}

/** How the turn in flight ends, as its `runtime` entry says. */
export interface TurnEnd {
  readonly outcome: TurnOutcome
  /** Why, for the entry's content and the turn record; none for `completed` or a plain stop. */
  readonly reason: string | undefined
}

/** One change of a Worker's turns, committed at once. */
export interface Transition {
  /** The turn's own last lines (a turn that ends on its own), recorded before its end. */
  readonly lines?: ReadonlyArray<string> | undefined
  /** End the turn in flight (or, on an idle Worker, record a `runtime` entry that closes no turn). */
  readonly end?: TurnEnd | undefined
  /** The status unless a new turn starts. */
  readonly status: WorkerStatus
  readonly patch?: Partial<Worker> | undefined
  /** Drop every queued input; the end entry says how many. */
  readonly dropQueue?: boolean | undefined
  /** Start a turn now: with this input, or with the head of the queue (if any). */
  readonly next?: TurnInput | "queued" | undefined
}

export interface TransitionResult {
  readonly worker: Worker
  /** The input entry of the turn that started, if one did. */
  readonly started: TranscriptEntry | undefined
}

export interface Turns {
  /** Under the lock: the transition, committed; returns the fiber of the turn it ended, to interrupt after. */
  readonly transition: (slot: Slot, transition: Transition) => Effect.Effect<Ending<TransitionResult>, StoreError>
  /** Runs `effect` (which may end a turn) under the lock, then interrupts the turn it ended, outside it. */
  readonly ending: <A, E>(slot: Slot, effect: Effect.Effect<Ending<A>, E>) => Effect.Effect<A, E>
  /** Interrupts every turn fiber not yet ended (those already ended from outside included) and waits. */
  readonly interruptAll: Effect.Effect<void>
}

const plural = (count: number, what: string) => `${count} ${what}${count === 1 ? "" : "s"}`

const endContent = (end: TurnEnd, dropped: number) => {
  const base = withReason(end.outcome, end.reason)
  return dropped === 0 ? base : `${base} (${plural(dropped, "queued input")} dropped)`
}

export const makeTurns = (
  store: RuntimeStoreService,
  table: WorkerTable,
  runtimeId: string,
  /** False while draining: queued inputs then wait (for the restart, on a durable store). */
  mayStartQueued: () => boolean,
  /** A span per turn. */
  tracing = false
): Turns => {
  // Turn fibers not yet ended, ones already interrupted included.
  const fibers = new Set<Fiber.RuntimeFiber<void>>()

  const isCurrentTurn = (slot: Slot, turn: number) =>
    !slot.deleted && slot.worker.status === "busy" && slot.worker.turn === turn

  /**
   * Interrupts a turn's fiber and waits until it has ended, sending the
   * interrupt again until it has. Effect 3 can lose an interrupt: one that
   * arrives while a scope finalizer runs is erased when a later-registered
   * `Effect.addFinalizer` finalizer restores the fiber's FiberRefs (a child
   * process has two). A daemon does it, so that a caller that goes away
   * cannot leave a turn running with its interrupt lost.
   */
  const interrupt = (fiber: Fiber.RuntimeFiber<void>) =>
    Effect.forkDaemon(
      Effect.gen(function*() {
        for (;;) {
          yield* Fiber.interruptFork(fiber)
          const ended = yield* Effect.option(Effect.timeout(Fiber.await(fiber), INTERRUPT_RESEND_MS))
          if (ended._tag === "Some") return
        }
        // Real time: the resend is a safety net, not part of a turn's logic.
      }).pipe(Effect.interruptible, Effect.withClock(Clock.make()))
    ).pipe(Effect.flatMap(Fiber.join))

  // --- output ----------------------------------------------------------------

  /**
   * Output is committed in batches: an emit only queues its line, and one
   * commit at a time takes every line queued when it starts. A flood of lines
   * costs few commits, and cancel or stop waits for at most one of them.
   */
  const flush = (slot: Slot, buffer: OutputBuffer): Effect.Effect<void> =>
    table.locked(slot, flushLocked(slot, buffer)).pipe(
      Effect.flatMap((more) => (more ? flush(slot, buffer) : Effect.void))
    )

  /** One commit of the queued lines; true when more came meanwhile (for the next, after the lock is released). */
  const flushLocked = Effect.fnUntraced(function*(slot: Slot, buffer: OutputBuffer) {
    if (!isCurrentTurn(slot, buffer.turn) || buffer.lines.length === 0 || buffer.failure !== undefined) {
      // Decided synchronously, so an emit cannot slip its line in between.
      buffer.flushing = false
      buffer.room.unsafeOpen()
      return false
    }
    const lines = buffer.lines.splice(0)
    buffer.room.unsafeOpen()
    const at = yield* nowIso
    const worker = slot.worker
    let seq = worker.lastSeq
    const entries = lines.map((content): TranscriptEntry => ({
      seq: ++seq,
      at,
      role: "worker",
      content,
      turn: buffer.turn
    }))
    yield* table.commit(slot, { worker: { ...worker, lastSeq: seq, updatedAt: at }, entries }).pipe(
      Effect.catchAll((error) => Effect.sync(() => (buffer.failure = error.message)))
    )
    // Nothing came meanwhile (the common case for a turn that prints now and
    // then): done, without taking the lock again to find that out.
    if (buffer.lines.length === 0 || buffer.failure !== undefined) {
      buffer.flushing = false
      // An emit waiting for room fails now (the commit failed) instead of waiting for ever.
      buffer.room.unsafeOpen()
      return false
    }
    return true
  })

  const emit = (slot: Slot, turn: number) => (content: string): Effect.Effect<void, TurnFailed> =>
    Effect.suspend(() => {
      // A turn that lost its Worker (cancelled, stopped) must not write.
      if (!isCurrentTurn(slot, turn)) return Effect.interrupt
      let buffer = slot.output
      if (buffer === undefined || buffer.turn !== turn) {
        buffer = { turn, lines: [], flushing: false, room: Effect.unsafeMakeLatch(true), failure: undefined }
        slot.output = buffer
      }
      if (buffer.failure !== undefined) return Effect.fail(new TurnFailed({ message: buffer.failure }))
      buffer.lines.push(content)
      const full = buffer.lines.length >= OUTPUT_HIGH_WATER
      if (full) buffer.room.unsafeClose()
      const wait = full ? buffer.room.await : Effect.void
      if (buffer.flushing) return wait
      buffer.flushing = true
      // A daemon: the commit completes even if the turn is interrupted meanwhile.
      return Effect.zipRight(Effect.forkDaemon(flush(slot, buffer)), wait)
    })

  /** Every entry of the transcript so far, for engines that read it. */
  const transcriptOf = (slot: Slot) =>
    Effect.gen(function*() {
      const out: Array<TranscriptEntry> = []
      for (;;) {
        const page = yield* store.transcript(slot.worker.id, { after: out.length, limit: MAX_PAGE })
        out.push(...page)
        if (page.length === 0) return out
      }
    }).pipe(Effect.mapError((error) => new TurnFailed({ message: error.message })))

  // --- a turn's own end ------------------------------------------------------

  /** The turn ends on its own: its last lines and its end in one commit, then the next queued turn. */
  const finish = (slot: Slot, turn: number, outputs: ReadonlyArray<string>, failure: TurnFailed | undefined) =>
    Effect.flatMap(
      table.locked(
        slot,
        Effect.suspend(() => {
          if (!isCurrentTurn(slot, turn)) return Effect.succeed(notEnding<TransitionResult | undefined>(undefined))
          const fatal = failure?.fatal === true
          const warn = failure === undefined ? Effect.void : Effect.logWarning("turn failed").pipe(
            // The reason, but not its detail: it may echo input content.
            Effect.annotateLogs({
              workerId: slot.worker.id,
              turn,
              reason: failure.message.slice(0, 200),
              fatal
            })
          )
          return Effect.zipRight(
            warn,
            transition(slot, {
              lines: outputs,
              end: failure === undefined
                ? { outcome: "completed", reason: undefined }
                : { outcome: "failed", reason: failureReason(failure) },
              status: fatal ? "failed" : "idle",
              // A failed Worker takes no more turns: its queue is dropped.
              dropQueue: fatal,
              next: fatal ? undefined : "queued"
            })
          ).pipe(
            Effect.catchAll((error) =>
              // The store refused the end of the turn. Free the Worker in memory
              // anyway (a durable store shows it busy, which recovery repairs on
              // the next start) rather than leave it busy forever.
              Effect.logError("could not record the end of a turn", error).pipe(
                Effect.zipRight(Effect.sync(() => {
                  slot.fiber = undefined
                  slot.output = undefined
                  table.apply(slot, { ...slot.worker, status: "idle" })
                  return notEnding<TransitionResult | undefined>(undefined)
                }))
              )
            )
          )
        })
      ),
      // The fiber it ended is this one: nothing to interrupt.
      () => Effect.void
    )

  const run = (slot: Slot, engine: WorkerEngine, context: TurnContext) => {
    const write = emit(slot, context.turn)
    // Each Line through `emit` (batched commits, backpressure); deltas are not recorded.
    return forEachChunkInFiber(
      engine.run(context),
      (outputs) =>
        Effect.forEach(outputs, (output) => output._tag === "Line" ? write(output.content) : Effect.void, {
          discard: true
        })
    ).pipe(
      Effect.matchCauseEffect({
        onSuccess: () => finish(slot, context.turn, [], undefined),
        // Interruption is recorded by whoever interrupted.
        onFailure: (cause) =>
          Cause.isInterruptedOnly(cause) ? Effect.void : finish(slot, context.turn, [], turnFailureOf(cause))
      })
    )
  }

  /** Forks the fiber of the turn `slot.worker.turn`, just committed. Under the lock. */
  const start = (slot: Slot, engine: WorkerEngine, input: TurnInput) =>
    Effect.gen(function*() {
      const { id: workerId, profile, turn } = slot.worker
      const context: TurnContext = {
        runtimeId,
        workerId,
        profile,
        turn,
        input,
        transcript: transcriptOf(slot)
      }
      // A daemon: the turn outlives the request that started it. Forked from
      // the lock's uninterruptible region, it must be made interruptible.
      const turnRun = run(slot, engine, context)
      const fiber = yield* Effect.forkDaemon(Effect.interruptible(
        tracing ? Effect.withSpan(turnRun, "turn", { attributes: { workerId, turn, profile } }) : turnRun
      ))
      slot.fiber = fiber
      fibers.add(fiber)
      fiber.addObserver(() => fibers.delete(fiber))
    })

  // --- transitions -----------------------------------------------------------

  // Defined once (Effect.fnUntraced), not a generator function per call: see createNew in RuntimeLive.
  const transition: (slot: Slot, change: Transition) => Effect.Effect<Ending<TransitionResult>, StoreError> = Effect
    .fnUntraced(function*(slot: Slot, change: Transition) {
      const at = yield* nowIso
      const current = slot.worker
      const busy = current.status === "busy"
      const entries: Array<TranscriptEntry> = []
      const turns: Array<Turn> = []
      let seq = current.lastSeq
      let closed: Turn | undefined
      const add = (entry: Omit<TranscriptEntry, "seq" | "at">) => {
        const full: TranscriptEntry = { ...entry, seq: ++seq, at }
        entries.push(full)
        return full
      }

      // The turn's output that no commit took yet, then its own last lines.
      if (busy) {
        const queued = slot.output?.turn === current.turn ? slot.output.lines.splice(0) : []
        for (const content of [...queued, ...(change.lines ?? [])]) {
          add({ role: "worker", content, turn: current.turn })
        }
      }
      const dropped = change.dropQueue === true ? slot.queue : []
      if (change.end !== undefined) {
        // On an idle Worker (a stop) the entry closes no turn: turn 0.
        const entry = add({
          role: "runtime",
          content: endContent(change.end, dropped.length),
          turn: busy ? current.turn : 0,
          outcome: change.end.outcome
        })
        if (busy && slot.latest !== undefined) {
          closed = {
            ...slot.latest.record,
            status: change.end.outcome,
            lastSeq: entry.seq,
            endedAt: at,
            reason: change.end.reason ?? null
          }
          turns.push(closed)
        }
      }

      const remaining = change.dropQueue === true ? [] : slot.queue
      const fromQueue: QueuedRef | undefined = change.next === "queued" && mayStartQueued()
        ? remaining[0]
        : undefined
      // A queued input's content waits in the store until its turn starts.
      const nextInput: TurnInput | undefined = change.next === "queued"
        ? fromQueue === undefined
          ? undefined
          : { content: yield* store.queuedContent(current.id, fromQueue.id), kind: fromQueue.kind }
        : change.next
      const engine = slot.engine
      const starts = nextInput !== undefined && engine !== undefined
      const dequeue = [...dropped.map((input) => input.id), ...(starts && fromQueue ? [fromQueue.id] : [])]
      const queue = remaining.filter((input) => !(starts && input === fromQueue))

      let started: TranscriptEntry | undefined
      let worker: Worker
      if (starts) {
        const turn = current.turn + 1
        started = add({ role: nextInput.kind, content: nextInput.content, turn })
        turns.push({
          workerId: current.id,
          turn,
          status: "running",
          inputSeq: started.seq,
          lastSeq: started.seq,
          startedAt: at,
          endedAt: null,
          reason: null
        })
        worker = {
          ...current,
          ...change.patch,
          status: "busy",
          turn,
          lastSeq: seq,
          updatedAt: at,
          queued: queue.length
        }
      } else {
        worker = {
          ...current,
          ...change.patch,
          status: change.status,
          lastSeq: seq,
          updatedAt: at,
          queued: queue.length
        }
      }

      yield* table.commit(slot, {
        worker,
        entries,
        turns,
        ...(dequeue.length > 0 ? { dequeue } : {})
      })

      // Committed: now memory follows.
      slot.queue = queue
      const ended = busy ? slot.fiber : undefined
      if (busy) {
        slot.fiber = undefined
        // Output the ended turn queued after this commit took its lines is dropped with it.
        slot.output = undefined
        if (closed !== undefined && slot.latest !== undefined) {
          slot.latest.record = closed
          slot.latest.ended.unsafeOpen()
          const outcome = [Metrics.label("outcome", closed.status)]
          Metrics.turnsEnded.unsafeUpdate(1, outcome)
          Metrics.turnDuration.unsafeUpdate((Date.parse(at) - Date.parse(closed.startedAt)) / 1000, outcome)
        }
      }
      if (starts) {
        Metrics.turnsStarted.unsafeUpdate(1, [])
        slot.latest = { record: turns[turns.length - 1]!, ended: Effect.unsafeMakeLatch(false) }
        yield* start(slot, engine, nextInput)
      }
      return ending<TransitionResult>({ worker, started }, ended)
    })

  return {
    transition,
    ending: (slot, effect) =>
      Effect.flatMap(
        table.locked(slot, effect),
        ([result, fiber]) => fiber === undefined ? Effect.succeed(result) : Effect.as(interrupt(fiber), result)
      ),
    interruptAll: Effect.suspend(() =>
      Effect.forEach(Array.from(fibers), interrupt, { concurrency: "unbounded", discard: true })
    )
  }
}

/**
 * Turns: a turn is a fiber running its engine. The turn writes through the
 * Worker's lock and only while it is still the Worker's current turn; whoever
 * ends it from outside (cancel, stop, shutdown) records the end under the
 * lock first and interrupts the fiber after releasing the lock.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type { InputKind, TranscriptEntry, Worker, WorkerStatus } from "./Domain.js"
import { MAX_PAGE } from "./RuntimeOptions.js"
import type { RuntimeStoreService, StoreError } from "./RuntimeStore.js"
import { type TurnContext, TurnFailed, type WorkerEngine } from "./WorkerEngine.js"
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

export interface Turns {
  /** Starts the turn `slot.worker.turn` (already committed as `busy`) on its own fiber. Under the lock. */
  readonly start: (slot: Slot, engine: WorkerEngine, input: TurnInput) => Effect.Effect<void>
  /**
   * Records why the Worker's turn ended (a `runtime` entry) and moves it to
   * `status`. Under the lock; the turn's own writes then find it is no
   * longer current. Returns the fiber to interrupt after the lock is released.
   */
  readonly end: (
    slot: Slot,
    status: WorkerStatus,
    content: string,
    patch?: Partial<Worker>
  ) => Effect.Effect<Ending<Worker>, StoreError>
  /** Runs `end` under the lock, then interrupts the turn it ended outside it. */
  readonly ending: <A, E>(slot: Slot, end: Effect.Effect<Ending<A>, E>) => Effect.Effect<A, E>
  /** Interrupts every turn fiber not yet ended (those already ended from outside included) and waits. */
  readonly interruptAll: Effect.Effect<void>
}

export const makeTurns = (
  store: RuntimeStoreService,
  table: WorkerTable,
  runtimeId: string
): Turns => {
  // Turn fibers not yet ended, ones already interrupted included.
  const fibers = new Set<Fiber.RuntimeFiber<void>>()

  const isCurrentTurn = (slot: Slot, turn: number) => slot.worker.status === "busy" && slot.worker.turn === turn

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

  /**
   * Output is committed in batches: an emit only queues its line, and one
   * commit at a time takes every line queued when it starts. A flood of lines
   * costs few commits, and cancel or stop waits for at most one of them.
   */
  const flush = (slot: Slot, buffer: OutputBuffer): Effect.Effect<void> =>
    table.locked(
      slot,
      Effect.gen(function*() {
        if (!isCurrentTurn(slot, buffer.turn) || buffer.lines.length === 0 || buffer.failure !== undefined) {
          // Decided under the lock, so an emit cannot slip its line in between.
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
        yield* table.commit(slot, { ...worker, lastSeq: seq, updatedAt: at }, entries).pipe(
          Effect.catchAll((error) => Effect.sync(() => (buffer.failure = error.message)))
        )
        return true
      })
    ).pipe(Effect.flatMap((more) => (more ? flush(slot, buffer) : Effect.void)))

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

  const finish = (slot: Slot, turn: number, outputs: ReadonlyArray<string>, failure: TurnFailed | undefined) =>
    table.locked(
      slot,
      Effect.gen(function*() {
        if (!isCurrentTurn(slot, turn)) return
        const at = yield* nowIso
        const worker = slot.worker
        const entries: Array<TranscriptEntry> = []
        let seq = worker.lastSeq
        // What the turn emitted and no commit has taken yet goes first.
        const queued = slot.output?.turn === turn ? slot.output.lines.splice(0) : []
        slot.output = undefined
        for (const content of queued) entries.push({ seq: ++seq, at, role: "worker", content, turn })
        for (const content of outputs) entries.push({ seq: ++seq, at, role: "worker", content, turn })
        if (failure !== undefined) {
          entries.push({ seq: ++seq, at, role: "runtime", content: withReason("failed", failure.message), turn })
        }
        const status: WorkerStatus = failure?.fatal === true ? "failed" : "idle"
        slot.fiber = undefined
        yield* table.commit(slot, { ...worker, status, lastSeq: seq, updatedAt: at }, entries).pipe(
          Effect.catchAll((error) =>
            // The store refused the end of the turn. Free the Worker in memory
            // anyway (a durable store shows it busy, which recovery repairs on
            // the next start) rather than leave it busy forever.
            Effect.logError("could not record the end of a turn", error).pipe(
              Effect.zipRight(Effect.sync(() => table.apply(slot, { ...slot.worker, status: "idle" })))
            )
          )
        )
      })
    )

  /** Every entry of the transcript so far, for engines that read it. */
  const transcriptOf = (workerId: string) =>
    Effect.gen(function*() {
      const out: Array<TranscriptEntry> = []
      for (;;) {
        const page = yield* store.transcript(workerId, { after: out.length, limit: MAX_PAGE })
        out.push(...page)
        if (page.length === 0) return out
      }
    }).pipe(Effect.mapError((error) => new TurnFailed({ message: error.message })))

  const run = (slot: Slot, engine: WorkerEngine, context: TurnContext) =>
    engine.run(context).pipe(
      Effect.matchCauseEffect({
        onSuccess: (outputs) => finish(slot, context.turn, outputs ?? [], undefined),
        // Interruption is recorded by whoever interrupted.
        onFailure: (cause) =>
          Cause.isInterruptedOnly(cause) ? Effect.void : finish(slot, context.turn, [], turnFailureOf(cause))
      })
    )

  const end: Turns["end"] = (slot, status, content, patch) =>
    Effect.gen(function*() {
      const at = yield* nowIso
      const worker = slot.worker
      const entry: TranscriptEntry = { seq: worker.lastSeq + 1, at, role: "runtime", content, turn: worker.turn }
      const next = yield* table.commit(slot, { ...worker, ...patch, status, lastSeq: entry.seq, updatedAt: at }, [
        entry
      ])
      const fiber = slot.fiber
      slot.fiber = undefined
      // Output the turn queued and no commit took is dropped with it.
      slot.output = undefined
      return ending(next, fiber)
    })

  return {
    start: (slot, engine, input) =>
      Effect.gen(function*() {
        const { id: workerId, profile, turn } = slot.worker
        const context: TurnContext = {
          runtimeId,
          workerId,
          profile,
          turn,
          input,
          emit: emit(slot, turn),
          transcript: transcriptOf(workerId)
        }
        // A daemon: the turn outlives the request that started it. Forked from
        // the lock's uninterruptible region, it must be made interruptible.
        const fiber = yield* Effect.forkDaemon(Effect.interruptible(run(slot, engine, context)))
        slot.fiber = fiber
        fibers.add(fiber)
        fiber.addObserver(() => fibers.delete(fiber))
      }),
    end,
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

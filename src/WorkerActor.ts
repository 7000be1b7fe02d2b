/**
 * The one owner of an active Worker: its state, its lock, its turn fiber,
 * the turn's output waiting for a commit, and its followers. Every command
 * is decided by `Worker.ts` under the lock and its plan applied in one step:
 * committed to the store first, then the new state becomes visible and
 * followers hear of it. A turn is a daemon fiber running the engine's
 * stream; whoever ends it from outside (cancel, stop, a new input that
 * interrupts, shutdown) records the end first and interrupts the fiber after
 * releasing the lock (docs/architecture.md).
 */
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import type * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import type * as MetricLabel from "effect/MetricLabel"
import * as Runtime from "effect/Runtime"
import type { TokenUsage, TranscriptEntry, Turn, Worker, WorkerEvent, WorkerStatus } from "./Domain.js"
import type { Unavailable } from "./Errors.js"
import { UnknownWorker } from "./Errors.js"
import { endListener, type Listener, makeListener, publish } from "./Followers.js"
import { interruptUntilDone } from "./Interrupt.js"
import { makeLock } from "./Lock.js"
import * as Metrics from "./Metrics.js"
import { MAX_PAGE } from "./RuntimeOptions.js"
import type { InputReceipt, RuntimeStoreService, StoreError } from "./RuntimeStore.js"
import {
  type Command,
  type Context,
  decideOutput,
  decideTurnEnd,
  isCurrent,
  mayDequeue,
  type Plan,
  type Refusal,
  type TurnInput,
  type WorkerState
} from "./Worker.js"
import {
  failureReason,
  forEachTurnChunk,
  readyOutput,
  type TurnContext,
  TurnFailed,
  type TurnOutput,
  type WorkerEngine
} from "./WorkerEngine.js"

/** Lines a turn may have waiting for a commit before the engine's stream is pulled again. */
const OUTPUT_HIGH_WATER = 4096

/**
 * One array per label set, made once: Effect finds a metric's hook by the
 * identity of its label array, and a fresh array per update builds and
 * hashes a new metric key every time (docs/benchmarks.md).
 */
const NO_LABELS: ReadonlyArray<MetricLabel.MetricLabel> = []

/** The label arrays of `make`'s label sets, by key; keys come from a few names (outcomes, profiles). */
const labelSets = (make: (key: string) => ReadonlyArray<MetricLabel.MetricLabel>) => {
  const made = new Map<string, ReadonlyArray<MetricLabel.MetricLabel>>()
  return (key: string) => {
    let labels = made.get(key)
    if (labels === undefined) {
      labels = make(key)
      made.set(key, labels)
    }
    return labels
  }
}

const outcomeLabels = labelSets((outcome) => [Metrics.label("outcome", outcome)])
const inputTokenLabels = labelSets((profile) => [
  Metrics.label("profile", profile),
  Metrics.label("direction", "input")
])
const outputTokenLabels = labelSets((profile) => [
  Metrics.label("profile", profile),
  Metrics.label("direction", "output")
])

/** A model turn's tokens, by profile and direction. */
const countTokens = (profile: string, usage: TokenUsage) => {
  Metrics.modelTokens.unsafeUpdate(usage.inputTokens, inputTokenLabels(profile))
  Metrics.modelTokens.unsafeUpdate(usage.outputTokens, outputTokenLabels(profile))
}

// The last instant formatted: inputs within one millisecond share it.
let lastMs = Number.NaN
let lastIso = ""

export const nowIso = Effect.map(Clock.currentTimeMillis, (ms) => {
  if (ms !== lastMs) {
    lastIso = new Date(ms).toISOString()
    lastMs = ms
  }
  return lastIso
})

/** The `TurnFailed` a failed turn records: the engine's own, or a defect described. */
const turnFailureOf = (cause: Cause.Cause<TurnFailed>): TurnFailed => {
  const failure = Cause.failureOption(cause)
  if (failure._tag === "Some") return failure.value
  return new TurnFailed({ message: `engine defect: ${Cause.pretty(cause).split("\n")[0]}` })
}

/** What every actor of one Runtime shares. */
export interface ActorEnv {
  readonly store: RuntimeStoreService
  readonly runtimeId: string
  readonly maxQueued: number
  readonly maxQueuedBytes: number
  /** A span per store commit and per turn. */
  readonly tracing: boolean
  /** The refusal of new turns while the Runtime drains, if it does. */
  readonly draining: () => Unavailable | undefined
  /** The refusal of new turns while the Worker moves to another runner of a cluster, if it does. */
  readonly moving: (workerId: string) => Unavailable | undefined
  /** A Worker's status changed (`undefined`: it was deleted). */
  readonly statusChanged: (from: WorkerStatus, to: WorkerStatus | undefined) => void
  /** The actor's Worker is being deleted: forget the actor, and answer for it as gone. */
  readonly forget: (actor: WorkerActor) => void
  /** The store's delete of the Worker is over (done, or failed: then it is stored still). */
  readonly deleted: (workerId: string) => void
  /** Turn fibers not yet ended, across Workers, ones already interrupted included (for shutdown). */
  readonly fibers: Set<Fiber.RuntimeFiber<void>>
  /** Open event streams changed by `by`. */
  readonly countStreams: (by: number) => void
  /** The Runtime closed its streams: a new follower ends at once. */
  readonly streamsClosed: () => boolean
}

/** Output a turn emitted that is not committed yet. */
interface OutputBuffer {
  readonly turn: number
  readonly lines: Array<string>
  /** Model text since the last line: one `worker` entry when a line comes or the turn ends. */
  text: string
  /** The tokens the engine reported last. */
  usage: TokenUsage | undefined
  /** A commit of these lines is on its way. */
  flushing: boolean
  /** Closed past the high-water mark, until there is room again; made the first time (most turns never fill). */
  room: Effect.Latch | undefined
  /** Why the last commit failed; the turn fails with it. */
  failure: string | undefined
}

type Decider<C extends Command, A, E extends Refusal> = (
  state: WorkerState,
  command: C,
  context: Context
) => Either.Either<Plan<A>, E>

/** A result, and the fiber of the turn it ended (to interrupt once the lock is released). */
type Ending<A> = readonly [A, Fiber.RuntimeFiber<void> | undefined]

export class WorkerActor {
  /** Calls in progress (the host does not passivate an actor in use). */
  users = 0
  /** When the host first saw it with nothing to do. */
  idleSince: number | undefined = undefined
  /** The host let it go: a new call activates a new actor. */
  passivated = false
  deleted = false
  private readonly lock = makeLock()
  private fiber: Fiber.RuntimeFiber<void> | undefined = undefined
  private output: OutputBuffer | undefined = undefined
  /** Opened when the running turn ends; made by its first waiter. */
  private ended: Effect.Latch | undefined = undefined
  private listeners: Set<Listener> | undefined = undefined

  constructor(
    private readonly env: ActorEnv,
    public state: WorkerState,
    /** The profile's engine; absent when the profile is no longer configured. */
    readonly engine: WorkerEngine | undefined
  ) {
  }

  get worker(): Worker {
    return this.state.worker
  }

  /** No call, no turn, no queue, no follower: the host may passivate it. */
  quiescent(): boolean {
    return this.users === 0 && this.fiber === undefined && this.state.worker.status !== "busy" &&
      this.state.queue.length === 0 && this.listeners === undefined
  }

  /**
   * Decides `command` under the lock and applies the plan; then interrupts
   * the turn it ended, outside the lock. Waiting for the lock can be
   * interrupted; the change itself cannot, so a caller that goes away never
   * leaves a commit half applied.
   */
  run<C extends Command, A, E extends Refusal>(
    decider: Decider<C, A, E>,
    command: C
  ): Effect.Effect<A, E | UnknownWorker | StoreError> {
    return Effect.flatMap(
      this.locked(this.decideLocked(decider, command)),
      ([result, fiber]) => fiber === undefined ? Effect.succeed(result) : Effect.as(interruptUntilDone(fiber), result)
    )
  }

  /** The record of turn `turn` if it is the latest this actor knows, after waiting up to `waitMs` for its end. */
  latestTurn(turn: number, waitMs: number): Effect.Effect<Turn | undefined> {
    return Effect.suspend(() => {
      const latest = this.state.latest
      if (latest === undefined || latest.turn !== turn) return Effect.succeed(undefined)
      const { worker } = this.state
      // Running until recorded otherwise; a Worker activated busy has a turn no fiber runs, which repair ends.
      const running = latest.status === "running" && worker.status === "busy" && worker.turn === turn
      const wait = running && waitMs > 0
        ? Effect.timeoutOption((this.ended ??= Effect.unsafeMakeLatch(false)).await, waitMs)
        : Effect.void
      return Effect.map(wait, () => {
        const record = this.state.latest
        if (record === undefined || record.turn !== turn) return latest
        // A running turn's last entry is the Worker's.
        return record.status === "running" ? { ...record, lastSeq: this.state.worker.lastSeq } : record
      })
    })
  }

  /** Starts following the Worker; undo with `unlisten`. */
  listen(): Listener {
    const listener = makeListener()
    this.listeners ??= new Set()
    this.listeners.add(listener)
    this.idleSince = undefined
    this.env.countStreams(1)
    if (this.deleted || this.env.streamsClosed()) endListener(listener)
    return listener
  }

  unlisten(listener: Listener): void {
    if (this.listeners?.delete(listener) === true) this.env.countStreams(-1)
    if (this.listeners?.size === 0) this.listeners = undefined
  }

  /** Ends every follower's stream (the Runtime is shutting down). */
  endStreams(): void {
    for (const listener of this.listeners ?? []) endListener(listener)
  }

  private locked<A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> {
    return this.lock.withLock(effect)
  }

  private gone(): UnknownWorker {
    const id = this.state.worker.id
    return new UnknownWorker({ workerId: id, message: `There is no Worker ${JSON.stringify(id)}.` })
  }

  private decideLocked<C extends Command, A, E extends Refusal>(
    decider: Decider<C, A, E>,
    command: C
  ): Effect.Effect<Ending<A>, E | UnknownWorker | StoreError> {
    return Effect.suspend((): Effect.Effect<Ending<A>, E | UnknownWorker | StoreError> => {
      if (this.deleted) return Effect.fail(this.gone())
      const draining = this.env.draining() ?? this.env.moving(this.state.worker.id)
      const { queue, worker } = this.state
      const head = draining === undefined && mayDequeue(this.state, command) ? queue[0] : undefined
      // A queued input's content waits in the store until its turn starts.
      const headContent = head === undefined
        ? Effect.succeed(undefined)
        : this.env.store.queuedContent(worker.id, head.id)
      const decide = (
        content: string | undefined,
        at: string,
        receipt: InputReceipt | undefined
      ): Effect.Effect<Ending<A>, E | StoreError> => {
        const output = this.output
        const decided = decider(this.state, command, {
          at,
          engine: this.engine,
          draining,
          maxQueued: this.env.maxQueued,
          maxQueuedBytes: this.env.maxQueuedBytes,
          // Read, not taken: a plan that ends the turn drops the buffer once committed.
          pending: output === undefined || output.turn !== worker.turn
            ? []
            : output.text === ""
            ? output.lines
            : [...output.lines, output.text],
          usage: output !== undefined && output.turn === worker.turn ? output.usage : undefined,
          headContent: content,
          receipt
        })
        return decided._tag === "Left" ? Effect.fail(decided.left) : this.apply(decided.right)
      }
      // An input with an id (cluster mode) may be recorded already: its receipt is read under the lock.
      const inputId = command._tag === "Input" ? command.inputId : undefined
      // The common case (nothing queued, no id) reads the clock alone.
      if (head === undefined && inputId === undefined) {
        return Effect.flatMap(nowIso, (at) => decide(undefined, at, undefined))
      }
      const read = Effect.zip(headContent, nowIso)
      if (inputId === undefined) return Effect.flatMap(read, ([content, at]) => decide(content, at, undefined))
      return Effect.flatMap(
        Effect.zip(read, this.env.store.inputReceipt(worker.id, inputId)),
        ([[content, at], receipt]) => decide(content, at, receipt)
      )
    })
  }

  /** Commits the plan, then shows it: state, counts, followers, the turn ended and the one started. */
  private apply<A>(plan: Plan<A>): Effect.Effect<Ending<A>, StoreError> {
    const { env } = this
    if (plan.deletes) {
      // Gone for callers at once: the store deletes a long transcript in
      // batches, and nobody should read it half deleted meanwhile. A delete
      // the store could not finish leaves the Worker stored: it shows up
      // again (stopped) and can be deleted again.
      this.deleted = true
      env.forget(this)
      env.statusChanged(this.state.worker.status, undefined)
      this.endStreams()
      const workerId = this.state.worker.id
      return env.store.deleteWorker(workerId).pipe(
        Effect.ensuring(Effect.sync(() => env.deleted(workerId))),
        Effect.as([plan.result, undefined] as const)
      )
    }
    const change = plan.change
    if (change === undefined) return Effect.succeed([plan.result, undefined])
    const commit = env.tracing ? Effect.withSpan(env.store.commit(change), "store.commit") : env.store.commit(change)
    // Real time, read directly: the histogram measures the store, not the Effect clock.
    const started = performance.now()
    return Effect.flatMap(commit, () => {
      Metrics.storeCommitDuration.unsafeUpdate((performance.now() - started) / 1000, NO_LABELS)
      const before = this.state.worker
      this.state = plan.state
      const after = plan.state.worker
      if (before.status !== after.status) env.statusChanged(before.status, after.status)
      publish(this.listeners, plan.events)
      let ended: Fiber.RuntimeFiber<void> | undefined
      if (before.status === "busy" && (after.status !== "busy" || after.turn !== before.turn)) {
        ended = plan.endsTurn ? this.fiber : undefined
        this.turnOver()
        const closed = plan.closed
        if (closed !== undefined && closed.endedAt !== null) {
          const outcome = outcomeLabels(closed.status)
          Metrics.turnsEnded.unsafeUpdate(1, outcome)
          Metrics.turnDuration.unsafeUpdate((Date.parse(closed.endedAt) - Date.parse(closed.startedAt)) / 1000, outcome)
          if (closed.usage !== null) countTokens(after.profile, closed.usage)
        }
      }
      if (plan.starts === undefined) return Effect.succeed([plan.result, ended] as const)
      Metrics.turnsStarted.unsafeUpdate(1, NO_LABELS)
      return Effect.as(this.start(plan.starts), [plan.result, ended] as const)
    })
  }

  // --- the turn --------------------------------------------------------------

  /** Forks the fiber of the turn `state.worker.turn`, just committed. Under the lock. */
  private start(input: TurnInput): Effect.Effect<void> {
    return Effect.suspend(() => {
      const engine = this.engine
      if (engine === undefined) return Effect.void
      const { id: workerId, profile, turn } = this.state.worker
      const context: TurnContext = {
        runtimeId: this.env.runtimeId,
        workerId,
        profile,
        turn,
        input,
        transcript: this.transcriptSoFar()
      }
      const stream = engine.run(context)
      // Output known now: the turn ends here, as one that ended at once would
      // (a span per turn needs the fiber's path).
      const ready = this.env.tracing ? undefined : readyOutput(stream)
      if (ready !== undefined) return this.endAtOnce(turn, ready)
      // In the turn's own fiber, so that every interrupt sent to it reaches the stream.
      const turnRun = forEachTurnChunk(stream, (chunk) => this.take(turn, chunk)).pipe(
        Effect.matchCauseEffect({
          onSuccess: () => this.finish(turn, undefined),
          // Interruption is recorded by whoever interrupted.
          onFailure: (cause) => Cause.isInterruptedOnly(cause) ? Effect.void : this.finish(turn, turnFailureOf(cause))
        })
      )
      // A daemon: the turn outlives the request that started it. Forked from
      // the lock's uninterruptible region, it must be made interruptible.
      return Effect.map(
        Effect.forkDaemon(Effect.interruptible(
          this.env.tracing ? Effect.withSpan(turnRun, "turn", { attributes: { workerId, turn, profile } }) : turnRun
        )),
        (fiber) => {
          this.fiber = fiber
          const fibers = this.env.fibers
          fibers.add(fiber)
          fiber.addObserver(() => fibers.delete(fiber))
        }
      )
    })
  }

  /** Every entry of the transcript so far, for engines that read it. */
  private transcriptSoFar(): Effect.Effect<ReadonlyArray<TranscriptEntry>, TurnFailed> {
    const { store } = this.env
    const workerId = this.state.worker.id
    return Effect.gen(function*() {
      const out: Array<TranscriptEntry> = []
      for (;;) {
        const page = yield* store.transcript(workerId, { after: out.length, limit: MAX_PAGE })
        out.push(...page)
        if (page.length === 0) return out
      }
    }).pipe(Effect.mapError((error) => new TurnFailed({ message: error.message })))
  }

  /**
   * One chunk of the turn's output: deltas go to followers at once and their
   * text waits in the buffer (it is recorded with the next line, or with the
   * turn's end however it ends); lines are queued for a commit.
   */
  private take(turn: number, chunk: Chunk.Chunk<TurnOutput>): Effect.Effect<void, TurnFailed> {
    return Effect.suspend(() => {
      // A turn that lost its Worker (cancelled, stopped) must not write.
      if (this.deleted || !isCurrent(this.state.worker, turn)) return Effect.interrupt
      const buffer = this.bufferOf(turn)
      const lines = this.collect(buffer, Chunk.toReadonlyArray(chunk))
      return lines.length === 0 ? Effect.void : this.emit(buffer, lines)
    })
  }

  /** The output buffer of turn `turn`, made when its first output comes. */
  private bufferOf(turn: number): OutputBuffer {
    let buffer = this.output
    if (buffer === undefined || buffer.turn !== turn) {
      buffer = {
        turn,
        lines: [],
        text: "",
        usage: undefined,
        flushing: false,
        room: undefined,
        failure: undefined
      }
      this.output = buffer
    }
    return buffer
  }

  /** Takes a chunk of output into the buffer: deltas go to followers now; the lines to commit are returned. */
  private collect(buffer: OutputBuffer, outputs: ReadonlyArray<TurnOutput>): Array<string> {
    const lines: Array<string> = []
    const deltas: Array<WorkerEvent> = []
    for (const out of outputs) {
      if (out._tag === "Line") {
        if (buffer.text !== "") lines.push(buffer.text)
        buffer.text = ""
        lines.push(out.content)
      } else if (out._tag === "Delta") {
        if (out.text === "") continue
        buffer.text += out.text
        deltas.push({ type: "delta", turn: buffer.turn, text: out.text })
      } else {
        buffer.usage = out.usage
      }
    }
    publish(this.listeners, deltas)
    return lines
  }

  /** A turn whose output was known at its start ends now, under the lock that started it: its output and end in one commit. */
  private endAtOnce(turn: number, outputs: ReadonlyArray<TurnOutput>): Effect.Effect<void> {
    return Effect.suspend(() => {
      const buffer = this.bufferOf(turn)
      for (const line of this.collect(buffer, outputs)) buffer.lines.push(line)
      return this.finishLocked(turn, undefined)
    })
  }

  /**
   * Queues the turn's lines for a commit. Output is committed in batches:
   * one commit at a time takes every line queued when it starts, so a flood
   * costs few commits and cancel or stop waits for at most one of them. The
   * engine's stream is pulled again only once there is room.
   */
  private emit(buffer: OutputBuffer, lines: ReadonlyArray<string>): Effect.Effect<void, TurnFailed> {
    return Effect.suspend(() => {
      if (buffer.failure !== undefined) return Effect.fail(new TurnFailed({ message: buffer.failure }))
      for (const line of lines) buffer.lines.push(line)
      const full = buffer.lines.length >= OUTPUT_HIGH_WATER
      let wait: Effect.Effect<void> = Effect.void
      if (full) {
        const room = buffer.room ??= Effect.unsafeMakeLatch(true)
        room.unsafeClose()
        wait = room.await
      }
      if (buffer.flushing) return wait
      buffer.flushing = true
      return Effect.zipRight(this.flushSoon(buffer), wait)
    })
  }

  /**
   * Starts the commit of the buffer's lines once the turn's fiber has let
   * others run: a turn that ends before (a short one) commits them with its
   * end, and no fiber is forked for them. A forked fiber would not have
   * started sooner: it starts in the scheduler's next round too.
   */
  private flushSoon(buffer: OutputBuffer): Effect.Effect<void> {
    return Effect.withFiberRuntime((fiber, status) => {
      const runtime = Runtime.make({
        context: fiber.currentContext,
        runtimeFlags: status.runtimeFlags,
        fiberRefs: fiber.getFiberRefs()
      })
      fiber.currentScheduler.scheduleTask(() => {
        if (this.deleted || !isCurrent(this.state.worker, buffer.turn)) {
          // The turn's end took the lines, or they are dropped with it (as `flushLocked` does).
          buffer.flushing = false
          buffer.room?.unsafeOpen()
          return
        }
        // A fiber of its own: the commit completes even if the turn is interrupted meanwhile.
        Runtime.runFork(runtime, this.flush(buffer))
      }, fiber.getFiberRef(FiberRef.currentSchedulingPriority))
      return Effect.void
    })
  }

  private flush(buffer: OutputBuffer): Effect.Effect<void> {
    return Effect.flatMap(this.locked(this.flushLocked(buffer)), (more) => (more ? this.flush(buffer) : Effect.void))
  }

  /** One commit of the queued lines; true when more came meanwhile (for the next, after the lock is released). */
  private flushLocked(buffer: OutputBuffer): Effect.Effect<boolean> {
    return Effect.suspend(() => {
      if (
        this.deleted || !isCurrent(this.state.worker, buffer.turn) || buffer.lines.length === 0 ||
        buffer.failure !== undefined
      ) {
        // Decided synchronously, so an emit cannot slip its line in between.
        buffer.flushing = false
        buffer.room?.unsafeOpen()
        return Effect.succeed(false)
      }
      const lines = buffer.lines.splice(0)
      buffer.room?.unsafeOpen()
      return this.decideLocked(decideOutput, { _tag: "Output", turn: buffer.turn, lines }).pipe(
        Effect.catchAll((error) => Effect.sync(() => (buffer.failure = error.message))),
        Effect.map(() => {
          // Nothing came meanwhile (the common case for a turn that prints
          // now and then): done, without taking the lock again to find out.
          if (buffer.lines.length === 0 || buffer.failure !== undefined) {
            buffer.flushing = false
            // A turn waiting for room fails now (the commit failed) instead of waiting for ever.
            buffer.room?.unsafeOpen()
            return false
          }
          return true
        })
      )
    })
  }

  /** The turn ends on its own: what it left unrecorded and its end in one commit, then the next queued turn. */
  private finish(turn: number, failure: TurnFailed | undefined): Effect.Effect<void> {
    const workerId = this.state.worker.id
    const warn = failure === undefined ? Effect.void : Effect.logWarning("turn failed").pipe(
      // The reason, but not its detail: it may echo input content.
      Effect.annotateLogs({ workerId, turn, reason: failure.message.slice(0, 200), fatal: failure.fatal === true })
    )
    return Effect.zipRight(warn, this.locked(this.finishLocked(turn, failure)))
  }

  /** Records the end of turn `turn` with what it left unrecorded; under the lock. */
  private finishLocked(turn: number, failure: TurnFailed | undefined): Effect.Effect<void> {
    const command = {
      _tag: "TurnEnd",
      turn,
      failure: failure === undefined ? undefined : { reason: failureReason(failure), fatal: failure.fatal === true }
    } as const
    return this.decideLocked(decideTurnEnd, command).pipe(
      Effect.asVoid,
      Effect.catchAll((error) =>
        error._tag !== "StoreError"
          ? Effect.void
          // The store refused the end of the turn. Free the Worker in memory
          // anyway (a durable store shows it busy, which the next start
          // repairs) rather than leave it busy for ever.
          : Effect.zipRight(
            Effect.logError("could not record the end of a turn", error),
            Effect.sync(() => this.free())
          )
      )
    )
  }

  /** The running turn is over: its fiber is no longer this Worker's, its waiters are told. */
  private turnOver(): void {
    this.fiber = undefined
    // Output the ended turn queued after its end was decided is dropped with it.
    this.output = undefined
    this.ended?.unsafeOpen()
    this.ended = undefined
  }

  /** Shows the Worker idle without a commit (the store refused the end of its turn). */
  private free(): void {
    if (this.deleted || this.state.worker.status !== "busy") return
    const before = this.state.worker
    const worker: Worker = { ...before, status: "idle" }
    this.state = { ...this.state, worker }
    this.turnOver()
    this.env.statusChanged(before.status, "idle")
    publish(this.listeners, [{ type: "worker", worker }])
  }
}

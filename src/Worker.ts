/**
 * A Worker's semantics as one pure function: `decide(state, command, context)`
 * answers a plan (the store change, the events to publish, the turn to end or
 * start, the caller's answer) or the typed error that refuses the command.
 * `WorkerActor` applies plans; nothing else decides what a command does
 * (docs/rest.md, "Worker semantics"; docs/architecture.md).
 */
import * as Either from "effect/Either"
import type {
  CancelResult,
  IfBusy,
  InputAccepted,
  InputKind,
  TokenUsage,
  TranscriptEntry,
  Turn,
  TurnOutcome,
  Worker,
  WorkerEvent,
  WorkerStatus
} from "./Domain.js"
import { Busy, type Unavailable, Unsupported } from "./Errors.js"
import type { Change, InputReceipt, QueuedRef } from "./RuntimeStore.js"

/** What memory holds of one Worker: the stored Worker, its queue (without content) and its latest turn. */
export interface WorkerState {
  readonly worker: Worker
  /** Inputs queued under `ifBusy: enqueue`, in order. */
  readonly queue: ReadonlyArray<QueuedRef>
  /** The record of the latest turn, when this actor knows it (always while one runs). */
  readonly latest: Turn | undefined
}

/** What decide needs to know of the Worker's engine. */
export interface EngineTraits {
  readonly name: string
  readonly kinds?: ReadonlyArray<InputKind> | undefined
  readonly cancellable?: boolean | undefined
}

export interface TurnInput {
  readonly content: string
  readonly kind: InputKind
}

/** What a turn's engine reported when the turn ended on its own. */
export interface TurnFailure {
  /** For the transcript and the turn record. */
  readonly reason: string
  /** The Worker takes no more turns (`failed`). */
  readonly fatal: boolean
}

export type Command =
  | {
    readonly _tag: "Input"
    readonly content: string
    readonly kind: InputKind
    readonly ifBusy: IfBusy
    /** Its content's UTF-8 bytes. */
    readonly bytes: number
    /**
     * The id its caller gave it (cluster mode: its persisted message's), then
     * recorded with it: an input with an id recorded already is answered as then.
     */
    readonly inputId?: string | undefined
  }
  | { readonly _tag: "Cancel"; readonly reason: string | undefined; readonly clearQueue: boolean }
  | { readonly _tag: "Stop"; readonly reason: string | undefined }
  /** A batch of the running turn's output. */
  | { readonly _tag: "Output"; readonly turn: number; readonly lines: ReadonlyArray<string> }
  /** The turn ended on its own: completed, or failed. */
  | { readonly _tag: "TurnEnd"; readonly turn: number; readonly failure: TurnFailure | undefined }
  /** The turn in flight is interrupted by the runtime (shutdown, or repair at start). */
  | { readonly _tag: "Interrupt"; readonly reason: string }
  /** Start the head of the queue if the Worker is idle (at start, for inputs queued before a restart). */
  | { readonly _tag: "Resume" }
  | { readonly _tag: "Delete" }

export interface Context {
  /** Now, ISO: the time of every entry and record the plan writes. */
  readonly at: string
  /** The profile's engine; absent when the profile is no longer configured. */
  readonly engine: EngineTraits | undefined
  /** The refusal of new turns while the runtime drains (queued inputs then wait too). */
  readonly draining: Unavailable | undefined
  readonly maxQueued: number
  readonly maxQueuedBytes: number
  /** The running turn's output no commit took yet (it is recorded before the turn's end). */
  readonly pending: ReadonlyArray<string>
  /** The tokens the running turn's engine reported so far, if it did (recorded on the turn when it ends). */
  readonly usage?: TokenUsage | undefined
  /** The content of the queue's head, when the queue is not empty (a queued turn may start). */
  readonly headContent: string | undefined
  /** The receipt the store has for the input's id (an input delivered again), if any. */
  readonly receipt?: InputReceipt | undefined
}

export interface Plan<A> {
  readonly state: WorkerState
  /** What to commit before anything else happens; none when nothing changes. */
  readonly change: Change | undefined
  /** Delete the Worker from the store (instead of a change). */
  readonly deletes: boolean
  /** Published to followers once committed, in order. */
  readonly events: ReadonlyArray<WorkerEvent>
  /** The running turn ended: interrupt its fiber (after the commit, outside the lock). */
  readonly endsTurn: boolean
  /** The record of the turn that ended, if one did. */
  readonly closed: Turn | undefined
  /** A turn to start (`state.worker.turn`), with its input. */
  readonly starts: TurnInput | undefined
  /** The caller's answer. */
  readonly result: A
}

export type Refusal = Busy | Unsupported | Unavailable

/** Whether `decide` may start the queue's head for this command (then `headContent` must be given). */
export const mayDequeue = (state: WorkerState, command: Command): boolean =>
  state.queue.length > 0 && (
    command._tag === "TurnEnd" || command._tag === "Resume" ||
    (command._tag === "Cancel" && !command.clearQueue)
  )

const isTerminal = (status: WorkerStatus) => status === "stopped" || status === "failed"

const noPlan = <A>(state: WorkerState, result: A): Plan<A> => ({
  state,
  change: undefined,
  deletes: false,
  events: [],
  endsTurn: false,
  closed: undefined,
  starts: undefined,
  result
})

/** "what" or "what: reason". */
const withReason = (what: string, reason: string | undefined) =>
  reason === undefined || reason === "" ? what : `${what}: ${reason}`

const plural = (count: number, what: string) => `${count} ${what}${count === 1 ? "" : "s"}`

interface TurnEndSpec {
  readonly outcome: TurnOutcome
  /** Why, for the entry's content and the turn record; none for `completed` or a plain stop. */
  readonly reason: string | undefined
}

/** One change of a Worker's turns, committed at once. */
interface Transition {
  /** End the turn in flight (or, on an idle Worker, record a `runtime` entry that closes no turn). */
  readonly end?: TurnEndSpec | undefined
  /** The status unless a new turn starts. */
  readonly status: WorkerStatus
  readonly stopReason?: string | undefined
  /** Drop every queued input; the end entry says how many. */
  readonly dropQueue?: boolean | undefined
  /** Start a turn now: with this input, or with the head of the queue (if any and not draining). */
  readonly next?: TurnInput | "queued" | undefined
}

const transition = (state: WorkerState, change: Transition, context: Context) => {
  const { at } = context
  const current = state.worker
  const busy = current.status === "busy"
  const entries: Array<TranscriptEntry> = []
  const turns: Array<Turn> = []
  let seq = current.lastSeq
  let closed: Turn | undefined
  // Field by field, in the order a spread of the fields gave: spreading them
  // was a tenth of an input's CPU in process (docs/benchmarks.md).
  const add = (role: TranscriptEntry["role"], content: string, turn: number, outcome?: TurnOutcome) => {
    const full: TranscriptEntry = outcome === undefined
      ? { role, content, turn, seq: ++seq, at }
      : { role, content, turn, outcome, seq: ++seq, at }
    entries.push(full)
    return full
  }

  // The turn's output that no commit took yet comes before its end.
  if (busy) { for (const content of context.pending) add("worker", content, current.turn) }
  const dropped = change.dropQueue === true ? state.queue : []
  if (change.end !== undefined) {
    const base = withReason(change.end.outcome, change.end.reason)
    // On an idle Worker (a stop) the entry closes no turn: turn 0.
    const entry = add(
      "runtime",
      dropped.length === 0 ? base : `${base} (${plural(dropped.length, "queued input")} dropped)`,
      busy ? current.turn : 0,
      change.end.outcome
    )
    if (busy && state.latest !== undefined && state.latest.turn === current.turn) {
      closed = {
        ...state.latest,
        status: change.end.outcome,
        lastSeq: entry.seq,
        endedAt: at,
        reason: change.end.reason ?? null,
        usage: context.usage ?? state.latest.usage
      }
      turns.push(closed)
    }
  }

  const remaining = change.dropQueue === true ? [] : state.queue
  const fromQueue = change.next === "queued" && context.draining === undefined ? remaining[0] : undefined
  const next: TurnInput | undefined = change.next === "queued"
    ? fromQueue === undefined || context.headContent === undefined
      ? undefined
      : { content: context.headContent, kind: fromQueue.kind }
    : change.next
  const starts = next !== undefined && context.engine !== undefined ? next : undefined
  // Most commits dequeue nothing: no arrays for them.
  const dequeued = starts !== undefined && fromQueue !== undefined ? fromQueue.id : undefined
  const dequeue = dropped.length === 0
    ? dequeued === undefined ? undefined : [dequeued]
    : [...dropped.map((input) => input.id), ...(dequeued === undefined ? [] : [dequeued])]
  const queue = starts !== undefined && fromQueue !== undefined ? remaining.slice(1) : remaining

  let started: TranscriptEntry | undefined
  let latest = closed ?? state.latest
  const patch = change.stopReason === undefined ? undefined : { stopReason: change.stopReason }
  let worker: Worker
  if (starts !== undefined) {
    const turn = current.turn + 1
    started = add(starts.kind, starts.content, turn)
    latest = {
      workerId: current.id,
      turn,
      status: "running",
      inputSeq: started.seq,
      lastSeq: started.seq,
      startedAt: at,
      endedAt: null,
      reason: null,
      usage: null
    }
    turns.push(latest)
    worker = patch === undefined
      ? { ...current, status: "busy", turn, lastSeq: seq, updatedAt: at, queued: queue.length }
      : { ...current, ...patch, status: "busy", turn, lastSeq: seq, updatedAt: at, queued: queue.length }
  } else {
    worker = patch === undefined
      ? { ...current, status: change.status, lastSeq: seq, updatedAt: at, queued: queue.length }
      : { ...current, ...patch, status: change.status, lastSeq: seq, updatedAt: at, queued: queue.length }
  }

  const events: Array<WorkerEvent> = entries.map((entry) => ({ type: "entry", entry }))
  if (current.status !== worker.status || current.queued !== worker.queued) events.push({ type: "worker", worker })
  return {
    plan: {
      state: { worker, queue, latest },
      change: dequeue === undefined ? { worker, entries, turns } : { worker, entries, turns, dequeue },
      deletes: false,
      events,
      endsTurn: busy,
      closed,
      starts,
      result: undefined
    } satisfies Plan<undefined>,
    started
  }
}

const unsupported = (worker: Worker, operation: string, message: string) =>
  new Unsupported({ operation, workerId: worker.id, message })

/** Whether the Worker takes an input of `kind` at all (busy aside), in docs/rest.md's order of precedence. */
const refuseInput = (worker: Worker, engine: EngineTraits | undefined, kind: InputKind): Unsupported | undefined => {
  if (isTerminal(worker.status)) return unsupported(worker, "input", `Worker ${worker.id} is ${worker.status}`)
  if (engine === undefined) {
    return unsupported(worker, "input", `profile ${JSON.stringify(worker.profile)} is no longer configured`)
  }
  if (engine.kinds !== undefined && !engine.kinds.includes(kind)) {
    return unsupported(worker, `input:${kind}`, `the ${engine.name} engine does not take ${kind} input`)
  }
  return undefined
}

/** Why a cancel is refused, if it is. */
const refuseCancel = (worker: Worker, engine: EngineTraits | undefined): Unsupported | undefined => {
  if (isTerminal(worker.status)) return unsupported(worker, "cancel", `Worker ${worker.id} is ${worker.status}`)
  if (engine?.cancellable === false) {
    return unsupported(worker, "cancel", `the ${engine.name} engine cannot cancel a turn`)
  }
  return undefined
}

export type CommandOf<T extends Command["_tag"]> = Extract<Command, { readonly _tag: T }>

/** What an input answered, kept with its id. */
const receiptOf = (inputId: string, accepted: InputAccepted): InputReceipt => {
  const { lastSeq, queued, status, turn, updatedAt } = accepted.worker
  return {
    inputId,
    worker: { status, turn, lastSeq, queued, updatedAt },
    seq: accepted.entry?.seq,
    position: accepted.position
  }
}

/**
 * What the input answered when it was recorded, from its receipt: the
 * Worker as it left it (what an input does not change is as it is now), its
 * entry (from the command, the same input delivered again) or its place.
 */
const answerOf = (worker: Worker, receipt: InputReceipt, command: CommandOf<"Input">): InputAccepted => {
  // Only a stop sets a reason, and a stopped Worker takes no input: it had none then.
  const { stopReason: _, ...then } = worker
  const accepted = { ...then, ...receipt.worker }
  if (receipt.position !== undefined) return { worker: accepted, queued: true, position: receipt.position }
  if (receipt.seq === undefined) return { worker: accepted, queued: false }
  return {
    worker: accepted,
    queued: false,
    entry: {
      seq: receipt.seq,
      at: accepted.updatedAt,
      role: command.kind,
      content: command.content,
      turn: accepted.turn
    }
  }
}

/** The plan with the input's receipt in its change, when the input has an id. */
const withReceipt = (plan: Plan<InputAccepted>, inputId: string | undefined): Plan<InputAccepted> =>
  inputId === undefined || plan.change === undefined
    ? plan
    : { ...plan, change: { ...plan.change, receipt: receiptOf(inputId, plan.result) } }

/** An input, under its busy policy: a turn starts, the input is queued, or it is refused. */
export const decideInput = (
  state: WorkerState,
  command: CommandOf<"Input">,
  context: Context
): Either.Either<Plan<InputAccepted>, Refusal> => {
  const { worker } = state
  // Recorded already (a redelivery): answered as then, whatever the Worker does now.
  if (context.receipt !== undefined) return Either.right(noPlan(state, answerOf(worker, context.receipt, command)))
  if (context.draining !== undefined) return Either.left(context.draining)
  const refusal = refuseInput(worker, context.engine, command.kind)
  if (refusal !== undefined) return Either.left(refusal)
  const busy = worker.status === "busy"
  if (busy && command.ifBusy === "reject") {
    return Either.left(
      new Busy({ workerId: worker.id, turn: worker.turn, message: `Worker ${worker.id} has a turn in flight` })
    )
  }
  if (busy && command.ifBusy === "enqueue") {
    if (state.queue.length >= context.maxQueued) {
      return Either.left(
        new Busy({
          workerId: worker.id,
          turn: worker.turn,
          message: `Worker ${worker.id} has ${context.maxQueued} inputs queued already`
        })
      )
    }
    const queuedBytes = state.queue.reduce((sum, input) => sum + input.bytes, 0)
    if (queuedBytes + command.bytes > context.maxQueuedBytes) {
      return Either.left(
        new Busy({
          workerId: worker.id,
          turn: worker.turn,
          message: `Worker ${worker.id} has ${queuedBytes} bytes of input queued; at most ${context.maxQueuedBytes}`
        })
      )
    }
    const last = state.queue[state.queue.length - 1]
    const id = (last?.id ?? worker.lastSeq) + 1
    const queue = [...state.queue, { id, kind: command.kind, at: context.at, bytes: command.bytes }]
    const next: Worker = { ...worker, queued: queue.length, updatedAt: context.at }
    return Either.right(withReceipt({
      ...noPlan(state, { worker: next, queued: true, position: queue.length } satisfies InputAccepted),
      state: { ...state, worker: next, queue },
      change: {
        worker: next,
        entries: [],
        enqueue: { id, content: command.content, kind: command.kind, at: context.at }
      },
      events: [{ type: "worker", worker: next }]
    }, command.inputId))
  }
  const { plan, started } = transition(state, {
    ...(busy ? { end: { outcome: "cancelled", reason: "interrupted by new input" } } : {}),
    status: "busy",
    next: { content: command.content, kind: command.kind }
  }, context)
  const accepted: InputAccepted = started === undefined
    ? { worker: plan.state.worker, queued: false }
    : { worker: plan.state.worker, queued: false, entry: started }
  return Either.right(withReceipt({ ...plan, result: accepted }, command.inputId))
}

/** Cancel: ends the turn in flight (and with `clearQueue` drops the queue); otherwise nothing. */
export const decideCancel = (
  state: WorkerState,
  command: CommandOf<"Cancel">,
  context: Context
): Either.Either<Plan<CancelResult>, Unsupported> => {
  const { worker } = state
  const refusal = refuseCancel(worker, context.engine)
  if (refusal !== undefined) return Either.left(refusal)
  const busy = worker.status === "busy"
  if (!busy && (!command.clearQueue || state.queue.length === 0)) {
    return Either.right(noPlan(state, { worker, cancelled: false } satisfies CancelResult))
  }
  const { plan } = transition(state, {
    ...(busy ? { end: { outcome: "cancelled", reason: command.reason } } : {}),
    status: "idle",
    dropQueue: command.clearQueue,
    next: command.clearQueue ? undefined : "queued"
  }, context)
  return Either.right({ ...plan, result: { worker: plan.state.worker, cancelled: busy } satisfies CancelResult })
}

/** Stop: ends any turn, drops the queue, and the Worker is `stopped` for good. */
export const decideStop = (
  state: WorkerState,
  command: CommandOf<"Stop">,
  context: Context
): Either.Either<Plan<Worker>, never> => {
  const { worker } = state
  if (worker.status === "stopped") return Either.right(noPlan(state, worker))
  const { plan } = transition(state, {
    end: { outcome: "stopped", reason: command.reason },
    status: "stopped",
    stopReason: command.reason ?? "stopped",
    dropQueue: true
  }, context)
  return Either.right({ ...plan, result: plan.state.worker })
}

/** A batch of the current turn's output; a stale turn's is ignored. */
export const decideOutput = (
  state: WorkerState,
  command: CommandOf<"Output">,
  context: Context
): Either.Either<Plan<undefined>, never> => {
  const { worker } = state
  if (!isCurrent(worker, command.turn) || command.lines.length === 0) return Either.right(noPlan(state, undefined))
  let seq = worker.lastSeq
  const entries = command.lines.map((content): TranscriptEntry => ({
    seq: ++seq,
    at: context.at,
    role: "worker",
    content,
    turn: command.turn
  }))
  const next: Worker = { ...worker, lastSeq: seq, updatedAt: context.at }
  return Either.right({
    ...noPlan({ ...state, worker: next }, undefined),
    change: { worker: next, entries },
    events: entries.map((entry): WorkerEvent => ({ type: "entry", entry }))
  })
}

/** The current turn ended on its own; then the queue's head starts. */
export const decideTurnEnd = (
  state: WorkerState,
  command: CommandOf<"TurnEnd">,
  context: Context
): Either.Either<Plan<undefined>, never> => {
  const { worker } = state
  if (!isCurrent(worker, command.turn)) return Either.right(noPlan(state, undefined))
  const { failure } = command
  const fatal = failure?.fatal === true
  const { plan } = transition(state, {
    end: failure === undefined
      ? { outcome: "completed", reason: undefined }
      : { outcome: "failed", reason: failure.reason },
    status: fatal ? "failed" : "idle",
    // A failed Worker takes no more turns: its queue is dropped.
    dropQueue: fatal,
    next: fatal ? undefined : "queued"
  }, context)
  // The turn ended on its own: its fiber is the one ending, nothing to interrupt.
  return Either.right({ ...plan, endsTurn: false })
}

/** The runtime interrupts the turn in flight (shutdown, repair at start). */
export const decideInterrupt = (
  state: WorkerState,
  command: CommandOf<"Interrupt">,
  context: Context
): Either.Either<Plan<undefined>, never> => {
  const { worker } = state
  if (worker.status !== "busy") return Either.right(noPlan(state, undefined))
  return Either.right(
    transition(state, { end: { outcome: "interrupted", reason: command.reason }, status: "idle" }, context).plan
  )
}

/** Starts the queue's head on an idle Worker. */
export const decideResume = (
  state: WorkerState,
  _command: CommandOf<"Resume">,
  context: Context
): Either.Either<Plan<undefined>, never> => {
  const { worker } = state
  // Nothing to start: no queue, draining (it waits for the restart), or no engine for it.
  if (
    worker.status !== "idle" || state.queue.length === 0 || context.draining !== undefined ||
    context.engine === undefined
  ) return Either.right(noPlan(state, undefined))
  return Either.right(transition(state, { status: "idle", next: "queued" }, context).plan)
}

/** Whether the Worker may be deleted (stopped or failed only). */
export const decideDelete = (
  state: WorkerState,
  _command: CommandOf<"Delete">,
  _context: Context
): Either.Either<Plan<undefined>, Unsupported> => {
  const { worker } = state
  if (!isTerminal(worker.status)) {
    return Either.left(unsupported(worker, "delete", `Worker ${worker.id} is ${worker.status}; stop it first`))
  }
  return Either.right({ ...noPlan(state, undefined), deletes: true })
}

/** Any command's plan (its answer untyped), or why it is refused: what the property tests drive. Pure. */
export const decide = (
  state: WorkerState,
  command: Command,
  context: Context
): Either.Either<Plan<unknown>, Refusal> => {
  switch (command._tag) {
    case "Input":
      return decideInput(state, command, context)
    case "Cancel":
      return decideCancel(state, command, context)
    case "Stop":
      return decideStop(state, command, context)
    case "Output":
      return decideOutput(state, command, context)
    case "TurnEnd":
      return decideTurnEnd(state, command, context)
    case "Interrupt":
      return decideInterrupt(state, command, context)
    case "Resume":
      return decideResume(state, command, context)
    case "Delete":
      return decideDelete(state, command, context)
  }
}

/** The Worker runs this turn now. */
export const isCurrent = (worker: Worker, turn: number) => worker.status === "busy" && worker.turn === turn

/**
 * `decide` (src/Worker.ts) on generated command sequences: a small simulator
 * plays the actor's part (it keeps the transcript, the queued contents, the
 * running turn and its uncommitted output, and passes `pending` and
 * `headContent` as WorkerActor does) and checks, after every step, the
 * invariants of a Worker: contiguous seqs, one outcome per turn, one turn at
 * a time, the queue's order, the refusals, the turn records. A broken
 * invariant names itself and the step; fast-check prints the sequence.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"

import {
  type IfBusy,
  type InputKind,
  RuntimeId,
  type TranscriptEntry,
  type Turn,
  type Worker,
  WorkerId
} from "../src/Domain.js"
import { Unavailable } from "../src/Errors.js"
import {
  type Command,
  type Context,
  decide,
  type EngineTraits,
  mayDequeue,
  type Plan,
  type Refusal,
  type WorkerState
} from "../src/Worker.js"

// --- steps -------------------------------------------------------------------

type Action =
  | { readonly _tag: "Input"; readonly ifBusy: IfBusy; readonly kind: InputKind; readonly pad: number }
  | { readonly _tag: "Cancel"; readonly clearQueue: boolean; readonly reason: string | undefined }
  | { readonly _tag: "Stop"; readonly reason: string | undefined }
  /** Output of the running turn (`back` undefined) or of a stale turn (`back` turns before it). */
  | { readonly _tag: "Output"; readonly back: number | undefined; readonly lines: number }
  | { readonly _tag: "TurnEnd"; readonly back: number | undefined; readonly end: "completed" | "failed" | "fatal" }
  | { readonly _tag: "Interrupt" }
  | { readonly _tag: "Resume" }
  | { readonly _tag: "Delete" }
  /** The running turn emits lines that no commit has taken yet. */
  | { readonly _tag: "Emit"; readonly lines: number }

interface Step {
  readonly action: Action
  readonly engine: EngineTraits | undefined
  readonly draining: boolean
}

const echo: EngineTraits = { name: "echo" }
const uncancellable: EngineTraits = { name: "x", cancellable: false }
const userOnly: EngineTraits = { name: "user-only", kinds: ["user"] }

const reason = fc.option(fc.constantFrom("why", ""), { nil: undefined })
/** Undefined: the running turn; else how many turns before it (0 on an idle Worker: its last turn). */
const back = fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined, freq: 3 })

/** `ends`: how often turns end on their own; seldom, queues fill up. */
const actionOf = (ends: number): fc.Arbitrary<Action> =>
  fc.oneof(
    {
      weight: 20,
      arbitrary: fc.record({
        ifBusy: fc.constantFrom<IfBusy>("reject", "enqueue", "enqueue", "interrupt"),
        kind: fc.constantFrom<InputKind>("user", "user", "system"),
        pad: fc.integer({ min: 0, max: 16 })
      }).map(({ ifBusy, kind, pad }): Action => ({ _tag: "Input", ifBusy, kind, pad }))
    },
    {
      weight: 5,
      arbitrary: fc.record({ clearQueue: fc.boolean(), reason }).map(({ clearQueue, reason }): Action => ({
        _tag: "Cancel",
        clearQueue,
        reason
      }))
    },
    { weight: 1, arbitrary: reason.map((reason): Action => ({ _tag: "Stop", reason })) },
    {
      weight: 8,
      arbitrary: fc.record({ back, lines: fc.integer({ min: 0, max: 3 }) }).map(({ back, lines }): Action => ({
        _tag: "Output",
        back,
        lines
      }))
    },
    {
      weight: ends,
      arbitrary: fc.record({
        back,
        end: fc.constantFrom<"completed" | "failed" | "fatal">("completed", "completed", "completed", "failed", "fatal")
      }).map(({ back, end }): Action => ({ _tag: "TurnEnd", back, end }))
    },
    { weight: 2, arbitrary: fc.constant<Action>({ _tag: "Interrupt" }) },
    { weight: 3, arbitrary: fc.constant<Action>({ _tag: "Resume" }) },
    { weight: 1, arbitrary: fc.constant<Action>({ _tag: "Delete" }) },
    {
      weight: 8,
      arbitrary: fc.integer({ min: 1, max: 3 }).map((lines): Action => ({ _tag: "Emit", lines }))
    }
  )

const stepOf = (ends: number): fc.Arbitrary<Step> =>
  fc.record({
    action: actionOf(ends),
    engine: fc.oneof(
      { weight: 12, arbitrary: fc.constant<EngineTraits | undefined>(echo) },
      { weight: 1, arbitrary: fc.constant<EngineTraits | undefined>(uncancellable) },
      { weight: 1, arbitrary: fc.constant<EngineTraits | undefined>(userOnly) },
      { weight: 1, arbitrary: fc.constant<EngineTraits | undefined>(undefined) }
    ),
    draining: fc.oneof({ weight: 12, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) })
  })

/** Up to 40 steps, in which turns end often or seldom. */
const steps = fc.constantFrom(2, 14).chain((ends) => fc.array(stepOf(ends), { maxLength: 40, size: "max" }))

// --- the simulator -----------------------------------------------------------

const MAX_QUEUED = 3
const MAX_QUEUED_BYTES = 40
const draining = new Unavailable({ message: "the runtime is draining", retryAfterMs: 1000 })

const atOf = (i: number) => new Date(Date.UTC(2026, 10, 24, 12) + (i + 1) * 1000).toISOString()

const idleWorker: Worker = {
  id: WorkerId.make("01JDQ5V7M0X4N8B6Z2C9K3F1TQ"),
  runtimeId: RuntimeId.make("01JDQ5T2A9E1R7W3Y5U8I0O2PD"),
  profile: "default",
  status: "idle",
  createdAt: atOf(-1),
  updatedAt: atOf(-1),
  turn: 0,
  lastSeq: 0,
  metadata: {},
  queued: 0
}

interface Queued {
  readonly id: number
  readonly content: string
  readonly kind: InputKind
  readonly bytes: number
}

/** What the simulated actor and store hold, besides decide's own state. */
interface Sim {
  state: WorkerState
  deleted: boolean
  readonly transcript: Array<TranscriptEntry>
  /** The store's queue, with contents. */
  queue: Array<Queued>
  /** The turn whose fiber runs, if one does. */
  running: number | undefined
  /** Its output no commit took yet. */
  pending: Array<string>
  /** Turn records, by number, as the store holds them. */
  readonly turns: Map<number, Turn>
  readonly started: Set<number>
  readonly ended: Set<number>
  readonly outcomes: Map<number, number>
  /** Contents in the order they were queued, and in the order queued inputs started. */
  readonly enqueued: Array<string>
  readonly fromQueue: Array<string>
  /** What happened, to show the generator reaches every case. */
  readonly seen: Set<string>
}

const newSim = (): Sim => ({
  state: { worker: idleWorker, queue: [], latest: undefined },
  deleted: false,
  transcript: [],
  queue: [],
  running: undefined,
  pending: [],
  turns: new Map(),
  started: new Set(),
  ended: new Set(),
  outcomes: new Map(),
  enqueued: [],
  fromQueue: [],
  seen: new Set()
})

class Broken extends Error {}

/** One named invariant: a failure says which, at which step, and why. */
const check = (index: number, name: string, holds: boolean, detail: () => string = () => "") => {
  if (!holds) throw new Broken(`invariant "${name}" broken at step ${index}: ${detail()}`)
}

const show = (value: unknown) => JSON.stringify(value)

/** The concrete command of a step, on the simulated Worker as it is. */
const commandOf = (sim: Sim, action: Exclude<Action, { readonly _tag: "Emit" }>, index: number): Command => {
  const { worker } = sim.state
  const staleTurn = (back: number) => Math.max(0, worker.turn - back - (worker.status === "busy" ? 1 : 0))
  switch (action._tag) {
    case "Input": {
      const content = `in${index}${"x".repeat(action.pad)}`
      return { _tag: "Input", content, kind: action.kind, ifBusy: action.ifBusy, bytes: content.length }
    }
    case "Cancel":
      return { _tag: "Cancel", reason: action.reason, clearQueue: action.clearQueue }
    case "Stop":
      return { _tag: "Stop", reason: action.reason }
    case "Output": {
      const turn = action.back === undefined ? worker.turn : staleTurn(action.back)
      // Each line says which turn emitted it.
      const lines = Array.from({ length: action.lines }, (_, j) => `t${turn}.out${index}.${j}`)
      return action.back === undefined
        // The actor takes what is pending into the batch it commits.
        ? { _tag: "Output", turn, lines: [...sim.pending, ...lines] }
        : { _tag: "Output", turn, lines }
    }
    case "TurnEnd":
      return {
        _tag: "TurnEnd",
        turn: action.back === undefined ? worker.turn : staleTurn(action.back),
        failure: action.end === "completed"
          ? undefined
          : { reason: action.end === "fatal" ? "cannot continue" : "boom", fatal: action.end === "fatal" }
      }
    case "Interrupt":
      return { _tag: "Interrupt", reason: "shutdown" }
    case "Resume":
      return { _tag: "Resume" }
    case "Delete":
      return { _tag: "Delete" }
  }
}

/** Whether `items` appear in `within` in their order. */
const isSubsequence = (items: ReadonlyArray<string>, within: ReadonlyArray<string>) => {
  let at = 0
  for (const item of within) if (item === items[at]) at++
  return at === items.length
}

/** The reason a command ends the running turn with (a stop on an idle Worker: its entry's), and whether it drops the queue. */
const endOf = (command: Command): { readonly reason: string | undefined; readonly drops: boolean } => {
  switch (command._tag) {
    case "Input":
      return { reason: "interrupted by new input", drops: false }
    case "Cancel":
      return { reason: command.reason, drops: command.clearQueue }
    case "Stop":
      return { reason: command.reason, drops: true }
    case "TurnEnd":
      return { reason: command.failure?.reason, drops: command.failure?.fatal === true }
    case "Interrupt":
      return { reason: command.reason, drops: false }
    default:
      return { reason: undefined, drops: false }
  }
}

/** The refusal decide must answer, by docs/rest.md's order (Unavailable, Unsupported, Busy), if any. */
const expectedRefusal = (state: WorkerState, command: Command, context: Context): Refusal["_tag"] | undefined => {
  const { worker } = state
  const terminal = worker.status === "stopped" || worker.status === "failed"
  const busy = worker.status === "busy"
  switch (command._tag) {
    case "Input": {
      if (context.draining !== undefined) return "Unavailable"
      if (terminal || context.engine === undefined) return "Unsupported"
      if (context.engine.kinds !== undefined && !context.engine.kinds.includes(command.kind)) return "Unsupported"
      if (busy && command.ifBusy === "reject") return "Busy"
      if (busy && command.ifBusy === "enqueue") {
        const bytes = state.queue.reduce((sum, input) => sum + input.bytes, 0)
        if (state.queue.length >= context.maxQueued || bytes + command.bytes > context.maxQueuedBytes) return "Busy"
      }
      return undefined
    }
    case "Cancel":
      return terminal || context.engine?.cancellable === false ? "Unsupported" : undefined
    case "Delete":
      return terminal ? undefined : "Unsupported"
    default:
      return undefined
  }
}

/** Decides one step, checks the plan against the simulation, and applies it. */
const play = (sim: Sim, step: Step, index: number): void => {
  const ok = (name: string, holds: boolean, detail?: () => string) => check(index, name, holds, detail)
  const before = sim.state
  const worker = before.worker
  const busy = worker.status === "busy"

  if (step.action._tag === "Emit") {
    if (sim.running !== undefined) {
      for (let j = 0; j < step.action.lines; j++) sim.pending.push(`t${sim.running}.pend${index}.${j}`)
    }
    return
  }

  const command = commandOf(sim, step.action, index)
  const isDraining = step.draining ? draining : undefined
  const head = sim.queue[0]
  const context: Context = {
    at: atOf(index),
    engine: step.engine,
    draining: isDraining,
    maxQueued: MAX_QUEUED,
    maxQueuedBytes: MAX_QUEUED_BYTES,
    // The batch an Output commits took what was pending.
    pending: command._tag === "Output" || sim.running !== worker.turn ? [] : sim.pending,
    headContent: isDraining === undefined && mayDequeue(before, command) ? head?.content : undefined
  }
  const snapshot = structuredClone(before)
  const decided = decide(before, command, context)
  ok("decide is pure", JSON.stringify(before) === JSON.stringify(snapshot))

  // --- refusals
  const refusal = expectedRefusal(before, command, context)
  if (Either.isLeft(decided)) {
    ok("refusals", decided.left._tag === refusal, () => `${command._tag} refused ${decided.left._tag}, not ${refusal}`)
    if (refusal === "Unavailable") ok("refusals: draining's own Unavailable", decided.left === isDraining)
    const { left } = decided
    sim.seen.add(
      left._tag !== "Busy"
        ? `refused:${left._tag}`
        : left.message.includes("bytes")
        ? "refused:Busy (bytes queued)"
        : left.message.includes("queued")
        ? "refused:Busy (queue full)"
        : "refused:Busy"
    )
    // A refusal changes nothing: the simulation keeps the state it had.
    return
  }
  ok("refusals", refusal === undefined, () => `${command._tag} accepted; expected ${refusal}`)
  const plan: Plan<unknown> = decided.right
  const after = plan.state
  const change = plan.change

  if (plan.deletes) {
    ok("delete only of a stopped or failed Worker", worker.status === "stopped" || worker.status === "failed")
    ok("delete changes nothing else", change === undefined && plan.events.length === 0 && plan.starts === undefined)
    sim.deleted = true
    sim.seen.add("deleted")
    return
  }

  const stale = (command._tag === "Output" || command._tag === "TurnEnd") &&
    !(busy && command.turn === worker.turn)
  if (stale) {
    ok("a stale turn's output or end is ignored", change === undefined, () => show(command))
    sim.seen.add("stale ignored")
  }
  if (change === undefined) {
    ok(
      "no change, nothing happens",
      show(after) === show(before) && plan.events.length === 0 && plan.starts === undefined && !plan.endsTurn &&
        plan.closed === undefined
    )
    return
  }

  // --- seqs contiguous
  ok("change.worker is the plan's Worker", show(change.worker) === show(after.worker))
  change.entries.forEach((entry, i) => {
    ok("seqs contiguous: entries continue from lastSeq", entry.seq === worker.lastSeq + i + 1, () => show(entry))
    ok("entries are written at the context's time", entry.at === context.at)
  })
  sim.transcript.push(...change.entries)
  ok(
    "seqs contiguous: the transcript is 1..n",
    sim.transcript.every((entry, i) => entry.seq === i + 1),
    () => show(sim.transcript.map((entry) => entry.seq))
  )
  ok(
    "seqs contiguous: lastSeq is the last entry's",
    after.worker.lastSeq === sim.transcript.length,
    () => `${after.worker.lastSeq} vs ${sim.transcript.length}`
  )

  // --- one outcome per started turn, one turn at a time
  const prevRunning = sim.running
  let endedHere: TranscriptEntry | undefined
  let startedHere: TranscriptEntry | undefined
  const pendingSeen: Array<string> = []
  for (const entry of change.entries) {
    ok("once a turn has ended, no entry carries its number", !sim.ended.has(entry.turn), () => show(entry))
    if (entry.role === "runtime") {
      ok("runtime entries carry an outcome", entry.outcome !== undefined, () => show(entry))
      if (prevRunning === undefined) {
        ok(
          "a stop on an idle Worker records turn 0",
          entry.turn === 0 && entry.outcome === "stopped",
          () => show(entry)
        )
      } else {
        ok(
          "the outcome is the running turn's",
          entry.turn === prevRunning && endedHere === undefined,
          () => show(entry)
        )
        ok("its outcome comes before the new turn's input", startedHere === undefined)
        sim.outcomes.set(entry.turn, (sim.outcomes.get(entry.turn) ?? 0) + 1)
        sim.ended.add(entry.turn)
        endedHere = entry
      }
    } else if (entry.role === "worker") {
      ok("output belongs to the running turn", entry.turn === prevRunning && endedHere === undefined, () => show(entry))
      ok(
        "output is recorded under the turn that emitted it",
        entry.content.startsWith(`t${entry.turn}.`),
        () => show(entry)
      )
      pendingSeen.push(entry.content)
    } else {
      ok("one input starts one turn", startedHere === undefined && entry.turn === worker.turn + 1, () => show(entry))
      ok("an input starts a new turn", !sim.started.has(entry.turn))
      sim.started.add(entry.turn)
      startedHere = entry
    }
  }
  ok(
    "one outcome per started turn: at most one",
    [...sim.outcomes.values()].every((count) => count === 1),
    () => show([...sim.outcomes])
  )
  if (endedHere !== undefined && command._tag !== "Output") {
    // What the turn emitted and no commit took is recorded before its end, in order.
    ok(
      "pending output is recorded before the turn's end",
      show(pendingSeen) === show(sim.pending),
      () => `${show(pendingSeen)} vs ${show(sim.pending)}`
    )
  }
  if (command._tag === "Output") {
    ok("output records the batch", show(pendingSeen) === show(command.lines))
    sim.pending = []
  }
  if (endedHere !== undefined) sim.pending = []
  sim.running = startedHere?.turn ?? (endedHere === undefined ? prevRunning : undefined)

  ok(
    "exactly one turn at a time: busy iff a turn runs",
    (after.worker.status === "busy") === (sim.running !== undefined) &&
      (sim.running === undefined || after.worker.turn === sim.running),
    () => `${after.worker.status} turn ${after.worker.turn}, running ${sim.running}`
  )
  ok(
    "one outcome per started turn: a turn not running has exactly one",
    [...sim.started].every((turn) => turn === sim.running || sim.outcomes.get(turn) === 1),
    () => show({ started: [...sim.started], outcomes: [...sim.outcomes], running: sim.running })
  )
  ok(
    "starts iff a new turn runs: busy with turn + 1",
    (plan.starts !== undefined) === (startedHere !== undefined) &&
      (plan.starts === undefined ||
        (after.worker.status === "busy" && after.worker.turn === worker.turn + 1 &&
          startedHere?.content === plan.starts.content && startedHere.role === plan.starts.kind)),
    () => show({ starts: plan.starts, worker: after.worker })
  )
  ok("the turn number moves only when a turn starts", after.worker.turn === worker.turn + (startedHere ? 1 : 0))
  ok(
    "a turn started while one ran has ended the old one",
    !(busy && startedHere !== undefined) || endedHere !== undefined
  )
  ok(
    "endsTurn: the running turn ended by anything but its own end",
    plan.endsTurn === (endedHere !== undefined && command._tag !== "TurnEnd"),
    () => `endsTurn ${plan.endsTurn}`
  )
  ok(
    "terminal stays terminal",
    !(worker.status === "stopped" || worker.status === "failed") || after.worker.status === "stopped",
    () => `${worker.status} -> ${after.worker.status}`
  )

  // --- the outcome entry says what ended and why, and how many queued inputs it dropped
  const end = endOf(command)
  const outcomeEntry = change.entries.find((entry) => entry.role === "runtime")
  if (outcomeEntry !== undefined) {
    const entry = outcomeEntry
    sim.seen.add(`outcome:${entry.outcome}${prevRunning === undefined ? " (idle)" : ""}`)
    const dropped = end.drops ? sim.queue.length : 0
    const base = end.reason === undefined || end.reason === "" ? `${entry.outcome}` : `${entry.outcome}: ${end.reason}`
    const says = dropped === 0 ? base : `${base} (${dropped} queued input${dropped === 1 ? "" : "s"} dropped)`
    ok("the outcome entry says what happened", entry.content === says, () => `${show(entry)} vs ${says}`)
  }

  // --- the turn records
  const records = change.turns ?? []
  const expected: Array<Turn> = []
  if (endedHere?.outcome !== undefined) {
    const running = sim.turns.get(endedHere.turn)
    ok("a running turn has a record", running !== undefined && running.status === "running")
    if (running !== undefined) {
      expected.push({
        ...running,
        status: endedHere.outcome,
        lastSeq: endedHere.seq,
        endedAt: context.at,
        reason: end.reason ?? null
      })
    }
  }
  if (startedHere !== undefined) {
    expected.push({
      workerId: worker.id,
      turn: startedHere.turn,
      status: "running",
      inputSeq: startedHere.seq,
      lastSeq: startedHere.seq,
      startedAt: context.at,
      endedAt: null,
      reason: null,
      usage: null
    })
  }
  ok(
    "the turn records: closed with the outcome and its seq, started running at its input",
    show(records) === show(expected),
    () => `${show(records)} vs ${show(expected)}`
  )
  ok(
    "the closed record is the plan's",
    show(plan.closed) === show(endedHere === undefined ? undefined : records[0]),
    () => show(plan.closed)
  )
  for (const record of records) sim.turns.set(record.turn, record)
  ok(
    "latest is the last turn's record",
    after.worker.turn === 0 || show(after.latest) === show(sim.turns.get(after.worker.turn))
  )

  // --- queue order
  const dequeue = change.dequeue ?? []
  ok(
    "dequeue ids are ids that were queued",
    dequeue.every((id) => sim.queue.some((input) => input.id === id)) && new Set(dequeue).size === dequeue.length,
    () => `${show(dequeue)} of ${show(sim.queue.map((input) => input.id))}`
  )
  if (change.enqueue !== undefined) {
    const { enqueue } = change
    ok("enqueue takes the command's input", command._tag === "Input" && command.content === enqueue.content)
    ok(
      "queued ids increase",
      sim.queue.every((input) => input.id < enqueue.id),
      () => `${enqueue.id} after ${show(sim.queue.map((input) => input.id))}`
    )
    if (command._tag === "Input") {
      sim.queue.push({ id: enqueue.id, content: enqueue.content, kind: enqueue.kind, bytes: command.bytes })
      sim.enqueued.push(enqueue.content)
    }
  }
  if (startedHere !== undefined && command._tag !== "Input") {
    const first = sim.queue[0]
    ok(
      "queue order: a queued turn starts with the queue's head",
      first !== undefined && dequeue.includes(first.id) && startedHere.content === first.content &&
        startedHere.role === first.kind,
      () => `${show(startedHere)} vs head ${show(first)}`
    )
    sim.fromQueue.push(startedHere.content)
    sim.seen.add("queued turn started")
  }
  if (command._tag === "Input") ok("an input dequeues nothing", dequeue.length === 0)
  sim.queue = sim.queue.filter((input) => !dequeue.includes(input.id))
  ok(
    "queue order: queued inputs start in the order they were queued",
    isSubsequence(sim.fromQueue, sim.enqueued),
    () => `${show(sim.fromQueue)} of ${show(sim.enqueued)}`
  )
  ok(
    "queue order: decide's queue is the store's",
    show(after.queue.map((input) => [input.id, input.kind, input.bytes])) ===
      show(sim.queue.map((input) => [input.id, input.kind, input.bytes])),
    () => `${show(after.queue)} vs ${show(sim.queue)}`
  )
  ok("worker.queued is the queue's length", after.worker.queued === sim.queue.length)
  ok("the queue stays within maxQueued", sim.queue.length <= MAX_QUEUED)
  ok(
    "a stopped or failed Worker has no queue",
    !(after.worker.status === "stopped" || after.worker.status === "failed") || sim.queue.length === 0
  )

  // --- events: the entries, in order, then the Worker when its status or queue changed
  const changed = worker.status !== after.worker.status || worker.queued !== after.worker.queued
  ok(
    "events: each entry, then the Worker if its status or queue changed",
    show(plan.events) === show([
      ...change.entries.map((entry) => ({ type: "entry", entry })),
      ...(changed ? [{ type: "worker", worker: after.worker }] : [])
    ]),
    () => show(plan.events)
  )

  if (change.enqueue !== undefined) sim.seen.add("enqueued")
  if (command._tag === "Resume" && startedHere !== undefined) sim.seen.add("resumed")
  if (busy && startedHere !== undefined) sim.seen.add("interrupted by new input")
  if (endedHere !== undefined && pendingSeen.length > 0 && command._tag !== "Output") sim.seen.add("pending recorded")
  sim.seen.add(`status:${after.worker.status}`)
  sim.state = after
}

const run = (sequence: ReadonlyArray<Step>): Sim => {
  const sim = newSim()
  for (const [i, step] of sequence.entries()) {
    if (sim.deleted) break
    play(sim, step, i)
  }
  return sim
}

// --- the properties ----------------------------------------------------------

describe("decide", () => {
  it.prop(
    "keeps every invariant of a Worker through generated command sequences",
    { sequence: steps },
    ({ sequence }) => {
      run(sequence)
    },
    { fastCheck: { numRuns: 300 } }
  )

  it("the generator reaches every case the properties speak of", () => {
    const seen = new Set<string>()
    for (const sequence of fc.sample(steps, { numRuns: 300, seed: 42 })) {
      for (const what of run(sequence).seen) seen.add(what)
    }
    expect([...seen].sort()).toEqual(expect.arrayContaining([
      "deleted",
      "enqueued",
      "interrupted by new input",
      "outcome:cancelled",
      "outcome:completed",
      "outcome:failed",
      "outcome:interrupted",
      "outcome:stopped",
      "outcome:stopped (idle)",
      "pending recorded",
      "queued turn started",
      "refused:Busy",
      "refused:Busy (bytes queued)",
      "refused:Busy (queue full)",
      "resumed",
      "stale ignored",
      "refused:Unavailable",
      "refused:Unsupported",
      "status:busy",
      "status:failed",
      "status:idle",
      "status:stopped"
    ]))
  })
})

// --- examples ----------------------------------------------------------------

const idle: WorkerState = { worker: idleWorker, queue: [], latest: undefined }

const contextAt = (i: number, overrides: Partial<Context> = {}): Context => ({
  at: atOf(i),
  engine: echo,
  draining: undefined,
  maxQueued: MAX_QUEUED,
  maxQueuedBytes: MAX_QUEUED_BYTES,
  pending: [],
  headContent: undefined,
  ...overrides
})

const input = (content: string, ifBusy: IfBusy = "reject"): Command => ({
  _tag: "Input",
  content,
  kind: "user",
  ifBusy,
  bytes: content.length
})

/** The plan, or the test fails with the refusal. */
const planOf = (decided: Either.Either<Plan<unknown>, Refusal>): Plan<unknown> =>
  Either.getOrThrowWith(decided, (refusal) => new Error(`refused: ${refusal._tag}: ${refusal.message}`))

/** The refusal, or the test fails. */
const refusalOf = (decided: Either.Either<Plan<unknown>, Refusal>): Refusal =>
  Either.getOrThrowWith(Either.flip(decided), () => new Error("accepted"))

describe("decide, by example", () => {
  it("the interrupt policy ends the running turn (cancelled: interrupted by new input) and starts the new one in one change", () => {
    const first = planOf(decide(idle, input("a"), contextAt(1)))
    const second = planOf(decide(first.state, input("b", "interrupt"), contextAt(2, { pending: ["partial"] })))
    const at = atOf(2)
    expect(second.change?.entries).toEqual([
      { seq: 2, at, role: "worker", content: "partial", turn: 1 },
      { seq: 3, at, role: "runtime", content: "cancelled: interrupted by new input", turn: 1, outcome: "cancelled" },
      { seq: 4, at, role: "user", content: "b", turn: 2 }
    ])
    expect(second.change?.turns).toEqual([
      {
        workerId: idleWorker.id,
        turn: 1,
        status: "cancelled",
        inputSeq: 1,
        lastSeq: 3,
        startedAt: atOf(1),
        endedAt: at,
        reason: "interrupted by new input",
        usage: null
      },
      {
        workerId: idleWorker.id,
        turn: 2,
        status: "running",
        inputSeq: 4,
        lastSeq: 4,
        startedAt: at,
        endedAt: null,
        reason: null,
        usage: null
      }
    ])
    expect(second.endsTurn).toBe(true)
    expect(second.closed?.turn).toBe(1)
    expect(second.starts).toEqual({ content: "b", kind: "user" })
    expect(second.state.worker).toMatchObject({ status: "busy", turn: 2, lastSeq: 4 })
    // busy before and after: no Worker event, only the entries.
    expect(second.events.map((event) => event.type)).toEqual(["entry", "entry", "entry"])
  })

  it("an input queued under enqueue starts when the turn before it ends, in the same change, with the store's content", () => {
    const first = planOf(decide(idle, input("a"), contextAt(1)))
    const queued = planOf(decide(first.state, input("b", "enqueue"), contextAt(2)))
    expect(queued.result).toMatchObject({ queued: true, position: 1 })
    expect(queued.change).toMatchObject({ entries: [], enqueue: { id: 2, content: "b", kind: "user" } })
    const end: Command = { _tag: "TurnEnd", turn: 1, failure: undefined }
    expect(mayDequeue(queued.state, end)).toBe(true)
    const ended = planOf(decide(queued.state, end, contextAt(3, { headContent: "b (from the store)" })))
    expect(ended.change?.entries.map((entry) => [entry.seq, entry.role, entry.content, entry.turn])).toEqual([
      [2, "runtime", "completed", 1],
      [3, "user", "b (from the store)", 2]
    ])
    expect(ended.change?.dequeue).toEqual([2])
    expect(ended.endsTurn).toBe(false)
    expect(ended.state.queue).toEqual([])
    expect(ended.state.worker).toMatchObject({ status: "busy", turn: 2, queued: 0 })
  })

  it("stop on an idle Worker records a runtime entry of turn 0; stopping again changes nothing", () => {
    const stopped = planOf(decide(idle, { _tag: "Stop", reason: undefined }, contextAt(1)))
    expect(stopped.change?.entries).toEqual([
      { seq: 1, at: atOf(1), role: "runtime", content: "stopped", turn: 0, outcome: "stopped" }
    ])
    expect(stopped.change?.turns).toEqual([])
    expect(stopped.state.worker).toMatchObject({ status: "stopped", stopReason: "stopped", turn: 0 })
    const again = planOf(decide(stopped.state, { _tag: "Stop", reason: "bye" }, contextAt(2)))
    expect(again.change).toBeUndefined()
    expect(again.state).toEqual(stopped.state)
  })

  it("cancel with clearQueue ends the turn and drops the queue, saying how many", () => {
    let state = planOf(decide(idle, input("a"), contextAt(1))).state
    state = planOf(decide(state, input("b", "enqueue"), contextAt(2))).state
    state = planOf(decide(state, input("c", "enqueue"), contextAt(3))).state
    const cancelled = planOf(decide(state, { _tag: "Cancel", reason: "why", clearQueue: true }, contextAt(4)))
    expect(cancelled.change?.entries.map((entry) => entry.content)).toEqual([
      "cancelled: why (2 queued inputs dropped)"
    ])
    expect(cancelled.change?.dequeue).toEqual([2, 3])
    expect(cancelled.result).toMatchObject({ cancelled: true })
    expect(cancelled.state.worker).toMatchObject({ status: "idle", queued: 0 })
  })

  it("a fatal failure fails the Worker and drops its queue; then input is Unsupported and delete is allowed", () => {
    let state = planOf(decide(idle, input("a"), contextAt(1))).state
    state = planOf(decide(state, input("b", "enqueue"), contextAt(2))).state
    const fatal: Command = { _tag: "TurnEnd", turn: 1, failure: { reason: "cannot continue", fatal: true } }
    const failed = planOf(decide(state, fatal, contextAt(3, { headContent: "b" })))
    expect(failed.change?.entries.map((entry) => entry.content)).toEqual([
      "failed: cannot continue (1 queued input dropped)"
    ])
    expect(failed.starts).toBeUndefined()
    expect(failed.state.worker).toMatchObject({ status: "failed", queued: 0 })
    expect(refusalOf(decide(failed.state, input("c"), contextAt(4)))._tag).toBe("Unsupported")
    expect(planOf(decide(failed.state, { _tag: "Delete" }, contextAt(5))).deletes).toBe(true)
    expect(refusalOf(decide(idle, { _tag: "Delete" }, contextAt(5)))._tag).toBe("Unsupported")
  })

  it("while the runtime drains, input gets its Unavailable and a turn's end leaves the queue waiting", () => {
    let state = planOf(decide(idle, input("a"), contextAt(1))).state
    state = planOf(decide(state, input("b", "enqueue"), contextAt(2))).state
    expect(refusalOf(decide(state, input("c", "enqueue"), contextAt(3, { draining })))).toBe(draining)
    const ended = planOf(decide(state, { _tag: "TurnEnd", turn: 1, failure: undefined }, contextAt(4, { draining })))
    expect(ended.starts).toBeUndefined()
    expect(ended.state.worker).toMatchObject({ status: "idle", queued: 1 })
    // After the restart, Resume starts it.
    const resumed = planOf(decide(ended.state, { _tag: "Resume" }, contextAt(5, { headContent: "b" })))
    expect(resumed.starts).toEqual({ content: "b", kind: "user" })
    expect(resumed.state.worker).toMatchObject({ status: "busy", turn: 2, queued: 0 })
  })

  it("a stale turn's output or end changes nothing", () => {
    const first = planOf(decide(idle, input("a"), contextAt(1)))
    const second = planOf(decide(first.state, input("b", "interrupt"), contextAt(2)))
    expect(planOf(decide(second.state, { _tag: "Output", turn: 1, lines: ["late"] }, contextAt(3))).change)
      .toBeUndefined()
    expect(planOf(decide(second.state, { _tag: "TurnEnd", turn: 1, failure: undefined }, contextAt(3))).change)
      .toBeUndefined()
  })
})

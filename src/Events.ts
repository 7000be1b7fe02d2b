/**
 * Following a Worker (`Runtime.events`): the Worker now, then its entries
 * after `after` from the store, then live. The follower registers before it
 * reads the Worker, in the same synchronous step, so every commit after that
 * read reaches its buffer and every entry before it is in the store: no gap.
 * Entries it already emitted are skipped by seq: no duplicate. A follower that
 * falls behind its bounded buffer catches up from the store by seq. Deltas
 * (model text as it streams) are live only: a follower gets those published
 * after it registered, and one that falls behind loses those it dropped (the
 * turn's `worker` entry holds their text).
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Worker, WorkerEvent } from "./Domain.js"
import type { Unavailable } from "./Errors.js"
import type { Listener } from "./Followers.js"
import { asUnavailable, type RuntimeStoreService } from "./RuntimeStore.js"

/** What a follower reads of the Worker's actor: the Worker as it is now. */
export interface Followed {
  readonly worker: Worker
}

/** Entries read from the store per step of a catch-up, and their content's UTF-8 bytes at most (one entry at least). */
const CATCH_UP_PAGE = 256
const CATCH_UP_BYTES = 1024 * 1024

const isTerminal = (worker: Worker) => worker.status === "stopped" || worker.status === "failed"

/**
 * A follower's next events: a chunk, or `None` at the end, or a failure
 * (`Unavailable`: the store, during a catch-up). Each pull takes what is
 * there, or waits for it.
 */
export type FollowPull = Effect.Effect<Chunk.Chunk<WorkerEvent>, Option.Option<Unavailable>>

/** A follower opened by `openFollow`. */
export interface Follow {
  readonly pull: FollowPull
  /** Whether `pull` would now wait for the Worker's next event (nothing to read, nothing to catch up). */
  readonly idle: () => boolean
  /** Calls `callback` once, when something next arrives (replacing an earlier one): a wait without a fiber. */
  readonly whenReady: (callback: () => void) => void
}

/** What registers a follower (released with the scope), reads the Worker in the same step and resolves `after`. */
export type FollowOpen<E> = Effect.Effect<
  { readonly actor: Followed; readonly listener: Listener; readonly snapshot: Worker; readonly after: number },
  E,
  Scope.Scope
>

/**
 * One `unwrapScoped` around one `repeatEffectChunkOption` (the snapshot is
 * its first pull): each stream stage is a channel executor per follower, and
 * an idle follower keeps all of them.
 */
export const followWorker = <E>(
  store: RuntimeStoreService,
  open: FollowOpen<E>
): Stream.Stream<WorkerEvent, Unavailable | E> =>
  Stream.unwrapScoped(Effect.map(openFollow(store, open), (follow) => Stream.repeatEffectChunkOption(follow.pull)))

/**
 * The follower as a pull, without a Stream around it: for a server that
 * writes each chunk as it comes (the events endpoint), one fiber per pull
 * and nothing else per follower. The follower is registered in the scope
 * and unregistered when it closes.
 */
export const openFollow = <E>(
  store: RuntimeStoreService,
  /**
   * Registers the follower (released with the scope), reads the Worker in
   * the same synchronous step (`snapshot`), and resolves `after`, checked.
   */
  open: FollowOpen<E>
): Effect.Effect<Follow, E, Scope.Scope> =>
  Effect.gen(function*() {
    const { actor, after, listener, snapshot } = yield* open
    let delivered = after
    // Entries up to this seq are read from the store before anything live.
    let catchUpTo = snapshot.lastSeq
    // The Worker to emit once caught up (after an overflow: its state then).
    let pendingWorker: Worker | undefined = undefined
    let done = false

    const fromStore = Effect.gen(function*() {
      const entries = yield* store.transcript(snapshot.id, {
        after: delivered,
        limit: Math.min(CATCH_UP_PAGE, catchUpTo - delivered),
        maxBytes: CATCH_UP_BYTES
      }).pipe(asUnavailable)
      // The Worker was deleted meanwhile: its transcript is gone.
      if (entries.length === 0) {
        catchUpTo = delivered
        return []
      }
      delivered = entries[entries.length - 1]!.seq
      return entries.map((entry): WorkerEvent => ({ type: "entry", entry }))
    })

    const live = Effect.gen(function*() {
      for (;;) {
        if (listener.overflowed) {
          // It fell behind: catch up from the store to where the Worker is now.
          listener.overflowed = false
          catchUpTo = actor.worker.lastSeq
          pendingWorker = actor.worker
          return []
        }
        if (listener.events.length === 0) {
          if (listener.ended) {
            done = true
            return []
          }
          listener.wake.unsafeClose()
          yield* listener.wake.await
          continue
        }
        const out: Array<WorkerEvent> = []
        listener.chars = 0
        for (const event of listener.events.splice(0)) {
          if (event.type === "entry") {
            if (event.entry.seq <= delivered) continue
            delivered = event.entry.seq
            out.push(event)
          } else if (event.type === "delta") {
            out.push(event)
          } else {
            out.push(event)
            if (isTerminal(event.worker) && delivered >= event.worker.lastSeq) {
              done = true
              break
            }
          }
        }
        return out
      }
    })

    const step: Effect.Effect<Option.Option<Chunk.Chunk<WorkerEvent>>, Unavailable> = Effect.gen(function*() {
      for (;;) {
        if (done) return Option.none()
        if (delivered < catchUpTo) {
          const events = yield* fromStore
          if (events.length > 0) return Option.some(Chunk.fromIterable(events))
          continue
        }
        if (pendingWorker !== undefined) {
          const worker = pendingWorker
          pendingWorker = undefined
          if (isTerminal(worker)) done = true
          return Option.some(Chunk.of<WorkerEvent>({ type: "worker", worker }))
        }
        const events = yield* live
        if (events.length > 0) return Option.some(Chunk.fromIterable(events))
      }
    })

    // A stopped or failed Worker changes no more: its entries, then the end.
    const terminal = isTerminal(snapshot)
    const rest: Effect.Effect<Option.Option<Chunk.Chunk<WorkerEvent>>, Unavailable> = terminal
      ? Effect.suspend(() =>
        delivered < catchUpTo
          ? Effect.map(fromStore, (events) => Option.some(Chunk.fromIterable(events)))
          : Effect.succeed(Option.none())
      )
      : step
    let first = true
    const pull: FollowPull = Effect.suspend(() => {
      if (!first) return rest
      first = false
      return Effect.succeed(Option.some(Chunk.of<WorkerEvent>({ type: "worker", worker: snapshot })))
    }).pipe(
      Effect.mapError(Option.some),
      Effect.flatMap(Option.match({
        onNone: () => Effect.fail(Option.none<Unavailable>()),
        onSome: (chunk) => Effect.succeed(chunk)
      }))
    )
    return {
      pull,
      idle: () =>
        !first && !terminal && !done && delivered >= catchUpTo && pendingWorker === undefined &&
        listener.events.length === 0 && !listener.overflowed && !listener.ended,
      whenReady: (callback) => {
        listener.onWake = callback
      }
    }
  })

/**
 * Cluster mode's foundation over `@effect/cluster`'s in-memory runner: the
 * Runtime's behaviour suites through `ClusterRuntime` and the Worker entity,
 * redelivery of an input, a Worker left busy by a lost runner, a follow
 * resumed by seq, and the shard count recorded in the database.
 */
import { PersistenceError } from "@effect/cluster/ClusterError"
import * as EntityId from "@effect/cluster/EntityId"
import * as MessageStorage from "@effect/cluster/MessageStorage"
import * as RunnerAddress from "@effect/cluster/RunnerAddress"
import * as RunnerHealth from "@effect/cluster/RunnerHealth"
import * as Runners from "@effect/cluster/Runners"
import * as RunnerStorage from "@effect/cluster/RunnerStorage"
import * as ShardId from "@effect/cluster/ShardId"
import * as Sharding from "@effect/cluster/Sharding"
import * as ShardingConfig from "@effect/cluster/ShardingConfig"
import * as SingleRunner from "@effect/cluster/SingleRunner"
import * as Snowflake from "@effect/cluster/Snowflake"
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import {
  Chunk,
  Clock,
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Metric,
  Option,
  Scope,
  Stream,
  TestClock
} from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

import { ClusterRuntimeFromStore, type ClusterRuntimeOptions, followAcross } from "../src/cluster/ClusterRuntime.js"
import { checkShardCount, SHARD_COUNT, ShardCountMismatch } from "../src/cluster/ShardCount.js"
import { FAILOVER_REASON, SHARD_GROUP, WorkerEntity } from "../src/cluster/WorkerEntity.js"
import {
  makeMemoryStore,
  MemoryStoreLive,
  type Profiles,
  Runtime,
  RuntimeControl,
  type RuntimeOptions,
  RuntimeStore,
  type RuntimeStoreService,
  TurnOutput,
  type WorkerEvent,
  WorkerId,
  type WorkerInput
} from "../src/index.js"
import * as Metrics from "../src/Metrics.js"
import { busySuite } from "./support/busySuite.js"
import { SLOW_MS, suiteProfiles } from "./support/engines.js"
import { eventually, eventuallyLive, HANG_MS, waitForSleeps, within } from "./support/eventually.js"
import { followSuite } from "./support/followSuite.js"
import { freePort } from "./support/postgres.js"
import { runtimeSuite } from "./support/runtimeSuite.js"
import { entry, queuedInput, turnRecord, worker } from "./support/storeSuite.js"

/** One in-memory runner holding every shard: `@effect/cluster`'s TestRunner, with our shard count. */
const testRunner = Sharding.layer.pipe(
  Layer.provideMerge(Runners.layerNoop),
  Layer.provideMerge(MessageStorage.layerMemory),
  Layer.provide([RunnerStorage.layerMemory, RunnerHealth.layerNoop]),
  Layer.provide(ShardingConfig.layer({ shardsPerGroup: SHARD_COUNT }))
)

/** The cluster's machinery on real time (it polls and retries); the Runtime on the test's clock. */
const onRealTime = <A, E>(layer: Layer.Layer<A, E>) =>
  Layer.scopedContext(Effect.withClock(Layer.build(layer), Clock.make()))

const clusterOver =
  (store: Layer.Layer<RuntimeStore>, cluster: ClusterRuntimeOptions = {}) => (options: RuntimeOptions) =>
    ClusterRuntimeFromStore(options, cluster).pipe(Layer.provideMerge(onRealTime(testRunner)), Layer.provide(store))

const clusterRuntime = (options: RuntimeOptions) => clusterOver(MemoryStoreLive())(options)

runtimeSuite("Runtime (cluster: one test runner, memory store)", clusterRuntime)
followSuite("Following (cluster: one test runner, memory store)", clusterRuntime)
busySuite("Busy policy (cluster: one test runner, memory store)", clusterRuntime)

const realTime = Clock.make()

const userEntries = (workerId: WorkerId) =>
  Effect.flatMap(Runtime, (runtime) =>
    Effect.map(
      runtime.transcript(workerId, { limit: 1000 }),
      (page) => page.entries.filter((entry) => entry.role === "user").map((entry) => entry.content)
    ))

const idle = (workerId: WorkerId) =>
  Effect.flatMap(
    Runtime,
    (runtime) => eventually(runtime.get(workerId), (worker) => worker.status === "idle", "the Worker idle")
  )

const seqsOf = (events: ReadonlyArray<WorkerEvent>) =>
  events.map((event) =>
    event.type === "entry" ? event.entry.seq : event.type === "worker" ? event.worker.status : "delta"
  )

describe("Worker entity", () => {
  it.effect("an input delivered again (its reply lost) is recorded once", () =>
    Effect.gen(function*() {
      const runtime = yield* Runtime
      const driver = yield* MessageStorage.MemoryDriver
      const sharding = yield* Sharding.Sharding
      const created = yield* runtime.create({})
      yield* runtime.input(created.id, { content: "once" })
      yield* idle(created.id)
      const stored = Array.from(driver.requests.values()).filter((request) => request.envelope.tag === "Input")
      expect(stored).toHaveLength(1)
      const requestId = stored[0]!.envelope.requestId
      const replies = () => driver.requests.get(requestId)?.replies.length ?? 0
      expect(replies()).toBe(1)
      for (let delivery = 2; delivery <= 3; delivery++) {
        // As after a crash between the store's commit and the cluster's reply:
        // no reply stored, so the message is delivered again.
        yield* driver.encoded.clearReplies(Snowflake.Snowflake(requestId))
        expect(replies()).toBe(0)
        yield* sharding.pollStorage
        yield* eventually(Effect.sync(replies), (count) => count === 1, `delivery ${delivery} answered`)
      }
      yield* idle(created.id)
      expect(yield* userEntries(created.id)).toEqual(["once"])
      expect((yield* runtime.get(created.id)).turn).toBe(1)
    }).pipe(Effect.provide(clusterRuntime({ profiles: suiteProfiles }))))

  it.effect("an input sent again with its id is answered as the first time and recorded once", () =>
    Effect.gen(function*() {
      const runtime = yield* Runtime
      const created = yield* runtime.create({})
      const client = (yield* WorkerEntity.client)(created.id)
      const send = client.Input({ inputId: "input-1", input: { content: "twice sent" } }).pipe(
        Effect.withClock(realTime)
      )
      const first = yield* send
      const second = yield* send
      expect(second).toEqual(first)
      yield* idle(created.id)
      expect(yield* userEntries(created.id)).toEqual(["twice sent"])
    }).pipe(Effect.provide(clusterRuntime({ profiles: suiteProfiles }))))

  /** What a runner killed mid-turn leaves behind: busy, its turn running, an input queued. */
  const leftByLostRunner = (store: RuntimeStoreService, id: string) =>
    Effect.gen(function*() {
      yield* store.insertWorker(worker(id), undefined)
      yield* store.commit({
        worker: worker(id, { status: "busy", turn: 1, lastSeq: 1, queued: 1 }),
        entries: [entry(1, { role: "user", content: "hello" })],
        turns: [turnRecord(id, 1)],
        enqueue: queuedInput(1)
      })
    })

  /** The turn recorded interrupted by the failover, then the queued input run as turn 2. */
  const expectRepaired = (workerId: WorkerId) =>
    Effect.gen(function*() {
      const runtime = yield* Runtime
      const after = yield* runtime.get(workerId)
      expect(after).toMatchObject({ status: "idle", turn: 2, queued: 0 })
      const { entries } = yield* runtime.transcript(workerId, { limit: 100 })
      expect(entries.length).toBe(after.lastSeq)
      expect(entries[1]).toMatchObject({ seq: 2, role: "runtime", turn: 1, outcome: "interrupted" })
      expect(entries[1]!.content).toContain(FAILOVER_REASON)
      expect(entries[2]).toMatchObject({ seq: 3, role: "user", turn: 2, content: "queued 1" })
      expect(yield* runtime.turn(workerId, 1)).toMatchObject({ status: "interrupted" })
      expect(yield* runtime.turn(workerId, 2)).toMatchObject({ status: "completed" })
    })

  it.effect("the runner that takes the shard of a lost runner's Worker repairs it on its own", () =>
    Effect.gen(function*() {
      const store = makeMemoryStore()
      const workerId = WorkerId.make("w-lost")
      yield* leftByLostRunner(store, workerId)
      yield* Effect.gen(function*() {
        // Nothing calls it: watched through the store only.
        yield* eventually(
          store.getWorker(workerId),
          (stored) => stored?.worker.status === "idle" && stored.worker.turn === 2,
          "the Worker repaired and its queued input run"
        )
        yield* expectRepaired(workerId)
      }).pipe(Effect.provide(clusterOver(Layer.succeed(RuntimeStore, store))({ profiles: suiteProfiles })))
    }))

  it.effect("a lost runner's Worker is repaired by its first call, before the call is answered", () =>
    Effect.gen(function*() {
      const store = makeMemoryStore()
      const workerId = WorkerId.make("w-lost")
      yield* leftByLostRunner(store, workerId)
      yield* Effect.gen(function*() {
        const runtime = yield* Runtime
        // Its entity adopts it before it takes the call: turn 1 is over, the queued input is turn 2.
        expect((yield* runtime.get(workerId)).turn).toBe(2)
        yield* eventually(runtime.get(workerId), (worker) => worker.turn === 2 && worker.status === "idle", "turn 2")
        yield* expectRepaired(workerId)
      }).pipe(
        Effect.provide(
          // Shards looked at only once a day: the call comes first.
          clusterOver(Layer.succeed(RuntimeStore, store), { adoptEvery: "1 day" })({ profiles: suiteProfiles })
        )
      )
    }))
})

describe("RuntimeControl of a runner", () => {
  it.effect("offers no shortcut to this runner's actors: HTTP reads and follows go through the routed Runtime", () =>
    Effect.gen(function*() {
      const control = yield* RuntimeControl
      expect(control.peek).toBeUndefined()
      expect(control.follow).toBeUndefined()
      const created = yield* control.create({ idempotencyKey: "k" })
      expect(created.created).toBe(true)
      expect((yield* control.create({ idempotencyKey: "k" })).created).toBe(false)
    }).pipe(Effect.provide(clusterRuntime({ profiles: suiteProfiles }))))
})

describe("a runner's metrics", () => {
  it.effect("follow the shared store's counts, which the other runners change too", () =>
    Effect.gen(function*() {
      const store = makeMemoryStore()
      const at = new Date(0).toISOString()
      const gauge = (runtimeId: string) =>
        Metric.value(Metrics.workers.pipe(Metric.tagged("runtime_id", runtimeId), Metric.tagged("status", "idle")))
      yield* Effect.gen(function*() {
        const info = yield* Effect.flatMap(Runtime, (runtime) => runtime.info)
        expect((yield* gauge(info.runtimeId)).value).toBe(0)
        // Made by another runner: this one hears of it through the store only.
        yield* store.insertWorker({
          id: WorkerId.make("01JDQ5V7M0X4N8B6Z2C9K3F1TQ"),
          runtimeId: info.runtimeId,
          profile: "default",
          status: "idle",
          createdAt: at,
          updatedAt: at,
          turn: 0,
          lastSeq: 0,
          metadata: {},
          queued: 0
        }, undefined)
        yield* eventually(gauge(info.runtimeId), (state) => state.value === 1, "the gauge at the store's count")
      }).pipe(
        Effect.provide(
          clusterOver(Layer.succeed(RuntimeStore, store), { recountEvery: "20 millis" })({ profiles: suiteProfiles })
        )
      )
    }))
})

describe("Worker entity's lifetime", () => {
  it.effect("an entity whose Worker has a turn running is kept while idle ones are let go", () =>
    Effect.gen(function*() {
      const runtime = yield* Runtime
      const sharding = yield* Sharding.Sharding
      const quiet = yield* runtime.create({})
      const working = yield* runtime.create({ profile: "slow" })
      yield* runtime.get(quiet.id)
      yield* runtime.input(working.id, { content: "a long turn" })
      yield* waitForSleeps(1)
      expect(yield* sharding.activeEntityCount).toBe(2)
      // The cluster lets idle entities go every few seconds of real time.
      yield* eventually(sharding.activeEntityCount, (count) => count < 2, "an idle entity let go")
      expect(yield* sharding.activeEntityCount).toBe(1)
      yield* TestClock.adjust(SLOW_MS)
      const ended = yield* eventually(runtime.turn(working.id, 1), (turn) => turn.status !== "running", "turn 1 ended")
      expect(ended.status).toBe("completed")
    }).pipe(Effect.provide(clusterOver(MemoryStoreLive(), { maxIdleTime: "10 millis" })({ profiles: suiteProfiles }))))
})

describe("followAcross", () => {
  const id = WorkerId.make("w-follow")
  const seeded = Effect.gen(function*() {
    const store = makeMemoryStore()
    yield* store.insertWorker(worker(id), undefined)
    yield* store.commit({
      worker: worker(id, { lastSeq: 6, turn: 1 }),
      entries: [1, 2, 3, 4, 5, 6].map((seq) => entry(seq))
    })
    return store
  })
  const entryEvent = (seq: number): WorkerEvent => ({ type: "entry", entry: entry(seq) })
  const workerEvent = (patch: Parameters<typeof worker>[1]): WorkerEvent => ({
    type: "worker",
    worker: worker(id, { lastSeq: 6, turn: 1, ...patch })
  })

  it.effect("resumes after the last seq when a subscription breaks or ends: no gap, no duplicate", () =>
    Effect.gen(function*() {
      const store: RuntimeStoreService = yield* seeded
      const afters: Array<number> = []
      // What the owners answer: one breaks (a failover), the next replays
      // from too far back and skips seq 4 (a volatile stream re-attached),
      // then ends (a handover); the last ends with the Worker stopped.
      const subscriptions = [
        Stream.concat(
          Stream.make(workerEvent({}), entryEvent(1), entryEvent(2)),
          Stream.fail(new PersistenceError({ cause: "runner lost" }))
        ),
        Stream.make(workerEvent({}), entryEvent(1), entryEvent(2), entryEvent(3), entryEvent(5)),
        Stream.make(workerEvent({ status: "stopped" }), entryEvent(6))
      ]
      const events = yield* followAcross(
        store,
        (after) => {
          afters.push(after)
          return subscriptions[afters.length - 1] ?? Stream.die("subscribed once too often")
        },
        () => false,
        id,
        0
      ).pipe(Stream.runCollect)
      expect(seqsOf(Chunk.toReadonlyArray(events))).toEqual(["idle", 1, 2, 3, 4, 5, "stopped", 6])
      expect(afters).toEqual([0, 2, 5])
    }))

  it.effect("ends when the Worker is gone, and passes the first subscription's own errors on", () =>
    Effect.gen(function*() {
      const store = makeMemoryStore()
      const ended = yield* followAcross(store, () => Stream.make(workerEvent({})), () => false, id, 0).pipe(
        Stream.runCollect
      )
      expect(seqsOf(Chunk.toReadonlyArray(ended))).toEqual(["idle"])
    }))
})

describe("on a single runner with SQLite message storage", () => {
  // The cluster's tables and the shard count in one SQLite database; the Runtime's store in memory.
  const runner = (shards: number, database: Layer.Layer<SqlClient.SqlClient, unknown>) =>
    SingleRunner.layer({ shardingConfig: { shardsPerGroup: shards }, runnerStorage: "sql" }).pipe(
      Layer.provide(Layer.effectDiscard(checkShardCount(shards))),
      Layer.provideMerge(database)
    )
  const runtimeOn = (shards: number, database = SqliteClient.layer({ filename: ":memory:" })) =>
    ClusterRuntimeFromStore({ profiles: suiteProfiles }).pipe(
      Layer.provideMerge(onRealTime(runner(shards, database))),
      Layer.provide(MemoryStoreLive())
    )

  it.scoped("a runner whose shard count differs from the database's does not start", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(join(tmpdir(), "cluster-"))),
        (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
      )
      const database = SqliteClient.layer({ filename: join(dir, "cluster.db") })
      yield* Effect.scoped(Layer.build(runtimeOn(SHARD_COUNT, database)))
      const refused = yield* Effect.flip(Effect.scoped(Layer.build(runtimeOn(SHARD_COUNT + 1, database))))
      expect(refused).toBeInstanceOf(ShardCountMismatch)
      // The database's count still starts.
      yield* Effect.scoped(Layer.build(runtimeOn(SHARD_COUNT, database)))
    }))

  it.effect("serves a Worker through persisted messages stored in SQL, and forgets them when it is deleted", () =>
    Effect.gen(function*() {
      const runtime = yield* Runtime
      const created = yield* runtime.create({ profile: "chatty" })
      const accepted = yield* runtime.input(created.id, { content: "hi" })
      expect(accepted.entry).toMatchObject({ seq: 1, role: "user", content: "hi" })
      yield* idle(created.id)
      const stopped = yield* runtime.stop(created.id, { reason: "done" })
      expect(stopped).toMatchObject({ status: "stopped", stopReason: "done" })
      const events = yield* Stream.runCollect(runtime.events(created.id))
      // The input, three lines, the turn's end, the stop.
      expect(seqsOf(Chunk.toReadonlyArray(events))).toEqual(["stopped", 1, 2, 3, 4, 5, 6])
      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql<{ readonly tag: string }>`SELECT tag FROM cluster_messages ORDER BY rowid`
      // Besides the cluster's own (keeping the entity alive during the turn).
      expect(rows.map((row) => row.tag).filter((tag) => !tag.startsWith("Cluster/"))).toEqual(["Input", "Stop"])
      // Deleted, the Worker leaves nothing in the cluster's tables.
      yield* runtime.delete(created.id)
      const left = yield* sql`SELECT tag FROM cluster_messages WHERE entity_id = ${created.id}`
      expect(left).toEqual([])
    }).pipe(Effect.provide(runtimeOn(SHARD_COUNT))))
})

describe("two runners over loopback sockets", () => {
  // What PostgreSQL is for a real cluster: one database for the cluster's
  // tables (SQLite, a file both open) and one Runtime store (shared in memory).
  const fast = {
    shardsPerGroup: SHARD_COUNT,
    shardLockRefreshInterval: "500 millis",
    shardLockExpiration: "2 seconds",
    refreshAssignmentsInterval: "200 millis",
    entityMessagePollInterval: "200 millis",
    runnerHealthCheckInterval: "500 millis",
    // Longer than a hang's deadline: a shutdown that waited for its
    // entities to give up (a follow from the other runner still open on
    // one) fails the test instead of being waited out.
    entityTerminationTimeout: Duration.millis(2 * HANG_MS)
  } as const
  /** The SQLite file of the cluster's tables, in a directory removed with the scope. */
  const clusterFile = Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => mkdtempSync(join(tmpdir(), "cluster-"))),
      (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
    ),
    (dir) => join(dir, "cluster.db")
  )
  const startRunner = (
    port: number,
    file: string,
    store: RuntimeStoreService,
    profiles: Profiles,
    options: RuntimeOptions = {}
  ) =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const runner = NodeClusterSocket.layer({
        storage: "sql",
        shardingConfig: { ...fast, runnerAddress: Option.some(RunnerAddress.make("127.0.0.1", port)) }
      }).pipe(
        Layer.provide(Layer.effectDiscard(checkShardCount(SHARD_COUNT))),
        Layer.provideMerge(SqliteClient.layer({ filename: file }))
      )
      const context = yield* Layer.buildWithScope(
        ClusterRuntimeFromStore({ profiles, ...options }).pipe(
          Layer.provideMerge(runner),
          Layer.provide(Layer.succeed(RuntimeStore, store))
        ),
        scope
      )
      return { scope, runtime: Context.get(context, Runtime), sharding: Context.get(context, Sharding.Sharding) }
    })

  it.scopedLive(
    "a Worker owned by one runner is driven and followed through the other, across a handover of its shard",
    () =>
      Effect.gen(function*() {
        const file = yield* clusterFile
        const store = makeMemoryStore()
        // Turns that end when the test opens the gate (one process: both runners see it).
        const gate = yield* Deferred.make<void>()
        const profiles: Profiles = {
          gated: {
            name: "gated",
            run: (context) =>
              Stream.fromEffect(Effect.as(Deferred.await(gate), TurnOutput.line(`done: ${context.input.content}`)))
          }
        }
        const a = yield* startRunner(yield* freePort, file, store, profiles)
        const b = yield* startRunner(yield* freePort, file, store, profiles)
        const ownedBy = (runner: typeof a, workerId: WorkerId) =>
          runner.sharding.hasShardId(runner.sharding.getShardId(EntityId.make(workerId), SHARD_GROUP))
        const held = (runner: typeof a) =>
          Array.from({ length: SHARD_COUNT }, (_, i) => ShardId.make(SHARD_GROUP, i + 1)).filter((shard) =>
            runner.sharding.hasShardId(shard)
          ).length
        // The shards shared out (B's arrival moves half of A's), none in between.
        yield* eventuallyLive(
          Effect.sync(() => [held(a), held(b)]),
          ([onA, onB]) => onA! > 0 && onB! > 0 && onA! + onB! === SHARD_COUNT,
          "the shards shared between A and B"
        )
        // A Worker made through B is owned by A, sooner or later.
        const onA = yield* eventuallyLive(
          b.runtime.create({ profile: "gated" }),
          (created) => ownedBy(a, created.id) && !ownedBy(b, created.id),
          "a Worker whose shard runner A holds"
        )
        // It ends once the Worker is stopped and every entry is delivered.
        const following = yield* b.runtime.events(onA.id).pipe(Stream.runCollect, Effect.fork)
        const accepted = yield* b.runtime.input(onA.id, { content: "first" })
        expect(accepted).toMatchObject({ queued: false, entry: { seq: 1, content: "first" } })
        const queued = yield* b.runtime.input(onA.id, { content: "second", ifBusy: "enqueue" })
        expect(queued).toMatchObject({ queued: true, position: 1 })
        // A leaves (its turn interrupted, its shards handed over) while B
        // follows one of its Workers, without waiting for that follow; B
        // takes the shards, runs the queued input, and the follow goes on.
        // (Disconnected: a close cannot be interrupted, and the deadline must cut it.)
        yield* Effect.disconnect(Scope.close(a.scope, Exit.void)).pipe(within("runner A shut down"))
        yield* eventuallyLive(Effect.sync(() => ownedBy(b, onA.id)), (owned) => owned, "B holds the Worker's shard")
        yield* eventuallyLive(b.runtime.get(onA.id), (worker) => worker.turn === 2, "the queued input started on B")
        yield* Deferred.succeed(gate, undefined)
        const done = yield* eventuallyLive(
          b.runtime.get(onA.id),
          (worker) => worker.status === "idle" && worker.turn === 2,
          "the queued input run on B"
        )
        expect(done.queued).toBe(0)
        expect(yield* b.runtime.turn(onA.id, 1)).toMatchObject({ status: "interrupted" })
        expect(yield* b.runtime.turn(onA.id, 2)).toMatchObject({ status: "completed" })
        const stopped = yield* b.runtime.stop(onA.id)
        const events = Chunk.toReadonlyArray(yield* Fiber.join(following))
        const entries = events.flatMap((event) => event.type === "entry" ? [event.entry] : [])
        expect(entries.map((entry) => entry.seq)).toEqual(Array.from({ length: stopped.lastSeq }, (_, i) => i + 1))
        expect(entries.filter((entry) => entry.role === "user").map((entry) => entry.content)).toEqual([
          "first",
          "second"
        ])
        yield* Scope.close(b.scope, Exit.void)
      })
  )

  it.scopedLive("a runner that joins takes no Worker with a turn running: the turn ends first, its queue waits, then the Worker moves", () =>
    Effect.gen(function*() {
      const file = yield* clusterFile
      const store = makeMemoryStore()
      // The first turn ends by `gate`, the queued one by `later`.
      const gate = yield* Deferred.make<void>()
      const later = yield* Deferred.make<void>()
      const profiles: Profiles = {
        gated: {
          name: "gated",
          run: (context) =>
            Stream.fromEffect(
              Effect.as(
                Deferred.await(context.input.content === "next" ? later : gate),
                TurnOutput.line(`done: ${context.input.content}`)
              )
            )
        }
      }
      // The grace outlasts the test's deadline: the turn must end by the gate, not by the grace.
      const grace = { shutdownGraceMs: 2 * HANG_MS }
      const [portA, portB] = [yield* freePort, yield* freePort]
      const a = yield* startRunner(portA, file, store, profiles, grace)
      let b = yield* startRunner(portB, file, store, profiles, grace)
      const ownedBy = (runner: typeof a, workerId: WorkerId) =>
        runner.sharding.hasShardId(runner.sharding.getShardId(EntityId.make(workerId), SHARD_GROUP))
      // A Worker whose shard B holds while both run.
      const onB = yield* eventuallyLive(
        a.runtime.create({ profile: "gated" }),
        (created) => ownedBy(b, created.id) && !ownedBy(a, created.id),
        "a Worker whose shard runner B holds"
      )
      // B leaves: A takes every shard, and runs the Worker's turn.
      yield* Effect.disconnect(Scope.close(b.scope, Exit.void)).pipe(within("runner B shut down"))
      yield* eventuallyLive(Effect.sync(() => ownedBy(a, onB.id)), (owned) => owned, "A holds the Worker's shard")
      yield* a.runtime.input(onB.id, { content: "long" })
      expect(yield* a.runtime.input(onB.id, { content: "next", ifBusy: "enqueue" })).toMatchObject({ queued: true })
      // B comes back at its address: its shards are its again, but the one
      // of the busy Worker waits for the turn to end on A.
      b = yield* startRunner(portB, file, store, profiles, grace)
      yield* eventuallyLive(
        Effect.sync(() => ownedBy(a, onB.id)),
        (owned) => !owned,
        "A gives up the Worker's shard"
      )
      const during = yield* store.getWorker(onB.id)
      expect(during?.worker.status).toBe("busy")
      yield* Deferred.succeed(gate, undefined)
      // Before the queued turn ends: it did not start on A (where it would hold the Worker there).
      yield* eventuallyLive(Effect.sync(() => ownedBy(b, onB.id)), (owned) => owned, "B holds the Worker's shard")
      yield* Deferred.succeed(later, undefined)
      // The queued input waited for the move, and ran on B.
      yield* eventuallyLive(
        b.runtime.get(onB.id),
        (worker) => worker.status === "idle" && worker.turn === 2,
        "the queued input run on B"
      )
      expect(yield* b.runtime.turn(onB.id, 1)).toMatchObject({ status: "completed" })
      expect(yield* b.runtime.turn(onB.id, 2)).toMatchObject({ status: "completed" })
      const page = yield* b.runtime.transcript(onB.id, {})
      expect(page.entries.map((entry) => entry.content)).toEqual([
        "long",
        "done: long",
        "completed",
        "next",
        "done: next",
        "completed"
      ])
      // It answers through both, from B.
      expect((yield* a.runtime.get(onB.id)).status).toBe("idle")
      yield* Effect.disconnect(Scope.close(b.scope, Exit.void)).pipe(within("runner B shut down again"))
      yield* Effect.disconnect(Scope.close(a.scope, Exit.void)).pipe(within("runner A shut down"))
    }))
})

describe("shard count", () => {
  const sqlite = SqliteClient.layer({ filename: ":memory:" })

  it.effect("is recorded at the first start, and a runner with another count is refused", () =>
    Effect.gen(function*() {
      yield* checkShardCount(SHARD_COUNT)
      yield* checkShardCount(SHARD_COUNT)
      const refused = yield* Effect.flip(checkShardCount(SHARD_COUNT + 1))
      expect(refused).toBeInstanceOf(ShardCountMismatch)
      expect(refused).toMatchObject({ stored: SHARD_COUNT, configured: SHARD_COUNT + 1 })
      expect(refused.message).toContain(`records ${SHARD_COUNT} shards`)
      // Refused, it recorded nothing: the count stays.
      yield* checkShardCount(SHARD_COUNT)
    }).pipe(Effect.provide(sqlite)))
})

describe("an input delivered again to a new owner", () => {
  const send = (workerId: WorkerId, inputId: string, input: WorkerInput) =>
    Effect.flatMap(WorkerEntity.client, (client) => client(workerId).Input({ inputId, input })).pipe(
      Effect.withClock(realTime)
    )

  it.effect("after its owner died between the store's commit and the cluster's reply: answered from the store, recorded once", () =>
    Effect.gen(function*() {
      // One store outlives both runners; each runner's cluster (its message
      // storage, its replies) is its own: the second has no reply to give.
      const store = makeMemoryStore()
      const runner = clusterOver(Layer.succeed(RuntimeStore, store))({ profiles: suiteProfiles })
      const { first, workerId } = yield* Effect.gen(function*() {
        const runtime = yield* Runtime
        const created = yield* runtime.create({})
        const first = yield* send(created.id, "input-1", { content: "once" })
        yield* idle(created.id)
        return { first, workerId: created.id }
      }).pipe(Effect.provide(runner))
      expect(first).toMatchObject({ queued: false, entry: { seq: 1, content: "once" }, worker: { turn: 1 } })
      expect(yield* store.inputReceipt(workerId, "input-1")).toBeDefined()

      yield* Effect.gen(function*() {
        const runtime = yield* Runtime
        const again = yield* send(workerId, "input-1", { content: "once" })
        expect(again).toEqual(first)
        expect(yield* userEntries(workerId)).toEqual(["once"])
        const before = yield* runtime.get(workerId)
        expect(before).toMatchObject({ status: "idle", turn: 1 })
        // Another input (another id) is recorded as usual.
        const next = yield* send(workerId, "input-2", { content: "next" })
        expect(next).toMatchObject({
          queued: false,
          entry: { seq: before.lastSeq + 1, content: "next" },
          worker: { turn: 2 }
        })
        yield* idle(workerId)
        expect(yield* userEntries(workerId)).toEqual(["once", "next"])
      }).pipe(Effect.provide(runner))
    }))

  it.effect("a queued one, after its turn started on the new owner: answered as queued then, run once", () =>
    Effect.gen(function*() {
      const store = makeMemoryStore()
      const runner = clusterOver(Layer.succeed(RuntimeStore, store))({ profiles: suiteProfiles })
      const { queued, started, workerId } = yield* Effect.gen(function*() {
        const runtime = yield* Runtime
        const created = yield* runtime.create({ profile: "slow" })
        const started = yield* send(created.id, "input-1", { content: "first" })
        const queued = yield* send(created.id, "input-2", { content: "second", ifBusy: "enqueue" })
        return { queued, started, workerId: created.id }
      }).pipe(Effect.provide(runner))
      expect(queued).toMatchObject({ queued: true, position: 1, worker: { turn: 1, queued: 1 } })

      yield* Effect.gen(function*() {
        const runtime = yield* Runtime
        // The first owner's turn was interrupted as it shut down; this one runs the queued input.
        yield* eventually(runtime.get(workerId), (worker) => worker.turn === 2, "the queued input started")
        expect(yield* send(workerId, "input-2", { content: "second", ifBusy: "enqueue" })).toEqual(queued)
        expect(yield* send(workerId, "input-1", { content: "first" })).toEqual(started)
        expect(yield* runtime.get(workerId)).toMatchObject({ status: "busy", turn: 2, queued: 0 })
        yield* TestClock.adjust(SLOW_MS)
        yield* idle(workerId)
        expect(yield* userEntries(workerId)).toEqual(["first", "second"])
        expect(yield* runtime.get(workerId)).toMatchObject({ turn: 2, queued: 0 })
      }).pipe(Effect.provide(runner))
    }))
})

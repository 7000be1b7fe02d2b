// Time to failover: `kill -9` of a runner, then, through the survivors, a
// GET of each Worker it owned, sent again (50 ms apart) until it answers
// 200; the time from the kill until the last of them has. The killed runner
// is started again on its ports and the cluster waited for before the next.
import {
  type ClusterRunner,
  killRunner,
  ownersOf,
  type RunnerSpec,
  startRunner,
  waitForRunners
} from "./clusterRunners.js"
import { quantile, sleep } from "./lib.js"

export interface Kill {
  readonly runner: string
  /** Workers the killed runner owned. */
  readonly workers: number
  /** Milliseconds from the kill until every one of them answered GET 200 through a survivor. */
  readonly allBackMs: number
  /** Milliseconds until the first of them did. */
  readonly firstBackMs: number
  /** Milliseconds from the restart's spawn until all runners saw each other with the shards shared out. */
  readonly rejoinMs: number
}

export interface Failover {
  readonly kills: ReadonlyArray<Kill>
  /** Median of the kills' `allBackMs`. */
  readonly medianMs: number
}

/** Longest a GET is left unanswered before it is sent again; the whole wait fails after the deadline. */
const GET_TIMEOUT_MS = 30_000
const DEADLINE_MS = 120_000

const answeredAfter = async (survivors: ReadonlyArray<ClusterRunner>, id: string, killedAt: number) => {
  for (let attempt = 0;; attempt++) {
    const elapsed = performance.now() - killedAt
    if (elapsed > DEADLINE_MS) throw new Error(`Worker ${id} not answering 200 ${DEADLINE_MS} ms after the kill`)
    const via = survivors[attempt % survivors.length]!
    const status = await fetch(`${via.url}/v1/workers/${id}`, { signal: AbortSignal.timeout(GET_TIMEOUT_MS) }).then(
      async (response) => {
        await response.arrayBuffer()
        return response.status
      },
      () => 0
    )
    if (status === 200) return performance.now() - killedAt
    await sleep(50)
  }
}

/**
 * `kills` times: kill the next runner (round-robin), measure, restart it.
 * `runners` is updated in place with the restarted processes.
 */
export const failover = async (options: {
  readonly runners: Array<ClusterRunner>
  readonly spec: (name: string) => RunnerSpec
  readonly store: string
  readonly workerIds: ReadonlyArray<string>
  readonly kills: number
}): Promise<Failover> => {
  const { runners } = options
  const kills: Array<Kill> = []
  for (let k = 0; k < options.kills; k++) {
    const index = k % runners.length
    const victim = runners[index]!
    const owners = await ownersOf(options.store, options.workerIds)
    const owned = options.workerIds.filter((id) => owners.get(id) === victim.address)
    if (owned.length === 0) throw new Error(`${victim.name} owns none of the ${options.workerIds.length} Workers`)
    const survivors = runners.filter((runner) => runner !== victim)
    const killedAt = performance.now()
    await killRunner(victim)
    const times = await Promise.all(owned.map((id) => answeredAfter(survivors, id, killedAt)))
    const restarted = performance.now()
    runners[index] = await startRunner({ ...options.spec(victim.name), ports: victim.ports })
    await waitForRunners(runners)
    kills.push({
      runner: victim.name,
      workers: owned.length,
      allBackMs: Math.max(...times),
      firstBackMs: Math.min(...times),
      rejoinMs: performance.now() - restarted
    })
  }
  return { kills, medianMs: quantile(kills.map((kill) => kill.allBackMs), 0.5) }
}

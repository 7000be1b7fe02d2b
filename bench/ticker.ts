// The `ticker` engine of the events and flood benchmarks: a turn emits
// `count` lines, one every `intervalMs` (0: as fast as it can), each the
// machine's monotonic time in ns (process.hrtime) taken just before its emit,
// so that a consumer in any process of the machine can tell how long the line
// took to reach it.
import { Effect, Schema, Stream } from "effect"
import { TurnOutput, type WorkerEngine } from "../src/index.js"

const TickerInput = Schema.parseJson(Schema.Struct({ count: Schema.Int, intervalMs: Schema.Number }))
const decode = Schema.decodeUnknownSync(TickerInput)

/** The input content that makes a ticker turn emit `count` lines, `intervalMs` apart. */
export const tickerInput = (count: number, intervalMs: number): string => JSON.stringify({ count, intervalMs })

export const tickerEngine: WorkerEngine = {
  name: "ticker",
  run: (context) =>
    Stream.unwrap(Effect.sync(() => {
      const { count, intervalMs } = decode(context.input.content)
      const tick = Effect.sync(() => TurnOutput.line(String(process.hrtime.bigint())))
      return Stream.repeatEffect(intervalMs > 0 ? Effect.zipRight(Effect.sleep(intervalMs), tick) : tick).pipe(
        Stream.take(count)
      )
    }))
}

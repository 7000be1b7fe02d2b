// Answers the bench's `{ type: "memory" }` over IPC with the process's heap
// and RSS after a full GC (the child runs with --expose-gc).
export const answerMemory = (): void => {
  process.on("message", (message: unknown) => {
    if (typeof message !== "object" || message === null || !("type" in message) || message.type !== "memory") return
    const gc = globalThis.gc
    if (gc !== undefined) { for (let i = 0; i < 4; i++) gc() }
    const { heapUsed, rss } = process.memoryUsage()
    process.send?.({ type: "memory", heapUsed, rss })
  })
}

/** A TCP proxy in front of a test's server: a runner a test can take away mid-request or mid-stream. */
import { Effect } from "effect"
import { connect, createServer, type Socket } from "node:net"

export interface Proxy {
  /** `http://127.0.0.1:<its port>` */
  readonly url: string
  /** Connections it has taken. */
  readonly connections: () => number
  /** Breaks every connection through it and stops listening: connecting to it is refused from now on. */
  readonly stop: Effect.Effect<void>
}

/** Forwards 127.0.0.1:<a port of its own> to 127.0.0.1:`targetPort` until stopped or the scope ends. */
export const tcpProxy = (targetPort: number) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<Proxy>((resolve) => {
        const sockets = new Set<Socket>()
        let taken = 0
        let stopped = false
        const server = createServer((client) => {
          taken++
          const upstream = connect(targetPort, "127.0.0.1")
          for (const [socket, other] of [[client, upstream], [upstream, client]] as const) {
            sockets.add(socket)
            socket.on("error", () => {})
            socket.on("close", () => {
              sockets.delete(socket)
              other.destroy()
            })
            socket.pipe(other)
          }
        })
        const stop = Effect.sync(() => {
          if (stopped) return
          stopped = true
          server.close()
          for (const socket of sockets) socket.destroy()
        })
        server.listen(0, "127.0.0.1", () => {
          const address = server.address()
          const port = typeof address === "object" && address !== null ? address.port : 0
          resolve({ url: `http://127.0.0.1:${port}`, connections: () => taken, stop })
        })
      })
    ),
    (proxy) => proxy.stop
  )

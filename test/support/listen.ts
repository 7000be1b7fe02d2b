/** A test's own server, on an ephemeral loopback port for the scope. */
import { Effect } from "effect"
import type { Server } from "node:net"

/** Listens on 127.0.0.1:0 and yields the port; at the scope's end runs `onClose` (e.g. destroys sockets) and closes. */
export const listenScoped = (server: Server, onClose: () => void = () => {}) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<number>((resolve) =>
        server.listen(0, "127.0.0.1", () => {
          const address = server.address()
          resolve(typeof address === "object" && address !== null ? address.port : 0)
        })
      )
    ),
    () =>
      Effect.sync(() => {
        onClose()
        server.close()
      })
  )

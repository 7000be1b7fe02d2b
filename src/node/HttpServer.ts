/**
 * The Node HTTP server the runtime listens with. Node answers requests its
 * parser rejects (oversized headers, a bad Content-Length) on its own with an
 * empty body; the contract wants JSON with `_tag` and `message` on every
 * response >= 400, so those answers are written here.
 */
import { createServer, type Server } from "node:http"
import type { Duplex } from "node:stream"

const errorResponse = (status: number, reason: string, message: string): string => {
  const body = JSON.stringify({ _tag: "InvalidInput", message })
  return `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${
    Buffer.byteLength(body)
  }\r\nconnection: close\r\n\r\n${body}`
}

const onClientError = (error: Error & { code?: string }, socket: Duplex) => {
  if (error.code === "ECONNRESET" || !socket.writable) {
    socket.destroy()
    return
  }
  const response = error.code === "HPE_HEADER_OVERFLOW"
    ? errorResponse(400, "Bad Request", "request headers are too large")
    : errorResponse(400, "Bad Request", `malformed HTTP request (${error.code ?? "parse error"})`)
  socket.end(response)
}

export const createRuntimeHttpServer = (): Server => createServer().on("clientError", onClientError)

/** Raw HTTP with Node's own `fetch`, for asserting statuses, headers and bodies exactly. */
import { Effect } from "effect"
import * as http from "node:http"
import * as net from "node:net"
import { within } from "./eventually.js"

export interface RawResponse {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  readonly json: unknown
}

export interface RawRequest {
  readonly method?: string
  readonly body?: unknown
  readonly rawBody?: string
  readonly headers?: Record<string, string>
  readonly token?: string
}

export const raw = (baseUrl: string, path: string, options: RawRequest = {}): Effect.Effect<RawResponse> =>
  Effect.promise(async () => {
    const headers: Record<string, string> = { ...options.headers }
    if (options.token !== undefined) headers["authorization"] = `Bearer ${options.token}`
    let body: string | undefined = options.rawBody
    if (options.body !== undefined) {
      body = JSON.stringify(options.body)
      headers["content-type"] ??= "application/json"
    }
    const init: RequestInit = { method: options.method ?? "GET", headers }
    if (body !== undefined) init.body = body
    const response = await fetch(`${baseUrl}${path}`, init)
    const text = await response.text()
    let json: unknown = undefined
    try {
      json = JSON.parse(text)
    } catch {
      json = undefined
    }
    return { status: response.status, headers: response.headers, text, json }
  })

export interface NodeRequest {
  readonly method?: string
  readonly headers?: Record<string, string>
  readonly body?: string | Uint8Array
  /** Send the body with `Transfer-Encoding: chunked` (no Content-Length). */
  readonly chunked?: boolean
}

/**
 * A request through `node:http`, which (unlike `fetch`) sends whatever `Host`
 * and body bytes it is given; `host: undefined` in headers is not possible,
 * so use `rawSocket` for a request without one.
 */
export const nodeRequest = (baseUrl: string, path: string, options: NodeRequest = {}): Effect.Effect<RawResponse> =>
  Effect.promise(() =>
    new Promise<RawResponse>((resolve, reject) => {
      const url = new URL(path, baseUrl)
      const headers: Record<string, string> = { ...options.headers }
      if (options.body !== undefined && options.chunked !== true) {
        headers["content-length"] = String(Buffer.byteLength(options.body))
      }
      const request = http.request(url, { method: options.method ?? "GET", headers }, (response) => {
        const chunks: Array<Buffer> = []
        response.on("data", (chunk: Buffer) => chunks.push(chunk))
        response.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8")
          let json: unknown = undefined
          try {
            json = JSON.parse(text)
          } catch {
            json = undefined
          }
          const responseHeaders = new Headers()
          for (const [name, value] of Object.entries(response.headers)) {
            if (typeof value === "string") responseHeaders.set(name, value)
            else if (Array.isArray(value)) responseHeaders.set(name, value.join(", "))
          }
          resolve({ status: response.statusCode ?? 0, headers: responseHeaders, text, json })
        })
      })
      request.on("error", reject)
      if (options.body !== undefined) request.write(options.body)
      request.end()
    })
  )

/** Writes `request` as is on a new connection and returns everything the server sends back. */
export const rawSocket = (baseUrl: string, request: string): Effect.Effect<string> =>
  Effect.promise(() =>
    new Promise<string>((resolve, reject) => {
      const { hostname, port } = new URL(baseUrl)
      const socket = net.connect(Number(port), hostname, () => socket.end(request))
      let response = ""
      socket.on("data", (chunk) => (response += chunk.toString()))
      socket.on("end", () => resolve(response))
      socket.on("error", reject)
    })
  )

/**
 * An events stream read as text: `readUntil(check)` reads on until `check`
 * holds for all read so far (or the stream ends), and answers that text;
 * `close` leaves.
 */
export const openEvents = (baseUrl: string, workerId: string) =>
  Effect.map(
    Effect.sync(() => new AbortController()),
    (controller) => {
      const response = fetch(`${baseUrl}/v1/workers/${workerId}/events`, { signal: controller.signal })
      const reader = response.then((answer) => {
        if (answer.body === null) throw new Error("an events answer without a body")
        return answer.body.getReader()
      })
      const decoder = new TextDecoder()
      let text = ""
      const readUntil = (check: (text: string) => boolean) =>
        Effect.promise(async () => {
          const stream = await reader
          while (!check(text)) {
            const { done, value } = await stream.read()
            if (done) break
            text += decoder.decode(value, { stream: true })
          }
          return text
        }).pipe(within("the expected frames"))
      return { readUntil, close: () => controller.abort() }
    }
  )

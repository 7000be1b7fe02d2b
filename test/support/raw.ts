/** Raw HTTP with Node's own `fetch`, for asserting statuses, headers and bodies exactly. */
import { Effect } from "effect"

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

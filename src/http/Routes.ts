/**
 * The routes of `RuntimeApi` (and the server's own: the OpenAPI document,
 * the metrics), as templates: what the guard answers 405 and `Allow` from,
 * and what request logs and metrics name a request by.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import { RuntimeApi } from "./Api.js"

interface Route {
  readonly pattern: RegExp
  readonly method: string
  /** e.g. `/v1/workers/{workerId}/input` */
  readonly template: string
}

export interface Routes {
  /** The methods `path` takes; none for an unknown path. */
  readonly methodsOf: (path: string) => ReadonlyArray<string>
  /** The route `method path` matches, e.g. `/v1/workers/{workerId}`; `unmatched` when none does. */
  readonly templateOf: (method: string, path: string) => string
}

const escape = (segment: string) => segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

export const makeRoutes = (extra: ReadonlyArray<{ readonly method: string; readonly path: string }>): Routes => {
  const routes: Array<Route> = []
  const add = (method: string, path: string) => {
    const segments = path.split("/")
    routes.push({
      method,
      pattern: new RegExp(`^${segments.map((s) => (s.startsWith(":") ? "[^/]+" : escape(s))).join("/")}$`),
      template: segments.map((s) => (s.startsWith(":") ? `{${s.slice(1)}}` : s)).join("/")
    })
  }
  for (const route of extra) add(route.method, route.path)
  HttpApi.reflect(RuntimeApi, {
    onGroup: () => {},
    onEndpoint: ({ endpoint }) => add(endpoint.method, endpoint.path)
  })
  return {
    methodsOf: (path) => routes.filter((route) => route.pattern.test(path)).map((route) => route.method),
    templateOf: (method, path) =>
      routes.find((route) => route.method === method && route.pattern.test(path))?.template ?? "unmatched"
  }
}

/** The Worker a path is about, if any (for request logs). */
export const workerIdOf = (path: string): string | undefined => /^\/v1\/workers\/([^/]+)/.exec(path)?.[1]

// Minimal declarations for the benchmarks' untyped dependencies (no @types
// package is installed for them): only what bench/ uses.

declare module "autocannon" {
  export interface Request {
    readonly method?: string
    readonly path?: string
    readonly headers?: Readonly<Record<string, string>>
    readonly body?: string
    /** Called before each request is sent; returns the request to send. */
    readonly setupRequest?: (request: Request) => Request
  }

  export interface Options {
    readonly url: string
    readonly connections?: number
    readonly pipelining?: number
    /** Seconds. */
    readonly duration?: number
    readonly requests?: ReadonlyArray<Request>
  }

  export interface Histogram {
    readonly average: number
    readonly p99: number
  }

  export interface Result {
    /** `total`: the requests answered in the run. */
    readonly requests: Histogram & { readonly total: number }
    readonly latency: Histogram
    readonly errors: number
    readonly non2xx: number
    readonly statusCodeStats: Readonly<Record<string, { readonly count: number }>>
  }

  export default function autocannon(
    options: Options,
    callback: (error: Error | null, result: Result) => void
  ): unknown
}

declare module "better-sqlite3" {
  export interface Statement {
    run(...params: Array<unknown>): unknown
  }

  export default class Database {
    constructor(filename: string)
    pragma(source: string): unknown
    prepare(source: string): Statement
    transaction<Args extends Array<unknown>>(fn: (...args: Args) => void): (...args: Args) => void
    close(): void
  }
}

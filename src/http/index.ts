/**
 * worker-runtime/http: the REST command API (`RuntimeApi`), its server layer
 * and the client derived from it. Needs `@effect/platform`.
 *
 * Browsers never reach a Runtime: Browser -> Backend -> Runtime. The server
 * answers 403 to any request carrying `Origin`, `Sec-Fetch-Site` or
 * `Sec-Fetch-Dest`, and never sends CORS headers.
 */
export * from "./Api.js"
export { makeRuntimeHttpClient, RuntimeHttpClientLive, type RuntimeHttpClientOptions } from "./Client.js"
export type { FailoverOptions } from "./ClientFailover.js"
export * from "./Errors.js"
export { bodyLimitFor, type RuntimeHttpOptions, RuntimeHttpServerLive } from "./Server.js"

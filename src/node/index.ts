/**
 * worker-runtime/node: configuration, the process engine, the `NodeRuntime`
 * layer and the bin. Needs `@effect/platform-node` and `@effect/cli`.
 */
export * from "./Config.js"
export { createRuntimeHttpServer, RuntimeHttpServer, RuntimeNodeHttpServerLive } from "./HttpServer.js"
export { NodeRuntimeLive, RuntimeFromConfigLive } from "./NodeRuntime.js"
export * from "./ProcessEngine.js"
export * from "./Profiles.js"

/**
 * worker-runtime/postgres: the durable PostgreSQL `RuntimeStore`. Needs
 * `@effect/sql`, `@effect/sql-pg` and `pg` next to `effect`.
 */
export { makePostgresStore, PostgresStoreLive, type PostgresStoreOptions } from "./PostgresStore.js"
export { maskUrl } from "./Url.js"

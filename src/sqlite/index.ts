/**
 * worker-runtime/sqlite: the durable SQLite `RuntimeStore`. Needs
 * `@effect/sql` and `@effect/sql-sqlite-node` next to `effect`.
 */
export { makeSqliteStore, SqliteStoreLive, type SqliteStoreOptions } from "./SqliteStore.js"

import { configDefaults, defineConfig } from "vitest/config"

/**
 * Tests that start processes (the built bin, child engines, a second process
 * holding a store) or pack the package. They need `dist/` and `build/`, which
 * the global setup builds; they run only in the `e2e` project.
 */
const e2e = [
  "test/Bin.test.ts",
  "test/Cli.test.ts",
  "test/ClusterE2E.test.ts",
  "test/Crash.test.ts",
  "test/DrainStreams.test.ts",
  "test/FollowerMemory.test.ts",
  "test/Install.test.ts",
  "test/Operability.test.ts",
  "test/Readme.test.ts",
  "test/ProcessEngine.test.ts",
  "test/PostgresCrash.test.ts",
  "test/PostgresOutage.test.ts",
  "test/PostgresStore.test.ts",
  "test/Reliability.test.ts",
  "test/SqliteStore.test.ts"
]

export default defineConfig({
  test: {
    // Only a hang reaches these: every wait inside a test is for a state or an
    // event, with its own deadline of a minute (test/support/eventually.ts)
    // that fails first and says what never happened.
    testTimeout: 300_000,
    hookTimeout: 300_000,
    // `vitest run` runs both; `--project unit` or `--project e2e` one of them.
    projects: [
      {
        extends: true,
        test: { name: "unit", include: ["test/**/*.test.ts"], exclude: [...configDefaults.exclude, ...e2e] }
      },
      {
        extends: true,
        test: { name: "e2e", include: e2e, globalSetup: ["test/globalSetup.ts", "test/postgresSetup.ts"] }
      }
    ]
  }
})

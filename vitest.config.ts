import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Each integration file starts its own Azurite; two cores run two files at a time.
    pool: 'forks',
    maxWorkers: 2,
    // One T-SQL engine per run, started on the first test that asks (test/support/tsql-engine.ts);
    // the teardown prints how many T-SQL tests ran.
    globalSetup: ['test/support/tsql-global-setup.ts'],
    setupFiles: ['test/support/tsql-count-setup.ts'],
  },
});

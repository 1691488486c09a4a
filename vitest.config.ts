import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Each integration file starts its own Azurite. Three files at a time on two cores: most
    // files wait on round trips (Azurite, PGlite, the T-SQL engine, child processes) more than
    // they compute (the T-SQL edge-case file used 48 s of CPU in 154 s), so a third worker
    // fills the waits.
    pool: 'forks',
    maxWorkers: 3,
    // One T-SQL engine per run, started on the first test that asks (test/support/tsql-engine.ts);
    // the teardown prints how many T-SQL tests ran.
    globalSetup: ['test/support/tsql-global-setup.ts'],
    setupFiles: ['test/support/tsql-count-setup.ts'],
  },
});

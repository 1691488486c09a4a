import { defineConfig } from 'vitest/config';
import { LongestFirstSequencer } from './test/support/sequencer.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Each integration file starts its own Azurite; two cores run two files at a time (three
    // were tried: the suite took 812 s instead of 757 s, and timing-sensitive tests suffered).
    pool: 'forks',
    maxWorkers: 2,
    // The longest files first: without a vitest cache (a fresh clone) they would start by size.
    sequence: { sequencer: LongestFirstSequencer },
    // One T-SQL engine per run, started on the first test that asks (test/support/tsql-engine.ts);
    // the teardown prints how many T-SQL tests ran.
    globalSetup: ['test/support/tsql-global-setup.ts'],
    setupFiles: ['test/support/tsql-count-setup.ts'],
  },
});

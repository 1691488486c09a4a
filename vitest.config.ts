import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Each integration file starts its own Azurite; two cores run two files at a time.
    pool: 'forks',
    maxWorkers: 2,
  },
});

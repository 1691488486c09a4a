import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The longest files first, measured in a fresh-clone CI run (seconds of test time, two
 * workers). A fresh clone has no vitest cache, so vitest orders by file size, and the T-SQL
 * edge-case file, a few lines long, started last and ran alone for four minutes at the end.
 * Files not listed keep vitest's own order after these.
 */
const LONGEST_FIRST = [
  'test/integration/reliability/soak.test.ts', // 131
  // 243 before its warehouses borrowed warm T-SQL sessions (test/support/tsql-pool.ts), which
  // took it from 497-518 s to 119-241 s on the loaded machine: an estimated 60-120 s in CI.
  'test/acceptance/scd2-edge-cases-mssql.test.ts',
  'test/integration/rollback/rollback.test.ts', // 70
  'test/acceptance/scd2-edge-cases.test.ts', // 67
  'test/integration/engine/reconcile.test.ts', // 48
  'test/acceptance/change-detection-edges.test.ts', // 46
  'test/integration/reliability/crash-points.test.ts', // 35
  'test/integration/validate/validation.test.ts', // 33
  'test/integration/engine/dry-run-sql-sources.test.ts', // 33
  'test/integration/rollback/backups.test.ts', // 30
];

export class LongestFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification) => {
      const i = LONGEST_FIRST.findIndex((p) => f.moduleId.replaceAll('\\', '/').endsWith(p));
      return i < 0 ? LONGEST_FIRST.length : i;
    };
    // Array.prototype.sort is stable: unlisted files keep vitest's order among themselves.
    return [...sorted].sort((a, b) => rank(a) - rank(b));
  }
}

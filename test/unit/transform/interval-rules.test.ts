import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pipelineSchema } from '../../../shared/config/schema.js';
import { runTransform } from '../../../shared/transform/run-transform.js';
import { duckExec, duckQuery } from '../../support/project.js';

/**
 * Issue #14 point 7, the interval rules of validFrom: { column } (README, SCD2) on a change
 * feed: a delete row carries only the key, so it takes the run boundary, but never at or before
 * the start of the version it closes; a row with the current version's own time and other
 * values is a correction in place; an older one is stale, counted and warned with its key.
 */
const duck = { memoryLimit: '256MB', threads: 1, tempDir: join(tmpdir(), 'tidemark-test-spill') };
const schema = [
  { name: 'id', type: 'INTEGER' },
  { name: 'name', type: 'VARCHAR' },
  { name: 'eff', type: 'TIMESTAMP' },
];

describe('interval rules on a change feed with validFrom: { column }', () => {
  it('delete after the current start (+1 µs when the boundary is earlier), same-time correction in place, older row stale and warned', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-intervals-'));
    const p = pipelineSchema.parse({
      name: 'accounts',
      source: { connection: 'CRM', table: 'dbo.Accounts', changeDetection: { mode: 'cdc' } },
      key: ['id'],
      target: { warehouse: 'DW', table: 'dw.dim_account', trackedColumns: ['name'], validFrom: { column: 'eff' } },
    });
    const first = join(dir, 'p0.parquet');
    await duckExec(
      ':memory:',
      `COPY (select * from (values (1, 'a', TIMESTAMP '2026-01-01 05:00'), (2, 'b', TIMESTAMP '2025-12-31 08:00'), (3, 'c', TIMESTAMP '2025-12-31 08:00'), (4, 'd', TIMESTAMP '2025-12-31 08:00')) t(id, name, eff)) TO '${first}' (FORMAT parquet)`,
    );
    const out1 = join(dir, 'run1');
    mkdirSync(out1);
    const r1 = await runTransform({ pipeline: p, parts: [first], schema, snapshot: undefined, fullRead: true, boundary: '2026-01-01T00:00:00.000Z', sourceRowCount: null, outDir: out1, duck });
    expect(r1.counts).toMatchObject({ inserted: 4 });

    // 1 (its source time ahead of the run) and 4 deleted; 2 corrected at its own time; 3 older.
    const feed = join(dir, 'p1.parquet');
    await duckExec(
      ':memory:',
      `COPY (select * from (values (1, 'a', TIMESTAMP '2026-01-01 05:00', 'delete'), (2, 'B', TIMESTAMP '2025-12-31 08:00', 'update'), (3, 'C', TIMESTAMP '2025-12-31 07:00', 'update'), (4, 'd', TIMESTAMP '2025-12-31 08:00', 'delete')) t(id, name, eff, _tm_source_op)) TO '${feed}' (FORMAT parquet)`,
    );
    const out2 = join(dir, 'run2');
    mkdirSync(out2);
    const snapshot = { layers: [{ file: r1.snapshot.file!, rows: r1.snapshot.rows }], current: r1.snapshot.current };
    const feedSchema = [...schema, { name: '_tm_source_op', type: 'VARCHAR' }];
    const r2 = await runTransform({ pipeline: p, parts: [feed], schema: feedSchema, snapshot, fullRead: false, boundary: '2026-01-01T01:00:00.000Z', sourceRowCount: null, outDir: out2, duck });
    expect(r2.counts).toMatchObject({ inserted: 0, updated: 0, type1: 1, deleted: 2, stale: 1 });
    const changes = await duckQuery<{ id: number; name: string | null; op: string; vf: string }>(
      ':memory:',
      `select id, name, _tm_op as op, strftime(_tm_valid_from, '%Y-%m-%d %H:%M:%S.%f') vf from read_parquet('${r2.changesFile}') order by id`,
    );
    expect(changes).toEqual([
      { id: 1, name: null, op: 'delete', vf: '2026-01-01 05:00:00.000001' },
      { id: 2, name: 'B', op: 'type1', vf: '2025-12-31 08:00:00.000000' },
      { id: 4, name: null, op: 'delete', vf: '2026-01-01 01:00:00.000000' },
    ]);
    expect(r2.warnings).toEqual([
      '1 row(s) of accounts carry the same target.validFrom.column eff time as the current version of their key with other values: corrected in place (no new version)',
      '1 row(s) of accounts are older (target.validFrom.column eff) than the current version of their key and were not applied (keys (3)); counted as stale',
    ]);
  });
});

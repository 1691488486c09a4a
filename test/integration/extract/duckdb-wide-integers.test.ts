import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AzuriteHandle } from '../../../shared/local/azurite.js';
import { openLocalStack, runOnce, type LocalStack } from '../../../shared/local/stack.js';
import { withAzurite } from '../../support/azurite.js';
import { duckExec, duckQuery, makeProject } from '../../support/project.js';

const pipeline = (name: string, table: string) => `name: ${name}
source: { connection: SRC, table: ${table}, changeDetection: { mode: full } }
key: [id]
target: { warehouse: WH, table: dw.${name} }
`;

/**
 * HUGEINT / UHUGEINT source columns: Parquet has no 128-bit integer and DuckDB writes them as
 * DOUBLE, which kept 17 digits and loaded the rest as noise. They travel as DECIMAL(38,0) now,
 * and a value wider than 38 digits fails the run by name, loading nothing.
 */
describe('a DuckDB source with 128-bit integers', () => {
  let az: AzuriteHandle;
  let stack: LocalStack;
  let dir: string;
  const wide = '12345678901234567890123456789012345678';

  beforeAll(async () => {
    az = await withAzurite();
    dir = makeProject({ pipelines: { big: pipeline('big', 'big'), huge: pipeline('huge', 'huge') } });
    await duckExec(
      join(dir, 'source.duckdb'),
      `create table big as select * from (values (1, ${wide}::hugeint, 123::uhugeint), (2, -${wide}::hugeint, 0::uhugeint), (3, null::hugeint, null::uhugeint)) t(id, h, u)`,
      `create table huge as select 1 as id, 170141183460469231731687303715884105727::hugeint as h`,
    );
    stack = await openLocalStack({ projectDir: dir, connectionString: az.connectionString, env: { ...process.env } });
  }, 120_000);
  afterAll(async () => {
    await stack?.close();
    await az?.stop();
  });

  it('loads every digit of a 38-digit HUGEINT, its negative and NULL, and validates', async () => {
    const run = await runOnce(stack, { pipeline: 'big' });
    expect(run.status, run.error).toBe('succeeded');
    const rows = await duckQuery<{ id: number; h: string | null; u: string | null }>(
      join(dir, 'warehouse.duckdb'),
      'select id, cast(h as varchar) as h, cast(u as varchar) as u from dw.big order by id',
    );
    expect(rows).toEqual([
      { id: 1, h: wide, u: '123' },
      { id: 2, h: `-${wide}`, u: '0' },
      { id: 3, h: null, u: null },
    ]);
    // An unchanged second read opens no version: the carried value hashes the same each time.
    const again = await runOnce(stack, { pipeline: 'big' });
    expect(again.counts).toMatchObject({ inserted: 0, updated: 0, unchanged: 3 });
  });

  it('refuses a value wider than 38 digits, naming the column and the fix, and loads nothing', async () => {
    const run = await runOnce(stack, { pipeline: 'huge' });
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(/huge: a value of h \(HUGEINT\) has more than 38 digits/);
    expect(run.error).toContain('source.query');
    const tables = await duckQuery<{ n: bigint }>(join(dir, 'warehouse.duckdb'), `select count(*) as n from information_schema.tables where table_name = 'huge'`);
    expect(Number(tables[0]!.n)).toBe(0);
  });
});

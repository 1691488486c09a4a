import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { queryCommand } from '../../../cli/commands/query.js';
import { runCommand } from '../../../cli/commands/run.js';
import { exitCodeFor } from '../../../cli/common.js';
import type { AzuriteHandle } from '../../../shared/local/azurite.js';
import { withAzurite } from '../../support/azurite.js';
import { startPostgres, type PostgresHandle } from '../../support/postgres.js';
import { duckExec, makeProject } from '../../support/project.js';

const MAX_HUGEINT = '170141183460469231731687303715884105727';
/** 10^37 + 10^37 − 1: a DECIMAL(38,0) sum whose 38 digits no double holds. */
const BIG_SUM = '19999999999999999999999999999999999999';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `query --key`: one key's whole history on a real DuckDB and a real PostgreSQL warehouse,
 * a composite key, a key that never existed, and values wider than a double.
 */
describe.each(['duckdb', 'postgres'] as const)('tidemark query --key on a %s warehouse', (kind) => {
  const saved = { ...process.env };
  let az: AzuriteHandle;
  let db: PostgresHandle | undefined;
  let dir: string;
  let out: string[];
  const times: string[] = [];
  const printed = () => out.join('');
  const query = async (...args: string[]) => {
    out.length = 0;
    const code = await queryCommand.run([...args, '--project', dir]);
    return { code, text: printed() };
  };

  beforeAll(async () => {
    az = await withAzurite();
    if (kind === 'postgres') db = await startPostgres();
    const wh = kind === 'duckdb' ? 'WH: { kind: duckdb, path: warehouse.duckdb }' : 'WH: { kind: postgres, setting: TEST_PG_DW }';
    dir = makeProject({
      tidemark: `storage: AzureWebJobsStorage\nconnections:\n  SRC: { kind: duckdb, path: source.duckdb }\nwarehouses:\n  ${wh}\nduckdb: { memoryLimit: 512MB, threads: 1 }\n`,
      pipelines: { acc: 'name: acc\nsource: { connection: SRC, table: acc }\nkey: [id, region]\ntarget: { warehouse: WH, table: dw.dim_acc }\n' },
    });
    process.env.AzureWebJobsStorage = az.connectionString;
    if (db) process.env.TEST_PG_DW = db.url;
    const src = join(dir, 'source.duckdb');
    // id 1 is in two regions: only the pair names a row. `total` is a DECIMAL(38,0) sum.
    await duckExec(
      src,
      `create table parts as select * from (values (1, 'eu', 10000000000000000000000000000000000000::decimal(38,0)), (1, 'eu', 9999999999999999999999999999999999999::decimal(38,0)), (1, 'us', 5::decimal(38,0)), (2, 'eu', 7::decimal(38,0))) t(id, region, amount)`,
      `create table acc as select id, region, 'v1' as note, sum(amount) as total, 18446744073709551615::ubigint as big from parts group by id, region`,
    );
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    expect(await runCommand.run(['acc', '--project', dir, '--json'])).toBe(0);
    await sleep(20);
    times.push(new Date().toISOString());
    await duckExec(src, `update acc set note = 'v2' where id = 1 and region = 'eu'`, `delete from acc where id = 2`);
    await sleep(20);
    expect(await runCommand.run(['acc', '--project', dir, '--json'])).toBe(0);
    await sleep(20);
    times.push(new Date().toISOString());
    vi.restoreAllMocks();
    if (kind === 'duckdb') {
      // No Parquet integer holds a HUGEINT (DuckDB writes it as DOUBLE), so no extract can bring
      // one: the value is written into the HUGEINT column the UBIGINT source made, to prove the read.
      await duckExec(join(dir, 'warehouse.duckdb'), `update dw.dim_acc set big = ${MAX_HUGEINT}::hugeint where id = 1 and region = 'us'`);
    }
  }, 240_000);
  afterAll(async () => {
    await db?.stop();
    await az?.stop();
    process.env = { ...saved };
  });
  beforeEach(() => {
    out = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
  });
  afterEach(() => vi.restoreAllMocks());

  it("shows every version of a composite key with its interval, marking the one valid at --as-of", async () => {
    const [t1, t2] = times as [string, string];
    const early = await query('acc', '--as-of', t1, '--key', '1,eu', '--json');
    expect(early.code).toBe(0);
    const versions = JSON.parse(early.text) as Array<{ validFrom: string; validTo: string | null; deleted: boolean; runId: string; current: boolean; values: Record<string, unknown> }>;
    expect(versions.map((v) => [v.values.note, v.current, v.deleted, v.validTo === null])).toEqual([
      ['v1', true, false, false],
      ['v2', false, false, true],
    ]);
    expect(versions[0]!.validTo).toBe(versions[1]!.validFrom);
    expect(versions[0]!.validFrom).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
    expect(versions[0]!.runId).not.toBe(versions[1]!.runId);
    expect(versions[1]!.values).toEqual({ id: 1, region: 'eu', note: 'v2', total: BIG_SUM, big: '18446744073709551615' });

    // Named form, later instant: the newer version is the current one; the other region is its own key.
    const late = JSON.parse((await query('acc', '--as-of', t2, '--key', 'region=eu,id=1', '--json')).text) as Array<{ current: boolean }>;
    expect(late.map((v) => v.current)).toEqual([false, true]);
    const us = JSON.parse((await query('acc', '--as-of', t2, '--key', '1,us', '--json')).text) as Array<{ values: Record<string, unknown> }>;
    expect(us).toHaveLength(1);
    expect(us[0]!.values.total).toBe('5');
    if (kind === 'duckdb') expect(us[0]!.values.big).toBe(MAX_HUGEINT);

    const text = await query('acc', '--as-of', t1, '--key', '1,eu', '--columns', 'note');
    const lines = text.text.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^at\s+valid_from\s+valid_to\s+deleted\s+run\s+note$/);
    expect(lines[2]).toMatch(/^\*\s+\S+\s+\S+\s+\S+\s+v1$/);
    expect(lines[3]).toMatch(/^\s+\S+\s+\(open\)\s+\S+\s+v2$/);
    expect(lines[4]).toBe(`(* = the version valid at ${t1})`);
  });

  it('a deleted key shows its history with nothing valid after the delete; a key never loaded says so', async () => {
    const [t1, t2] = times as [string, string];
    const gone = await query('acc', '--as-of', t2, '--key', '2,eu');
    expect(gone.code).toBe(0);
    expect(gone.text).toContain('(no version was valid at');
    expect(JSON.parse((await query('acc', '--as-of', t1, '--key', '2,eu', '--json')).text)).toMatchObject([{ current: true, values: { id: 2, total: '7' } }]);

    const e = await queryCommand.run(['acc', '--as-of', t2, '--key', "9,eu' OR 1=1 --", '--project', dir]).catch((x: unknown) => x);
    expect(exitCodeFor(e)).toBe(2);
    expect(String(e)).toContain(`key id=9, region=eu' OR 1=1 -- has no version in dw.dim_acc`);
    for (const bad of ['1', '1,eu,x', 'id=1,nope=eu']) {
      const b = await queryCommand.run(['acc', '--as-of', t2, '--key', bad, '--project', dir]).catch((x: unknown) => x);
      expect(exitCodeFor(b), bad).toBe(2);
      expect(String(b)).toContain('does not name the key (id, region)');
    }
  });

  it('the whole dimension at an instant: values wider than a double keep their digits, --limit is applied by the warehouse', async () => {
    const [, t2] = times as [string, string];
    const all = JSON.parse((await query('acc', '--as-of', t2, '--json')).text) as Array<Record<string, unknown>>;
    expect(all.map((r) => [r.id, r.region, r.total])).toEqual([
      [1, 'eu', BIG_SUM],
      [1, 'us', '5'],
    ]);
    if (kind === 'duckdb') expect(all[1]!.big).toBe(MAX_HUGEINT);
    const one = await query('acc', '--as-of', t2, '--limit', '1', '--columns', 'id,region');
    expect(one.text).toBe('id  region\n--  ------\n1   eu\n(1 of 2 rows; --limit N or --key K for others, --json for all)\n');
    if (db) {
      // The PostgreSQL target holds what DuckDB summed, digit for digit.
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      try {
        expect((await c.query(`select total::text as t from dw.dim_acc where id = 1 and region = 'eu' and _tm_is_current`)).rows).toEqual([{ t: BIG_SUM }]);
      } finally {
        await c.end();
      }
    }
  });
});

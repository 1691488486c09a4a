import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { reconcileCommand } from '../../../cli/commands/reconcile.js';
import { runCommand } from '../../../cli/commands/run.js';
import { exitCodeFor } from '../../../cli/common.js';
import type { AzuriteHandle } from '../../../shared/local/azurite.js';
import { withAzurite } from '../../support/azurite.js';
import { duckExec, duckQuery, makeProject } from '../../support/project.js';

describe('tidemark reconcile', () => {
  const saved = { ...process.env };
  let az: AzuriteHandle;
  let dir: string;
  let out: string[];
  const printed = () => out.join('');

  beforeAll(async () => {
    az = await withAzurite();
    dir = makeProject({
      pipelines: {
        acc: 'name: acc\nsource: { connection: SRC, table: acc, changeDetection: { mode: timestamp, column: ts } }\nkey: [id]\ntarget: { warehouse: WH, table: dim_acc }\n',
      },
    });
    await duckExec(join(dir, 'source.duckdb'), `create table acc as select range::int as id, 'n' || range as name, timestamp '2026-01-01' as ts from range(3)`);
  });
  afterAll(async () => {
    await az?.stop();
  });
  beforeEach(() => {
    out = [];
    process.env.AzureWebJobsStorage = az.connectionString;
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  });
  afterEach(() => {
    vi.restoreAllMocks();
    process.env = { ...saved };
  });

  it('shows what it found, asks (or --yes), --dry-run changes nothing, and refuses an empty source', async () => {
    expect(await runCommand.run(['acc', '--project', dir, '--json'])).toBe(0);
    await duckExec(join(dir, 'source.duckdb'), 'delete from acc where id = 2');
    const currentIds = async () => (await duckQuery<{ id: number }>(join(dir, 'warehouse.duckdb'), 'select id from dim_acc where _tm_is_current and not _tm_is_deleted order by id')).map((r) => r.id);

    out.length = 0;
    expect(await reconcileCommand.run(['acc', '--deletes', '--dry-run', '--project', dir])).toBe(0);
    expect(printed()).toContain('acc: the committed snapshot holds 3 current key(s), the warehouse 3; they agree.');
    expect(printed()).toContain('The source has 2 key(s); 1 key(s) current in the warehouse are not among them: (2).');
    expect(printed()).toMatch(/A reconcile run on top of \S+ rebuilds the snapshot from the warehouse and deletes those 1 key\(s\); tidemark rollback acc --to-run \S+ undoes it\.\n\(dry run: nothing was changed\)/);
    expect(await currentIds()).toEqual([0, 1, 2]);

    // A script without --yes is refused before anything changes.
    const refused = await reconcileCommand.run(['acc', '--deletes', '--project', dir]).catch((x: unknown) => x);
    expect(exitCodeFor(refused)).toBe(2);
    expect(String((refused as Error).message)).toContain('reconcile acc changes the warehouse: pass --yes');
    expect(await currentIds()).toEqual([0, 1, 2]);

    out.length = 0;
    expect(await reconcileCommand.run(['acc', '--deletes', '--yes', '--json', '--project', dir])).toBe(0);
    expect(JSON.parse(printed())).toMatchObject({ pipeline: 'acc', status: 'succeeded', counts: { deleted: 1 }, reconcile: { deletes: { sourceKeys: 2, absent: 1, sample: [{ id: '2' }] } } });
    expect(await currentIds()).toEqual([0, 1]);

    out.length = 0;
    expect(await reconcileCommand.run(['acc', '--deletes', '--project', dir])).toBe(0);
    expect(printed()).toContain('nothing to reconcile');

    // Every source row gone: refused (exit 1) with the way out, nothing deleted.
    await duckExec(join(dir, 'source.duckdb'), 'delete from acc');
    out.length = 0;
    expect(await reconcileCommand.run(['acc', '--deletes', '--yes', '--project', dir])).toBe(1);
    expect(printed()).toMatch(/refused: the source of acc returned no key, so every one of the 2 current key\(s\) would be deleted; nothing was deleted\. .*--allow-empty/);
    expect(await currentIds()).toEqual([0, 1]);

    const usage = await reconcileCommand.run(['acc', '--allow-empty', '--project', dir]).catch((x: unknown) => x);
    expect(exitCodeFor(usage)).toBe(2);
  }, 240_000);
});

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { runCommand } from '../../../cli/commands/run.js';
import { backupsCommand } from '../../../cli/commands/backups.js';
import { quarantineCommand } from '../../../cli/commands/quarantine.js';
import { queryCommand } from '../../../cli/commands/query.js';
import { restoreCommand } from '../../../cli/commands/restore.js';
import { rollbackCommand } from '../../../cli/commands/rollback.js';
import { runsCommand } from '../../../cli/commands/runs.js';
import { sqlCommand } from '../../../cli/commands/sql.js';
import { statusCommand } from '../../../cli/commands/status.js';
import { exitCodeFor } from '../../../cli/common.js';
import type { AzuriteHandle } from '../../../shared/local/azurite.js';
import { withAzurite } from '../../support/azurite.js';
import { duckExec, makeProject } from '../../support/project.js';

/**
 * A new user's day with the CLI: settings from local.settings.json, one broken pipeline file
 * among good ones, `runs`, and a failed validation that says why.
 */
describe('tidemark CLI, everyday use', () => {
  const saved = { ...process.env };
  let az: AzuriteHandle;
  let dir: string;
  let out: string[];
  let err: string[];
  const printed = () => out.join('');

  beforeAll(async () => {
    az = await withAzurite();
    dir = makeProject({
      pipelines: {
        accounts: 'name: accounts\nsource: { connection: SRC, table: accounts }\nkey: [id]\ntarget: { warehouse: WH, table: dim_account }\n',
        ruled: `name: ruled
source: { connection: SRC, table: accounts }
key: [id]
target: { warehouse: WH, table: dim_ruled }
validation:
  rules: [{ name: no_such_column, sql: "select count(*) from {{current}} where nope > 0", expect: 0 }]
`,
        broken: 'name: broken\nsource: { connection: SRC, table: accounts }\nkey: [id]\ntarget:\n  warehouse: WH\n table: x\n',
      },
    });
    await duckExec(join(dir, 'source.duckdb'), `create table accounts as select range::int as id, 'n' || range as name from range(3)`);
    // The storage setting only in local.settings.json, as `func start` would read it.
    writeFileSync(join(dir, 'local.settings.json'), JSON.stringify({ IsEncrypted: false, Values: { AzureWebJobsStorage: az.connectionString } }));
  });
  afterAll(async () => {
    await az?.stop();
  });
  beforeEach(() => {
    out = [];
    err = [];
    delete process.env.AzureWebJobsStorage;
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      err.push(String(chunk));
      return true;
    });
  });
  afterEach(() => {
    vi.restoreAllMocks();
    process.env = { ...saved };
  });

  it('runs a good pipeline next to a broken file, and fails only what needs the broken one with the parser snippet', async () => {
    expect(await runCommand.run(['accounts', '--project', dir, '--json'])).toBe(0);
    expect(JSON.parse(printed())).toMatchObject({ pipeline: 'accounts', status: 'succeeded', counts: { inserted: 3 } });

    const e = await runCommand.run(['broken', '--project', dir]).catch((x: unknown) => x);
    expect(exitCodeFor(e)).toBe(2);
    expect(String((e as Error).message)).toBe(
      'pipelines/broken.yaml: invalid YAML: All mapping items must start at the same column at line 6, column 1:\n\n  warehouse: WH\n table: x\n^',
    );

    out.length = 0;
    expect(await statusCommand.run(['--project', dir])).toBe(0);
    expect(printed()).toContain('accounts  watermark=');
    expect(printed()).toContain('broken  does not load: pipelines/broken.yaml: invalid YAML');
  });

  it('prints why a validation failed, and --json carries the detail', async () => {
    expect(await runCommand.run(['ruled', '--project', dir])).toBe(1);
    const text = printed();
    expect(text).toMatch(/rule:no_such_column\s+NO\s+0/);
    expect(text).toMatch(/\nrule:no_such_column: the rule's SQL failed: .*nope/);

    out.length = 0;
    expect(await runCommand.run(['ruled', '--project', dir, '--json'])).toBe(1);
    const json = JSON.parse(printed()) as { validations: Array<{ check: string; passed: boolean; detail?: string }> };
    expect(json.validations.find((v) => v.check === 'rule:no_such_column')).toMatchObject({ passed: false, detail: expect.stringMatching(/^the rule's SQL failed: .*nope/) });
  });

  it('lists runs with --limit and --status, and refuses bad values as usage errors', async () => {
    expect(await runCommand.run(['accounts', '--project', dir, '--json'])).toBe(0);
    out.length = 0;
    expect(await runsCommand.run(['accounts', '--project', dir, '--json'])).toBe(0);
    const all = JSON.parse(printed()) as Array<{ runId: string; status: string; counts: { inserted: number } }>;
    expect(all.map((r) => r.status)).toEqual(['succeeded', 'succeeded']);
    expect(all[0]!.runId > all[1]!.runId).toBe(true); // newest first
    expect(all.map((r) => r.counts.inserted)).toEqual([0, 3]);

    out.length = 0;
    expect(await runsCommand.run(['accounts', '--project', dir, '--limit', '1'])).toBe(0);
    expect(printed()).toContain(all[0]!.runId);
    expect(printed()).not.toContain(all[1]!.runId);
    expect(printed()).toContain('(1 older run(s); --limit N shows more)');

    out.length = 0;
    expect(await runsCommand.run(['ruled', '--project', dir, '--status', 'validation_failed', '--json'])).toBe(0);
    expect((JSON.parse(printed()) as unknown[]).length).toBe(2);
    out.length = 0;
    expect(await runsCommand.run(['accounts', '--project', dir, '--status', 'failed'])).toBe(0);
    expect(printed()).toBe('accounts: no runs with status failed\n');

    for (const bad of [['accounts', '--status', 'done'], ['accounts', '--limit', '0'], ['nope']]) {
      const e = await runsCommand.run([...bad, '--project', dir]).catch((x: unknown) => x);
      expect(exitCodeFor(e)).toBe(2);
    }
  });

  it('rollback and restore show what they will do; --dry-run changes nothing, a script needs --yes, a bad --as-of is a usage error', async () => {
    const src = join(dir, 'source.duckdb');
    await duckExec(src, 'create table hist as select range::int as id, 0 as v from range(4)');
    writeFileSync(join(dir, 'pipelines', 'hist.yaml'), 'name: hist\nsource: { connection: SRC, table: hist }\nkey: [id]\ntarget: { warehouse: WH, table: dim_hist }\n');
    const ids: string[] = [];
    // The third run is a full refresh, so a backup of the target as run 2 left it is taken first.
    for (const [sql, full] of [['select 1', false], ['update hist set v = 1 where id < 2', false], ['delete from hist where id = 3', true]] as const) {
      await duckExec(src, sql);
      out.length = 0;
      expect(await runCommand.run(['hist', '--project', dir, '--json', ...(full ? ['--full'] : [])])).toBe(0);
      ids.push((JSON.parse(printed()) as { runId: string }).runId);
    }
    const [r1, r2, r3] = ids as [string, string, string];

    out.length = 0;
    expect(await rollbackCommand.run(['hist', '--to-run', r1, '--dry-run', '--project', dir])).toBe(0);
    expect(printed()).toContain(`hist: rolling back to ${r1} undoes 2 run(s), newest first:`);
    expect(printed()).toMatch(new RegExp(`${r3}\\s+0\\s+0\\s+1\\n${r2}\\s+0\\s+2\\s+0`));
    expect(printed()).toContain('the 3 version(s) they closed are open again (0 inserted, 2 updated, 1 deleted key(s) in all)');
    expect(printed()).toContain('(dry run: nothing was changed)');
    out.length = 0;
    expect(await runsCommand.run(['hist', '--project', dir, '--json'])).toBe(0);
    expect((JSON.parse(printed()) as Array<{ status: string }>).map((r) => r.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);

    // Not a terminal and no --yes: refused, nothing done.
    const refused = await rollbackCommand.run(['hist', '--to-run', r1, '--project', dir]).catch((x: unknown) => x);
    expect(exitCodeFor(refused)).toBe(2);
    expect(String((refused as Error).message)).toContain('pass --yes to go ahead without a prompt, or --dry-run');

    out.length = 0;
    expect(await backupsCommand.run(['hist', '--project', dir, '--json'])).toBe(0);
    const [backup] = JSON.parse(printed()) as Array<{ backupId: string; rows: number }>;
    out.length = 0;
    expect(await restoreCommand.run(['hist', '--backup', backup!.backupId, '--dry-run', '--json', '--project', dir])).toBe(0);
    expect(JSON.parse(printed())).toEqual({ pipeline: 'hist', backupId: backup!.backupId, table: expect.any(String), rows: backup!.rows, undone: [r3], checkpointRunId: r2, dryRun: true });
    out.length = 0;
    expect(await restoreCommand.run(['hist', '--backup', backup!.backupId, '--dry-run', '--project', dir])).toBe(0);
    expect(printed()).toContain(`replaces every row of the target with the ${backup!.rows} row(s) of`);
    expect(printed()).toContain(`runs whose effect goes (marked rolled_back): ${r3}\n  the checkpoint goes back to ${r2}\n(dry run: nothing was changed)`);

    out.length = 0;
    expect(await rollbackCommand.run(['hist', '--to-run', r1, '--yes', '--json', '--project', dir])).toBe(0);
    expect(JSON.parse(printed())).toEqual({ pipeline: 'hist', toRunId: r1, undone: [r3, r2] });

    const bad = await queryCommand.run(['hist', '--as-of', 'yesterday', '--project', dir]).catch((x: unknown) => x);
    expect(exitCodeFor(bad)).toBe(2);
    expect(String((bad as Error).message)).toContain('invalid --as-of "yesterday"');
  });

  it('quarantine marks the rows of a rolled-back run, and --hide-rolled-back leaves them out', async () => {
    const src = join(dir, 'source.duckdb');
    await duckExec(src, `create table q as select 1 as id, 'a' as name, TIMESTAMP '2026-01-01' as modified union all select 2, NULL, TIMESTAMP '2026-01-01'`);
    writeFileSync(
      join(dir, 'pipelines', 'qq.yaml'),
      `name: qq
source: { connection: SRC, table: q, changeDetection: { mode: timestamp, column: modified } }
key: [id]
transform:
  rules: [{ name: name_present, check: "name is not null", onFail: quarantine }]
target: { warehouse: WH, table: dim_q }
validation: { rowCount: none }
`,
    );
    const ids: string[] = [];
    for (const sql of ['select 1', `insert into q values (3, NULL, TIMESTAMP '2026-01-02')`]) {
      await duckExec(src, sql);
      out.length = 0;
      const code = await runCommand.run(['qq', '--project', dir, '--json']);
      expect(code, printed()).toBe(0);
      ids.push((JSON.parse(printed()) as { runId: string }).runId);
    }
    const [r1, r2] = ids as [string, string];
    expect(await rollbackCommand.run(['qq', '--to-run', r1, '--yes', '--json', '--project', dir])).toBe(0);

    out.length = 0;
    expect(await quarantineCommand.run(['qq', '--project', dir, '--json'])).toBe(0);
    const listed = JSON.parse(printed()) as Array<{ runId: string; runStatus: string; rolledBack: boolean; row: { id: number } }>;
    expect(listed.map((r) => [r.runId, r.runStatus, r.rolledBack, r.row.id])).toEqual([
      [r2, 'rolled_back', true, 3],
      [r1, 'succeeded', false, 2],
    ]);
    out.length = 0;
    expect(await quarantineCommand.run(['qq', '--project', dir])).toBe(0);
    expect(printed()).toContain(`${r2} (rolled back)`);
    out.length = 0;
    expect(await quarantineCommand.run(['qq', '--project', dir, '--hide-rolled-back', '--json'])).toBe(0);
    expect((JSON.parse(printed()) as Array<{ runId: string }>).map((r) => r.runId)).toEqual([r1]);
  });

  it('query --as-of takes --key, --columns and --limit, and sql --json and query --json print values by the same rule', async () => {
    const src = join(dir, 'source.duckdb');
    await duckExec(src, `create table acc as select range::int as id, (range * 1000 + 0.65)::decimal(18,2) as revenue, (9007199254740993::bigint + range)::bigint as big, TIMESTAMP '2026-01-01 01:02:03.123456' as seen from range(1, 6)`);
    writeFileSync(join(dir, 'pipelines', 'acc.yaml'), 'name: acc\nsource: { connection: SRC, table: acc }\nkey: [id]\ntarget: { warehouse: WH, table: dim_acc }\n');
    expect(await runCommand.run(['acc', '--project', dir, '--json'])).toBe(0);
    const now = new Date().toISOString();

    out.length = 0;
    expect(await queryCommand.run(['acc', '--as-of', now, '--key', '2', '--json', '--project', dir])).toBe(0);
    const one = JSON.parse(printed()) as Array<{ current: boolean; values: unknown }>;
    expect(one.map((v) => [v.current, v.values])).toEqual([[true, { id: 2, revenue: '2000.65', big: '9007199254740995', seen: '2026-01-01T01:02:03.123456Z' }]]);

    out.length = 0;
    expect(await sqlCommand.run(['select id, revenue, big from dim_acc where id = 2 and _tm_is_current', '--json', '--project', dir])).toBe(0);
    expect(JSON.parse(printed())).toEqual([{ id: 2, revenue: '2000.65', big: '9007199254740995' }]);

    out.length = 0;
    expect(await queryCommand.run(['acc', '--as-of', now, '--columns', 'id,revenue', '--limit', '2', '--project', dir])).toBe(0);
    expect(printed()).toBe('id  revenue\n--  -------\n1   1000.65\n2   2000.65\n(2 of 5 rows; --limit N or --key K for others, --json for all)\n');

    out.length = 0;
    expect(await sqlCommand.run(['select seen from dim_acc where id = 2', '--json', '--project', dir])).toBe(0);
    expect(JSON.parse(printed())).toEqual([{ seen: '2026-01-01T01:02:03.123456Z' }]);

    for (const bad of [['--columns', 'nope'], ['--limit', '0'], ['--key', '1,2']]) {
      const e = await queryCommand.run(['acc', '--as-of', now, ...bad, '--project', dir]).catch((x: unknown) => x);
      expect(exitCodeFor(e), String(e)).toBe(2);
    }
  });
});

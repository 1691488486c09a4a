import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AzuriteHandle } from '../../../shared/local/azurite.js';
import { findRun, listRuns } from '../../../shared/state/runs.js';
import { readLease } from '../../../shared/state/leases.js';
import { createContext, type EngineContext } from '../../../shared/engine/context.js';
import { loadProject } from '../../../shared/config/load.js';
import { defaultSourceFor, defaultWarehouseFor } from '../../../shared/engine/factories.js';
import { withAzurite } from '../../support/azurite.js';
import { duckExec, duckQuery, makeProject } from '../../support/project.js';

const root = resolve(__dirname, '../../..');
const cli = join(root, 'dist', 'cli', 'main.js');

/**
 * The built CLI, killed mid-run. The run is held mid-flight by a dependency that has not run
 * yet (it waits on the queue), so the kill lands while the run owns the lease.
 */
describe('tidemark run stopped by a signal (built CLI, Azurite + DuckDB)', () => {
  let az: AzuriteHandle;
  let dir: string;
  let ctx: EngineContext;
  beforeAll(async () => {
    // The built CLI is what a user runs: build it from this tree (tsc only; ~20 s).
    execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
    az = await withAzurite();
    dir = makeProject({
      pipelines: {
        ctry: 'name: ctry\nsource: { connection: SRC, table: countries }\nkey: [id]\ntarget: { warehouse: WH, table: dim_ctry }\n',
        acc: 'name: acc\nsource: { connection: SRC, table: accounts }\nkey: [id]\ntarget: { warehouse: WH, table: dim_acc }\ndependsOn: [ctry]\n',
      },
    });
    await duckExec(
      join(dir, 'source.duckdb'),
      `create table countries as select range::int as id from range(2)`,
      `create table accounts as select range::int as id, 'n' || range as name from range(5)`,
    );
    ctx = createContext({ project: loadProject(dir), connectionString: az.connectionString, sourceFor: defaultSourceFor, warehouseFor: defaultWarehouseFor });
  }, 180_000);
  afterAll(async () => az?.stop());

  const env = () => ({ ...process.env, AzureWebJobsStorage: az.connectionString, TIDEMARK_DEPENDENCY_POLL_SECONDS: '1', CI: '1' });
  type Exit = { code: number | null; signal: string | null; stderr: string; stdout: string };
  const spawnRun = (pipeline: string): { child: ChildProcess; done: Promise<Exit> } => {
    const child = spawn(process.execPath, [cli, 'run', pipeline, '--project', dir], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    const done = new Promise<Exit>((r) => child.on('exit', (code, signal) => r({ code, signal, stderr, stdout })));
    return { child, done };
  };
  // The start takes the lease before it writes the run record: wait for both, so that a signal
  // lands on a run that exists (a kill in between leaves a lease naming no run, another case).
  const untilLeasedBy = async (pid: number) => {
    for (let i = 0; i < 300; i++) {
      const lease = await readLease(ctx.tables, 'acc');
      if (lease?.ownerPid === pid && (await findRun(ctx.tables, 'acc', lease.runId))) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no lease of acc held by pid ${pid}`);
  };

  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)('%s: the run is left interrupted, the lease released, exit %i', async (sig, code) => {
    const { child, done } = spawnRun('acc');
    await untilLeasedBy(child.pid!);
    child.kill(sig);
    const r = await done;
    expect(r.code).toBe(code);
    expect(r.stderr).toContain(`${sig}: run `);
    expect(await readLease(ctx.tables, 'acc')).toBeUndefined();
    const [last] = await listRuns(ctx.tables, 'acc', 1);
    expect(last).toMatchObject({ status: 'failed', error: `interrupted: tidemark run stopped by ${sig} before its merge committed; nothing was applied` });
  }, 60_000);

  it('SIGKILL leaves an orphan; of two tidemark runs started together at once, exactly one resumes it to succeeded (as the run asked for: resumed at its extract), the other is refused', async () => {
    const { child, done } = spawnRun('acc');
    await untilLeasedBy(child.pid!);
    child.kill('SIGKILL');
    expect((await done).signal).toBe('SIGKILL');
    const [orphan] = await listRuns(ctx.tables, 'acc', 1);
    expect(orphan!.status).not.toMatch(/failed|succeeded/);
    expect((await spawnRun('ctry').done).code).toBe(0);
    const both = await Promise.all([spawnRun('acc').done, spawnRun('acc').done]);
    // Resumed at its extract, the orphan read the source after the command began: it is the run asked for.
    const resumer = both.filter((r) => new RegExp(`^acc  run ${orphan!.runId}  succeeded  \\(resumed at its extract stage: its process, pid ${child.pid} on .+, had died; it read the source now, so it is this run\\)$`, 'm').test(r.stdout));
    expect(resumer, JSON.stringify(both)).toHaveLength(1);
    expect(resumer[0]!.code).toBe(0);
    expect(resumer[0]!.stderr).toContain(`resumed run ${orphan!.runId} of acc at its extract stage (its process, pid ${child.pid} on`);
    // The other was told the run is in flight (it read the lease after the takeover), or lost the
    // takeover's ETag race.
    const other = both.find((r) => r !== resumer[0])!;
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(new RegExp(`run ${orphan!.runId} of acc is in flight|another process took over run ${orphan!.runId} of acc first`));
    const runs = await listRuns(ctx.tables, 'acc', 10);
    expect(runs.find((r) => r.runId === orphan!.runId)).toMatchObject({ status: 'succeeded', counts: { inserted: 5 }, resumes: [{ stage: 'extract', from: expect.stringContaining(`pid ${child.pid} on`) }] });
    expect(runs[0]!.runId).toBe(orphan!.runId);
    expect(await duckQuery(join(dir, 'warehouse.duckdb'), 'select count(*)::int as n from dim_acc')).toEqual([{ n: 5 }]);
  }, 120_000);
});

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { versionKeyExpr } from '../../../shared/canonical/row-hash.js';
import { extractStage, mergeStage, transformStage } from '../../../shared/engine/stages.js';
import { warehouseSchema } from '../../../shared/config/schema.js';
import { getRun } from '../../../shared/state/runs.js';
import { startRun } from '../../../shared/engine/start-run.js';
import { startAzurite, type AzuriteHandle } from '../../../shared/local/azurite.js';
import type { LocalStack } from '../../../shared/local/stack.js';
import { CONTAINERS, TABLES, layout } from '../../../shared/storage/layout.js';
import { changesHashRule, changesKeyColumns, changesManifestSchema, type ChangesManifest } from '../../../shared/storage/manifest.js';
import { duckExec, duckQuery } from '../../support/project.js';
import { HOUR, T0, accountsProject, changeAccounts, driveUntilEnded, drain, openFaultyStack, pipelineState, runThroughHost } from '../../support/reliability.js';

// A DuckDB target's changes file holds no `_tm_version_key` (manifest `versionKey: merge`):
// the merge computes it. A run whose file was written before that (no `versionKey` in the
// manifest, the key in the file), still in flight when tidemark is upgraded, must merge to
// exactly the same dimension, on Azurite and the real DuckDB warehouse.
describe('the version key of a changes file: computed by the merge, or read from the file', () => {
  const stacks: Array<{ az: AzuriteHandle; stack: LocalStack; dir: string; clock: { t: number } }> = [];
  const open = async () => {
    const az = await startAzurite();
    const dir = await accountsProject();
    const clock = { t: T0 };
    const s = { az, dir, clock, stack: await openFaultyStack({ az, dir, clock }) };
    stacks.push(s);
    return s;
  };
  let computed: Awaited<ReturnType<typeof open>>;
  let fromFile: Awaited<ReturnType<typeof open>>;
  beforeAll(async () => {
    computed = await open();
    fromFile = await open();
  });
  afterAll(async () => {
    for (const s of stacks) {
      await s.stack.close();
      await s.az.stop();
    }
  });

  const manifestOf = async (stack: LocalStack, runId: string): Promise<ChangesManifest> =>
    changesManifestSchema.parse(JSON.parse((await stack.ctx.blobs.getText(CONTAINERS.changes, layout.changesManifest('accounts', runId)))!));
  const columnsOf = async (dir: string, file: string) =>
    (await duckQuery<{ n: string }>(join(dir, `cols-${Date.now()}.duckdb`), `SELECT name AS n FROM parquet_schema('${file}')`)).map((r) => r.n);

  /** Runs extract and transform, then rewrites the changes as a tidemark before `versionKey` wrote them, and lets the merge run. */
  const runAsBefore = async (s: typeof fromFile) => {
    const run = await startRun(s.stack.ctx, { pipeline: 'accounts', trigger: 'cli' });
    expect(await extractStage(s.stack.ctx, { pipeline: 'accounts', runId: run.runId })).toBe('done');
    expect(await transformStage(s.stack.ctx, layout.rawManifest('accounts', run.runId))).toBe('done');
    const m = await manifestOf(s.stack, run.runId);
    expect(m.versionKey).toBe('merge');
    const local = join(s.dir, `${run.runId}.parquet`);
    const withKey = join(s.dir, `${run.runId}-with-key.parquet`);
    await s.stack.ctx.blobs.downloadToFile(CONTAINERS.changes, m.changes.name, local);
    expect(await columnsOf(s.dir, local)).not.toContain('_tm_version_key');
    // Written the old way: the key in the file, by the transform's own expression.
    const keys = changesKeyColumns(['id'], m).columns!;
    await duckExec(
      join(s.dir, `${run.runId}-rewrite.duckdb`),
      `COPY (SELECT *, ${versionKeyExpr(keys, '_tm_valid_from', undefined, changesHashRule(m))} AS _tm_version_key FROM read_parquet('${local}')) TO '${withKey}' (FORMAT parquet)`,
    );
    const { md5 } = await s.stack.ctx.blobs.uploadFile(CONTAINERS.changes, m.changes.name, withKey);
    const { versionKey: _dropped, ...before } = m;
    await s.stack.ctx.blobs.putText(CONTAINERS.changes, layout.changesManifest('accounts', run.runId), JSON.stringify({ ...before, changes: { ...m.changes, md5 } }));
    await driveUntilEnded(s.stack, 'accounts', run.runId);
    return run.runId;
  };

  it('a first load and a day of changes land the same versions, keys included, either way', async () => {
    const first = await runThroughHost(computed.stack, 'accounts');
    expect(first.status).toBe('succeeded');
    const m = await manifestOf(computed.stack, first.runId);
    expect(m.versionKey).toBe('merge');
    const local = join(computed.dir, 'first.parquet');
    await computed.stack.ctx.blobs.downloadToFile(CONTAINERS.changes, m.changes.name, local);
    expect(await columnsOf(computed.dir, local)).not.toContain('_tm_version_key');
    await runAsBefore(fromFile);

    for (const s of [computed, fromFile]) {
      await changeAccounts(s.dir);
      s.clock.t += HOUR;
    }
    expect((await runThroughHost(computed.stack, 'accounts')).status).toBe('succeeded');
    await runAsBefore(fromFile);
    for (const s of [computed, fromFile]) await drain(s.stack);

    const a = await pipelineState(computed.stack, computed.dir, 'accounts');
    const b = await pipelineState(fromFile.stack, fromFile.dir, 'accounts');
    expect(a.runs.map((r) => r.status)).toEqual(['succeeded', 'succeeded']);
    expect(b.runs.map((r) => r.status)).toEqual(['succeeded', 'succeeded']);
    // Two days of versions: opened, closed (updates, deletes) and new, every one with a key.
    expect(a.dimension.length).toBeGreaterThan(2500);
    expect(a.dimension.every((r) => r._tm_version_key !== null && r._tm_version_key !== undefined)).toBe(true);
    expect(a.dimension).toEqual(b.dimension);
    expect(a.ledger).toEqual(b.ledger);
    // And the key is the documented one: md5 of key @ valid_from, for every version.
    const wrong = await duckQuery<{ n: bigint }>(
      join(computed.dir, 'warehouse.duckdb'),
      `SELECT count(*) AS n FROM dw.dim_account WHERE _tm_version_key IS DISTINCT FROM ${versionKeyExpr([{ name: 'id', type: 'INTEGER' }], '_tm_valid_from', undefined, changesHashRule(m))}`,
    );
    expect(wrong[0]!.n).toBe(0n);
  });

  it('a versionKey: merge file whose target moved to a SQL Server warehouse fails its run in the merge stage, before anything is written', async () => {
    const s = computed;
    s.clock.t += HOUR;
    const before = await pipelineState(s.stack, s.dir, 'accounts');
    const run = await startRun(s.stack.ctx, { pipeline: 'accounts', trigger: 'cli', mode: 'full' });
    expect(await extractStage(s.stack.ctx, { pipeline: 'accounts', runId: run.runId })).toBe('done');
    expect(await transformStage(s.stack.ctx, layout.rawManifest('accounts', run.runId))).toBe('done');
    expect((await manifestOf(s.stack, run.runId)).versionKey).toBe('merge');
    // The project as a later deployment reads it: the same target in an mssql warehouse, whose
    // server is never reached (no such setting): the refusal comes first.
    const warehouses = s.stack.ctx.project.config.warehouses;
    const duck = warehouses.WH!;
    warehouses.WH = warehouseSchema.parse({ kind: 'mssql', setting: 'TIDEMARK_NO_SUCH_SETTING' });
    try {
      expect(await mergeStage(s.stack.ctx, { pipeline: 'accounts', runId: run.runId })).toBe('failed');
    } finally {
      warehouses.WH = duck;
    }
    const failed = await getRun(s.stack.ctx.tables, 'accounts', run.runId);
    expect(failed.status).toBe('failed');
    expect(failed.error).toContain(`the changes of run ${run.runId} of accounts hold no _tm_version_key (written for a DuckDB or PostgreSQL target), and its mssql warehouse loads the file's columns as they are; nothing was applied`);
    const after = await pipelineState(s.stack, s.dir, 'accounts');
    // No backup of the full run's target, no version, no ledger row, the checkpoint where it was.
    expect(after.dimension).toEqual(before.dimension);
    expect(after.ledger).toEqual(before.ledger);
    expect(after.checkpoint).toEqual(before.checkpoint);
    expect(await s.stack.ctx.tables.list(TABLES.backups, 'accounts')).toEqual([]);
    const tables = await duckQuery<{ t: string }>(join(s.dir, 'warehouse.duckdb'), `SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'dw' ORDER BY 1`);
    expect(tables.map((t) => t.t)).toEqual(['_tm_ledger', 'dim_account']);
  });
});

import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLocalStack, runOnce, type LocalStack } from '../../shared/local/stack.js';
import type { AzuriteHandle } from '../../shared/local/azurite.js';
import { rollbackPipeline } from '../../shared/rollback/undo-runs.js';
import { readCheckpoint } from '../../shared/state/checkpoints.js';
import { dailyHousekeeping } from '../../shared/engine/housekeeping.js';
import { CONTAINERS, TABLES } from '../../shared/storage/layout.js';
import { snapshotManifestSchema, type SnapshotManifest } from '../../shared/storage/manifest.js';
import { withAzurite } from '../support/azurite.js';
import { duckExec, duckQuery, makeProject } from '../support/project.js';

// The committed snapshot through the real chain (issue #8): a first load writes a base, a run
// with few changes adds a delta of just those keys, a worker on another instance (no cache)
// downloads and checks the layers, a damaged layer is refused by name, a rollback points back
// at an older layer set, and a pointer of an older tidemark (one Parquet file) still works.
function filesUnder(d: string): string[] {
  return readdirSync(d, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => e.name);
}

const PIPELINE = `name: accounts
source:
  connection: SRC
  table: crm.accounts
  changeDetection: { mode: full }
key: [id]
target:
  warehouse: WH
  table: dw.dim_account
  deletes: retire
  # Hex hashes, as an older tidemark built its targets: the file also reads such a tidemark's
  # snapshot pointer (no hash rule recorded = rule 1, hex), which only ever names a hex target.
  hashFormat: hex
validation:
  rowCount: exact
`;

describe('layered snapshots on Azurite', () => {
  let az: AzuriteHandle;
  let dir: string;
  const stacks: LocalStack[] = [];
  const clock = { t: Date.parse('2026-01-01T00:00:00Z') };
  const open = async (workDir: string) => {
    const s = await openLocalStack({
      projectDir: dir,
      connectionString: az.connectionString,
      env: { ...process.env, TIDEMARK_WORK_DIR: join(dir, workDir) },
      now: () => new Date(clock.t),
    });
    stacks.push(s);
    return s;
  };
  const run = async (s: LocalStack) => {
    clock.t += 3_600_000;
    return runOnce(s, { pipeline: 'accounts' });
  };
  const manifest = async (s: LocalStack): Promise<SnapshotManifest> => {
    const { checkpoint } = await readCheckpoint(s.ctx.tables, 'accounts');
    return snapshotManifestSchema.parse(JSON.parse((await s.ctx.blobs.getText(CONTAINERS.state, checkpoint.snapshot!))!));
  };
  const dimension = () => duckQuery(join(dir, 'warehouse.duckdb'), 'select id, city, _tm_is_current as cur from dw.dim_account order by id, _tm_valid_from');
  const source = (...sql: string[]) => duckExec(join(dir, 'source.duckdb'), ...sql);

  beforeAll(async () => {
    az = await withAzurite();
    dir = makeProject({ pipelines: { accounts: PIPELINE } });
    await source(
      'create schema crm',
      'create table crm.accounts (id integer, city varchar)',
      `insert into crm.accounts select i, 'c' || (i % 5) from range(1, 201) t(i)`,
    );
  });
  afterAll(async () => {
    for (const s of stacks) await s.close();
    await az?.stop();
  });

  it('writes a base, then deltas of the changed keys only, read from the cache on the same worker', async () => {
    const a = await open('worker-a');
    expect((await run(a)).counts).toMatchObject({ inserted: 200 });
    const first = await manifest(a);
    expect(first.layers.map((l) => l.rows)).toEqual([200]);
    expect(first.current).toBe(200);

    await source(`update crm.accounts set city = 'moved' where id <= 3`, 'delete from crm.accounts where id = 10', 'insert into crm.accounts values (201, null)');
    const second = await run(a);
    expect(second.counts).toMatchObject({ inserted: 1, updated: 3, deleted: 1, unchanged: 196 });
    const m2 = await manifest(a);
    // The base is carried over untouched; the delta holds the 5 keys the run changed (one a tombstone).
    expect(m2.layers[0]).toEqual(first.layers[0]);
    expect(m2.layers.map((l) => l.rows)).toEqual([200, 5]);
    expect(m2.current).toBe(200);
    // Both layers are in this worker's cache, named by their md5.
    const cached = readdirSync(join(dir, 'worker-a', '_cache', 'state', 'accounts', 'snapshots'));
    expect(cached.sort()).toEqual(m2.layers.map((l) => `${l.name.split('/').pop()}~${l.md5}`).sort());
    // The raw parts and the changes file left the cache once their stage was done with them.
    expect(filesUnder(join(dir, 'worker-a', '_cache', 'raw'))).toEqual([]);
    expect(filesUnder(join(dir, 'worker-a', '_cache', 'changes'))).toEqual([]);
  });

  it('a worker without the cache downloads the layers and gets the same answer', async () => {
    const b = await open('worker-b');
    await source(`update crm.accounts set city = 'again' where id in (1, 50)`, `update crm.accounts set city = city where id = 60`);
    const third = await run(b);
    expect(third.status).toBe('succeeded');
    expect(third.counts).toMatchObject({ inserted: 0, updated: 2, deleted: 0, unchanged: 198 });
    expect((await manifest(b)).layers.map((l) => l.rows)).toEqual([200, 5, 2]);
  });

  it('refuses a layer whose bytes do not match the manifest, naming it', async () => {
    const c = await open('worker-c');
    const m = await manifest(c);
    const victim = m.layers[1]!;
    const bad = join(dir, 'bad.parquet');
    writeFileSync(bad, 'not the layer');
    const original = join(dir, 'original.parquet');
    await c.ctx.blobs.downloadToFile(CONTAINERS.state, victim.name, original);
    await c.ctx.blobs.uploadFile(CONTAINERS.state, victim.name, bad);
    await source(`update crm.accounts set city = 'x' where id = 2`);
    const failed = await run(c);
    expect(failed.status).toBe('failed');
    expect(failed.error).toContain(`snapshot layer state/${victim.name} does not match`);
    await c.ctx.blobs.uploadFile(CONTAINERS.state, victim.name, original);
    rmSync(bad);
  });

  it('a rollback points back at the older layers, and running again gives the same table', async () => {
    const a = stacks[0]!;
    const before = await dimension();
    const { checkpoint } = await readCheckpoint(a.ctx.tables, 'accounts');
    const [r1, r2, r3] = checkpoint.history.map((h) => h.runId);
    await rollbackPipeline(a.ctx, { pipeline: 'accounts', toRunId: r2!, by: 'test' });
    expect((await manifest(a)).layers.map((l) => l.rows)).toEqual([200, 5]);
    expect(r1).toBeDefined();
    expect(r3).toBeDefined();
    // The failed run's source change is still there, so the re-run does run 3's work and that one.
    const again = await run(a);
    expect(again.counts).toMatchObject({ updated: 3, unchanged: 197 });
    const after = await dimension();
    expect(after.filter((r) => r.id !== 2)).toEqual(before.filter((r) => r.id !== 2));
  });

  it('reads a snapshot pointer of an older tidemark (one Parquet file) and turns it into a base', async () => {
    const a = stacks[0]!;
    const m = await manifest(a);
    // The effective snapshot as one file, where the old format kept it.
    const whole = join(dir, 'whole.parquet');
    const files = await Promise.all(
      m.layers.map(async (l, i) => {
        const f = join(dir, `layer-${i}.parquet`);
        await a.ctx.blobs.downloadToFile(CONTAINERS.state, l.name, f);
        return f;
      }),
    );
    await duckExec(
      ':memory:',
      `copy (select * exclude (_tm_layer) from (${files.map((f, i) => `select *, ${i} as _tm_layer from read_parquet('${f}')`).join(' union all by name ')}) qualify row_number() over (partition by id order by _tm_layer desc) = 1 and not _tm_deleted) to '${whole}' (format parquet)`,
    );
    await a.ctx.blobs.uploadFile(CONTAINERS.state, 'accounts/snapshots/legacy.parquet', whole);
    const stored = await a.ctx.tables.get(TABLES.checkpoints, 'accounts', 'checkpoint');
    await a.ctx.tables.replace(TABLES.checkpoints, { ...stored!.entity, snapshot: 'accounts/snapshots/legacy.parquet' }, stored!.etag);

    await source(`update crm.accounts set city = 'late' where id = 7`);
    const next = await run(a);
    expect(next.status).toBe('succeeded');
    expect(next.counts).toMatchObject({ inserted: 0, updated: 1, deleted: 0, unchanged: 199 });
    const converted = await manifest(a);
    expect(converted.layers.map((l) => l.rows)).toEqual([200]);
    expect(converted.current).toBe(200);
  });

  it('housekeeping deletes the snapshot blobs no run in the history can be rewound to, and keeps what they name', async () => {
    const a = stacks[0]!;
    // Enough runs that the history window can move past some of them.
    for (let i = 0; i < 3; i++) {
      await source(`update crm.accounts set city = 'h${i}' where id = ${100 + i}`);
      expect((await run(a)).status).toBe('succeeded');
    }
    const { checkpoint } = await readCheckpoint(a.ctx.tables, 'accounts');
    // As if the history limit had dropped all but the last two runs (one row per committed run).
    const kept = checkpoint.history.slice(-2);
    for (const row of await a.ctx.tables.list<{ partitionKey: string; rowKey: string; position: number }>(TABLES.checkpoints, 'accounts')) {
      if (row.rowKey.startsWith('history-') && row.position < checkpoint.position - 1) await a.ctx.tables.delete(TABLES.checkpoints, 'accounts', row.rowKey);
    }
    expect((await readCheckpoint(a.ctx.tables, 'accounts')).checkpoint.history).toEqual(kept);
    const needed = new Set<string>();
    for (const h of kept) {
      needed.add(h.snapshot!);
      const m = snapshotManifestSchema.parse(JSON.parse((await a.ctx.blobs.getText(CONTAINERS.state, h.snapshot!))!));
      for (const l of m.layers) needed.add(l.name);
    }
    const before: string[] = [];
    for await (const b of a.ctx.blobs.list(CONTAINERS.state, 'accounts/snapshots/')) before.push(b.name);

    const removed = await dailyHousekeeping(a.ctx);
    const after: string[] = [];
    for await (const b of a.ctx.blobs.list(CONTAINERS.state, 'accounts/snapshots/')) after.push(b.name);
    expect(removed.some((r) => r.includes('snapshot blob(s) of accounts'))).toBe(true);
    for (const n of needed) expect(after).toContain(n);
    // Gone: only blobs of runs older than the oldest kept run that no kept manifest names.
    const gone = before.filter((n) => !after.includes(n));
    expect(gone.length).toBeGreaterThan(0);
    for (const n of gone) {
      expect(needed.has(n)).toBe(false);
      expect(n.slice('accounts/snapshots/'.length).split('.')[0]! < kept[0]!.runId).toBe(true);
    }
    // The kept state still works: the next run reads it.
    await source(`update crm.accounts set city = 'after' where id = 150`);
    expect((await run(a)).counts).toMatchObject({ updated: 1, unchanged: 199 });
  });
});

import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite, type AzuriteHandle } from '../../../shared/local/azurite.js';
import type { LocalStack } from '../../../shared/local/stack.js';
import { readCheckpoint } from '../../../shared/state/checkpoints.js';
import { CONTAINERS } from '../../../shared/storage/layout.js';
import { snapshotManifestSchema } from '../../../shared/storage/manifest.js';
import { DEFAULT_COMPACTION } from '../../../shared/transform/run-transform.js';
import { duckExec, duckQuery, makeProject } from '../../support/project.js';
import { T0, drain, openFaultyStack, runThroughHost } from '../../support/reliability.js';

const RUNS = Number(process.env.TIDEMARK_SOAK_RUNS ?? 200);
const STEP = 15 * 60_000;

const ITEMS = `name: items
source:
  connection: SRC
  table: crm.items
  changeDetection: { mode: full }
key: [id]
target:
  warehouse: WH
  table: dw.dim_item
  deletes: retire
validation:
  rowCount: exact
  checksumColumns: [id, v, n]
retry: { attempts: 2, backoff: fixed, initialDelay: 10ms }
`;

/** mulberry32: a small seeded PRNG, so a failure replays exactly. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Row {
  v: string;
  n: number;
}
type Change = { op: 'insert' | 'update' | 'touch' | 'delete' | 'reinsert'; id: number; row?: Row };

interface Version {
  id: number;
  v: string;
  n: number;
  vf: string;
  vt: string | null;
  cur: boolean;
  run: number;
}

/**
 * The dimension computed independently of the engine, from the change log alone: replay the
 * source state after each run and apply the SCD2 rules of docs/design.md §8 (retire deletes).
 */
function modelDimension(log: Change[][], initial: Map<number, Row>, boundaries: string[]): Version[] {
  const state = new Map(initial);
  const current = new Map<number, Version>();
  const all: Version[] = [];
  log.forEach((changes, i) => {
    for (const c of changes) {
      if (c.op === 'delete') state.delete(c.id);
      else state.set(c.id, c.row!);
    }
    const at = boundaries[i]!;
    for (const [id, cur] of current) {
      const row = state.get(id);
      if (!row || row.v !== cur.v || row.n !== cur.n) {
        cur.vt = at;
        cur.cur = false;
        current.delete(id);
      }
    }
    for (const [id, row] of state) {
      if (current.has(id)) continue;
      const v: Version = { id, v: row.v, n: row.n, vf: at, vt: null, cur: true, run: i + 1 };
      current.set(id, v);
      all.push(v);
    }
  });
  return all.sort((a, b) => a.id - b.id || a.vf.localeCompare(b.vf));
}

function fds(): number {
  return readdirSync('/proc/self/fd').length;
}

describe(`soak: ${RUNS} consecutive runs with seeded inserts, updates, deletes and re-inserts`, () => {
  let az: AzuriteHandle;
  let stack: LocalStack;
  let dir: string;
  const clock = { t: T0 };

  beforeAll(async () => {
    az = await startAzurite();
    dir = makeProject({ pipelines: { items: ITEMS } });
    stack = await openFaultyStack({ az, dir, clock });
  });
  afterAll(async () => {
    await stack?.close();
    await az?.stop();
  });

  it('ends with the dimension the model computes from the change log, and leaks no files, handles or memory', async () => {
    const random = rng(20261124);
    const src = join(dir, 'source.duckdb');
    const initial = new Map<number, Row>();
    for (let id = 1; id <= 40; id++) initial.set(id, { v: `v${id}`, n: id });
    await duckExec(
      src,
      'create schema crm',
      'create table crm.items (id integer, v varchar, n integer)',
      `insert into crm.items values ${[...initial].map(([id, r]) => `(${id}, '${r.v}', ${r.n})`).join(', ')}`,
    );
    const live = new Map(initial);
    const deleted = new Set<number>();
    let nextId = 41;
    const log: Change[][] = [];
    const boundaries: string[] = [];
    const runIds: string[] = [];
    const samples: Record<number, { rss: number; fds: number }> = {};

    for (let i = 1; i <= RUNS; i++) {
      // The first run loads the initial rows; every later one applies a random batch first.
      const changes: Change[] = [];
      if (i > 1) {
        const k = 1 + Math.floor(random() * 6);
        for (let j = 0; j < k; j++) {
          const ids = [...live.keys()];
          const pick = () => ids[Math.floor(random() * ids.length)]!;
          const r = random();
          if (r < 0.25 || ids.length < 5) {
            const id = nextId++;
            changes.push({ op: 'insert', id, row: { v: `v${id}`, n: Math.floor(random() * 100) } });
          } else if (r < 0.55) {
            const id = pick();
            changes.push({ op: 'update', id, row: { v: `u${i}-${id}`, n: live.get(id)!.n + 1 } });
          } else if (r < 0.65) {
            const id = pick();
            changes.push({ op: 'touch', id, row: live.get(id)! });
          } else if (r < 0.85) {
            changes.push({ op: 'delete', id: pick() });
          } else if (deleted.size > 0) {
            const id = [...deleted][Math.floor(random() * deleted.size)]!;
            changes.push({ op: 'reinsert', id, row: { v: `r${i}-${id}`, n: 0 } });
          }
          // Later changes of one batch see the earlier ones, as the source does.
          const c = changes[changes.length - 1];
          if (!c) continue;
          if (c.op === 'delete') {
            live.delete(c.id);
            deleted.add(c.id);
          } else {
            live.set(c.id, c.row!);
            deleted.delete(c.id);
          }
        }
        const sql = changes.map((c) =>
          c.op === 'delete'
            ? `delete from crm.items where id = ${c.id}`
            : c.op === 'insert' || c.op === 'reinsert'
              ? `insert into crm.items values (${c.id}, '${c.row!.v}', ${c.row!.n})`
              : `update crm.items set v = '${c.row!.v}', n = ${c.row!.n} where id = ${c.id}`,
        );
        if (sql.length) await duckExec(src, ...sql);
      }
      log.push(changes);
      clock.t = T0 + i * STEP;
      boundaries.push(new Date(clock.t).toISOString().slice(0, 19));
      const r = await runThroughHost(stack, 'items');
      if (r.status !== 'succeeded') throw new Error(`run ${i} ${r.status}: ${r.error ?? JSON.stringify(r.validations)}`);
      runIds.push(r.runId);
      if (i === 20 || i === RUNS) {
        global.gc?.();
        samples[i] = { rss: process.memoryUsage().rss, fds: fds() };
      }
    }
    await drain(stack);

    const model = modelDimension(log, initial, boundaries);
    const got = await duckQuery<{ id: number; v: string; n: number; vf: string; vt: string | null; cur: boolean; del: boolean; run: string }>(
      join(dir, 'warehouse.duckdb'),
      `select id, v, n, strftime(_tm_valid_from, '%Y-%m-%dT%H:%M:%S') vf, strftime(_tm_valid_to, '%Y-%m-%dT%H:%M:%S') vt,
              _tm_is_current cur, _tm_is_deleted del, _tm_run_id run from dw.dim_item order by id, _tm_valid_from`,
    );
    expect(got.every((g) => g.del === false)).toBe(true);
    expect(got.map(({ del: _d, run, ...g }) => ({ ...g, run: runIds.indexOf(run) + 1 }))).toEqual(model);
    // The model is not trivial: it saw every kind of change.
    const ops = new Set(log.flat().map((c) => c.op));
    expect([...ops].sort()).toEqual(['delete', 'insert', 'reinsert', 'touch', 'update']);
    expect(model.filter((m) => !m.cur).length).toBeGreaterThan(RUNS);

    const ledger = await duckQuery<{ n: bigint }>(join(dir, 'warehouse.duckdb'), 'select count(*) n from dw._tm_ledger');
    expect(Number(ledger[0]!.n)).toBe(RUNS);

    // No leaked scratch: the work folder holds DuckDB's (empty) spill folder and the blob cache,
    // which keeps snapshot layers only (parts and changes leave it once used): the committed
    // snapshot's, and at most one older snapshot's.
    const work = join(dir, 'work');
    expect(readdirSync(work).sort()).toEqual(['_cache', 'duckdb-spill']);
    expect(readdirSync(join(work, 'duckdb-spill'))).toEqual([]);
    const cached = readdirSync(join(work, '_cache'), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => relative(join(work, '_cache'), join(e.parentPath, e.name)));
    const { checkpoint } = await readCheckpoint(stack.ctx.tables, 'items');
    const committed = snapshotManifestSchema.parse(JSON.parse((await stack.ctx.blobs.getText(CONTAINERS.state, checkpoint.snapshot!))!));
    // The soak went through deltas and compactions both: layer counts over the committed runs.
    const layerCounts: number[] = [];
    for (const h of checkpoint.history) {
      layerCounts.push(snapshotManifestSchema.parse(JSON.parse((await stack.ctx.blobs.getText(CONTAINERS.state, h.snapshot!))!)).layers.length);
    }
    expect(Math.max(...layerCounts)).toBeGreaterThan(1);
    expect(layerCounts.slice(1).filter((n) => n === 1).length).toBeGreaterThan(0);
    for (const l of committed.layers) expect(cached).toContain(`state/${l.name}~${l.md5}`);
    expect(cached.every((c) => c.startsWith('state/items/snapshots/'))).toBe(true);
    expect(cached.length).toBeLessThanOrEqual(2 * DEFAULT_COMPACTION.maxDeltas + 2);

    if (RUNS >= 40) {
      const a = samples[20]!;
      const b = samples[RUNS]!;
      // Handles: a stable count (a leak of one per run would add 180).
      expect(b.fds - a.fds).toBeLessThanOrEqual(10);
      // Memory: allowance for allocator and JIT warm-up, far below a per-run leak of what a run touches.
      expect(b.rss).toBeLessThan(a.rss * 1.5 + 64 * 1024 * 1024);
      console.log(`soak: ${RUNS} runs; rss ${Math.round(a.rss / 2 ** 20)} MB at run 20, ${Math.round(b.rss / 2 ** 20)} MB at run ${RUNS}; fds ${a.fds} → ${b.fds}`);
    }
  }, 30 * 60_000);
});

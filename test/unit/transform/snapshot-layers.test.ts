import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pipelineSchema } from '../../../shared/config/schema.js';
import { snapshotViewSql } from '../../../shared/transform/classify.js';
import { DuckSession } from '../../../shared/duckdb/session.js';
import { runTransform, type CommittedSnapshot, type CompactionPolicy } from '../../../shared/transform/run-transform.js';
import { duckExec } from '../../support/project.js';

// The committed snapshot is a base plus deltas (issue #8: a run pays for what it changed, not
// for the dimension). Layering is an optimisation only: every run must classify exactly as it
// would against one whole snapshot. Two chains read the same seeded source history, one that
// compacts on every run and one that stacks deltas, and must agree on every output.
const root = mkdtempSync(join(tmpdir(), 'tidemark-layers-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const duck = { memoryLimit: '256MB', threads: 1, tempDir: join(root, 'spill') };

function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
}

type Source = Map<number, { city: string; note: string; t: number }>;

/** One round of source changes: updates, touches, deletes and (re)inserts over a small key space. */
function mutate(src: Source, r: () => number, round: number): void {
  for (let id = 1; id <= 60; id++) {
    const x = r();
    const row = src.get(id);
    if (!row) {
      if (x < 0.3) src.set(id, { city: `c${Math.floor(r() * 5)}`, note: 'n0', t: round });
    } else if (x < 0.15) src.delete(id);
    else if (x < 0.35) src.set(id, { ...row, city: `c${Math.floor(r() * 5)}`, t: round });
    else if (x < 0.45) src.set(id, { ...row, t: round });
    // A type 1 column changed alone: overwritten in place, no new version.
    else if (x < 0.52) src.set(id, { ...row, note: `n${round}`, t: round });
    // Back-dated: with validFrom from a column, not newer than the current version (stale).
    else if (x < 0.56) src.set(id, { ...row, city: `old${round}`, t: Math.max(0, row.t - 1) });
  }
}

interface Chain {
  policy: CompactionPolicy;
  snapshot: CommittedSnapshot | undefined;
  kinds: string[];
}

async function part(dir: string, rows: Array<[number, string, string, number]>): Promise<string> {
  const file = join(dir, 'part.parquet');
  const values = rows.length
    ? rows.map(([id, city, note, t]) => `(${id}, '${city}', '${note}', TIMESTAMP '2026-01-01' + INTERVAL ${t} HOUR)`).join(', ')
    : `(0, '', '', TIMESTAMP '2026-01-01')`;
  await duckExec(':memory:', `COPY (SELECT * FROM (VALUES ${values}) t(id, city, note, modified_at)${rows.length ? '' : ' WHERE false'}) TO '${file}' (FORMAT parquet)`);
  return file;
}

async function step(chain: Chain, name: string, mode: 'full' | 'timestamp', deletes: 'retire' | 'mark', validFrom: 'load' | 'column', file: string, round: number, fullRead: boolean) {
  const p = pipelineSchema.parse({
    name: 'accounts',
    source: { connection: 'SRC', table: 'crm.accounts', changeDetection: mode === 'full' ? { mode } : { mode, column: 'modified_at' } },
    key: ['id'],
    target: {
      warehouse: 'WH',
      table: 'dw.dim_account',
      trackedColumns: ['city'],
      type1Columns: ['note'],
      deletes,
      ...(validFrom === 'column' ? { validFrom: { column: 'modified_at' } } : {}),
    },
    validation: { rowCount: 'none' },
  });
  const outDir = join(root, name, `round-${round}`);
  mkdirSync(outDir, { recursive: true });
  const out = await runTransform({
    pipeline: p,
    parts: [file],
    schema: [
      { name: 'id', type: 'INTEGER' },
      { name: 'city', type: 'VARCHAR' },
      { name: 'note', type: 'VARCHAR' },
      { name: 'modified_at', type: 'TIMESTAMP' },
    ],
    snapshot: chain.snapshot,
    compaction: chain.policy,
    fullRead,
    boundary: new Date(Date.UTC(2026, 0, 2, round)).toISOString(),
    sourceRowCount: null,
    outDir,
    duck,
  });
  chain.kinds.push(out.snapshot.kind);
  if (out.snapshot.kind === 'base') chain.snapshot = { layers: [{ file: out.snapshot.file!, rows: out.snapshot.rows }], current: out.snapshot.current };
  else if (out.snapshot.kind === 'delta') {
    chain.snapshot = { layers: [...chain.snapshot!.layers, { file: out.snapshot.file!, rows: out.snapshot.rows }], current: out.snapshot.current };
  } else chain.snapshot = { ...chain.snapshot!, current: out.snapshot.current };
  const s = await DuckSession.open(':memory:', duck);
  try {
    const changes = await s.rows(
      `SELECT id, city, note, _tm_op, CAST(_tm_valid_from AS VARCHAR) AS vf, _tm_version_key FROM read_parquet('${out.changesFile}') ORDER BY id, _tm_op`,
    );
    const layers = chain.snapshot!.layers.map((l) => l.file);
    for (const stmt of snapshotViewSql([{ name: 'id', type: 'INTEGER' }], layers[0]!, layers.slice(1))) await s.run(stmt);
    // A retired key's tombstone only hides older layers; what counts is the live keys (and, with mark, the marked ones).
    const effective = await s.rows(
      `SELECT id, _tm_row_hash, _tm_t1_hash, CAST(_tm_valid_from AS VARCHAR) AS vf, _tm_deleted FROM snap ${deletes === 'retire' ? 'WHERE NOT _tm_deleted ' : ''}ORDER BY id`,
    );
    return { counts: out.counts, changes, effective, current: out.snapshot.current };
  } finally {
    await s.close();
  }
}

describe('a layered snapshot classifies exactly as one whole snapshot', () => {
  const cases = [
    ['full', 'retire', 'load'],
    ['full', 'mark', 'load'],
    ['full', 'retire', 'column'],
    ['timestamp', 'retire', 'load'],
    ['timestamp', 'mark', 'load'],
  ] as const;
  for (const [mode, deletes, validFrom] of cases) {
    it(`${mode} extracts, deletes: ${deletes}, validFrom: ${validFrom}`, async () => {
      const r = rng(mode === 'full' ? 7 : 11);
      const src: Source = new Map();
      const whole: Chain = { policy: { maxDeltas: 0, maxDeltaFraction: 0 }, snapshot: undefined, kinds: [] };
      const layered: Chain = { policy: { maxDeltas: 4, maxDeltaFraction: 100 }, snapshot: undefined, kinds: [] };
      const totals = { type1: 0, stale: 0 };
      const tag = `${mode}-${deletes}-${validFrom}`;
      for (let round = 0; round < 14; round++) {
        if (round > 0) mutate(src, r, round);
        // A timestamp extract sees the rows modified since the last round (the first reads everything).
        const rows = [...src.entries()]
          .filter(([, v]) => mode === 'full' || round === 0 || v.t === round)
          .map(([id, v]): [number, string, string, number] => [id, v.city, v.note, v.t]);
        const dir = join(root, `${tag}-src-${round}`);
        mkdirSync(dir, { recursive: true });
        const file = await part(dir, rows);
        const fullRead = mode === 'full' || round === 0;
        const a = await step(whole, `${tag}-whole`, mode, deletes, validFrom, file, round, fullRead);
        const b = await step(layered, `${tag}-layered`, mode, deletes, validFrom, file, round, fullRead);
        expect(b.counts, `round ${round}`).toEqual(a.counts);
        expect(b.changes, `round ${round}`).toEqual(a.changes);
        expect(b.effective, `round ${round}`).toEqual(a.effective);
        expect(b.current, `round ${round}`).toBe(a.current);
        if (mode === 'full' && validFrom === 'load') expect(b.current).toBe(src.size);
        totals.type1 += a.counts.type1;
        totals.stale += a.counts.stale;
      }
      expect(whole.kinds.every((k) => k === 'base' || k === 'unchanged')).toBe(true);
      // The layered chain really stacked deltas and compacted past maxDeltas.
      expect(layered.kinds.filter((k) => k === 'delta').length).toBeGreaterThanOrEqual(8);
      expect(layered.kinds.slice(1).filter((k) => k === 'base').length).toBeGreaterThanOrEqual(1);
      // The history went through type 1 overwrites, and stale rows where validFrom is a column.
      expect(totals.type1).toBeGreaterThan(0);
      if (validFrom === 'column') expect(totals.stale).toBeGreaterThan(0);
    });
  }
});

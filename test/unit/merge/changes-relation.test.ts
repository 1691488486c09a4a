import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { HashRule } from '../../../shared/canonical/row-hash.js';
import { pipelineSchema } from '../../../shared/config/schema.js';
import { changesRelation } from '../../../shared/merge/changes-relation.js';
import { changesKeyColumns } from '../../../shared/storage/manifest.js';
import { runTransform, type SnapshotOutput } from '../../../shared/transform/run-transform.js';
import { duckExec, duckQuery } from '../../support/project.js';

// A changes file for a DuckDB or PostgreSQL target holds no `_tm_version_key`: the merge
// computes it while it reads the file, from the key types the manifest records. The computed
// key must be the one the transform writes for Synapse, byte for byte, for every kind of
// changes row (insert, update, type 1, delete) and for key types whose text has rules (decimal
// scale, timestamps, time zones, UUIDs, non-ASCII text), under both stored formats.
const KEY = ['id', 'code', 'amount', 'day', 'seen_at', 'seen_atz', 'uid', 'small'];
const pipeline = pipelineSchema.parse({
  name: 'accounts',
  source: { connection: 'SRC', table: 'crm.accounts', changeDetection: { mode: 'full' } },
  key: KEY,
  target: { warehouse: 'WH', table: 'dw.dim_account', trackedColumns: ['city'], type1Columns: ['phone'], deletes: 'retire' },
  validation: { rowCount: 'none' },
});

const root = mkdtempSync(join(tmpdir(), 'tidemark-vk-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const row = (id: number, code: string, city: string, phone: string) =>
  `(${id}::BIGINT, '${code}', ${id}.5000::DECIMAL(18,4), DATE '2026-0${id}-0${id}', TIMESTAMP '2026-01-0${id} 10:00:00.123456', TIMESTAMPTZ '2026-01-0${id} 10:00:00+02', '0000000${id}-0000-4000-8000-00000000000${id}'::UUID, ${id}::SMALLINT, '${city}', '${phone}')`;

async function part(dir: string, name: string, rows: string[]): Promise<string> {
  const file = join(dir, name);
  await duckExec(
    join(dir, `${name}.duckdb`),
    `SET TimeZone = 'UTC'`,
    `COPY (SELECT * FROM (VALUES ${rows.join(', ')}) t(${[...KEY, 'city', 'phone'].join(', ')})) TO '${file}' (FORMAT parquet)`,
  );
  return file;
}

/** A first load and a full read after it that updates, corrects (type 1), deletes and inserts. */
async function twoRuns(warehouseKind: 'synapse' | 'duckdb' | 'postgres', hashRule: HashRule) {
  const dir = join(root, `${warehouseKind}-${hashRule}`);
  mkdirSync(dir);
  const run = async (name: string, parts: string[], previous: SnapshotOutput | undefined) => {
    mkdirSync(join(dir, name));
    return runTransform({
      pipeline,
      parts,
      schema: [],
      snapshot: previous?.file ? { layers: [{ file: previous.file, rows: previous.rows }], current: previous.current } : undefined,
      fullRead: true,
      hashRule,
      // The same boundary twice (a clock that did not move): the second run's versions start
      // 1 µs after the ones they close, the interval rule's step, which the key then names.
      boundary: '2026-11-24T00:00:00.000Z',
      sourceRowCount: null,
      outDir: join(dir, name),
      duck: { memoryLimit: '256MB', threads: 1, tempDir: join(dir, 'spill') },
      warehouseKind,
    });
  };
  const first = await run('first', [await part(dir, 'p0.parquet', [row(1, 'Ålesund', 'Oslo', '1'), row(2, 'b', 'Lima', '2'), row(3, 'c', 'Rome', '3')])], undefined);
  const next = await run('next', [await part(dir, 'p1.parquet', [row(1, 'Ålesund', 'Bergen', '1'), row(2, 'b', 'Lima', '22'), row(4, 'd', 'Pune', '4')])], first.snapshot);
  const read = async (out: typeof first) => {
    const { columns } = changesKeyColumns(pipeline.key, out);
    const relation = changesRelation(out.changesFile, out.versionKey === 'merge' ? { keys: columns!, rule: out.hashRule } : undefined);
    return duckQuery<{ id: bigint; op: string; vf: string; vk: string; t: string }>(
      join(dir, `read-${Date.now()}-${Math.random()}.duckdb`),
      `SELECT id, _tm_op AS op, CAST(_tm_valid_from AS VARCHAR) AS vf, CAST(_tm_version_key AS VARCHAR) AS vk, typeof(_tm_version_key) AS t FROM ${relation} ORDER BY id, _tm_op`,
    );
  };
  return { first, next, changes: [...(await read(first)), ...(await read(next))] };
}

describe('the version key a merge computes from the changes file', () => {
  for (const rule of [4, 3] as const) {
    it(`equals the one the transform writes, for inserts, updates, type 1 corrections and deletes (hash rule ${rule})`, async () => {
      const inFile = await twoRuns('synapse', rule);
      expect(inFile.first.versionKey).toBe('file');
      const ops = inFile.changes.map((c) => `${c.id}:${c.op}`);
      expect(ops).toEqual(['1:insert', '2:insert', '3:insert', '1:update', '2:type1', '3:delete', '4:insert']);
      expect(inFile.changes.filter((c) => c.op === 'update' || c.op === 'delete').map((c) => c.vf)).toEqual(['2026-11-24 00:00:00.000001', '2026-11-24 00:00:00.000001']);
      expect(new Set(inFile.changes.map((c) => c.vk)).size).toBe(inFile.changes.length);
      expect(inFile.changes.every((c) => c.t === (rule === 4 ? 'BLOB' : 'VARCHAR'))).toBe(true);
      // No merge reads a type 1 row's version key (it overwrites the current version in place,
      // scd-sql.ts): the transform's names no version, the computed one names the corrected version.
      const opening = (rows: typeof inFile.changes) => rows.filter((c) => c.op !== 'type1');
      for (const kind of ['duckdb', 'postgres'] as const) {
        const computed = await twoRuns(kind, rule);
        expect(computed.first.versionKey).toBe('merge');
        expect(computed.next.versionKey).toBe('merge');
        expect(opening(computed.changes)).toEqual(opening(inFile.changes));
        const corrected = computed.changes.find((c) => c.op === 'type1')!;
        expect(corrected.vk).toBe(computed.changes.find((c) => c.id === corrected.id && c.op === 'insert')!.vk);
      }
    });
  }
});

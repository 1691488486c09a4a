import { describe, expect, it } from 'vitest';
import type { ResolvedProject } from '../../../shared/config/load.js';
import { pipelineSchema, warehouseSchema, type WarehouseConfig } from '../../../shared/config/schema.js';
import { mergePlanOf } from '../../../shared/engine/stages.js';
import { TerminalError } from '../../../shared/errors.js';
import { changesManifestSchema, type ChangesManifest } from '../../../shared/storage/manifest.js';

// The plan the merge stage hands the warehouse, from the changes manifest: where the version
// key comes from follows the manifest's record (and its hash rule), and a file without keys is
// refused for a warehouse that loads the file's columns as they are, before anything is written.
const pipeline = pipelineSchema.parse({
  name: 'accounts',
  source: { connection: 'SRC', table: 'crm.accounts', changeDetection: { mode: 'full' } },
  key: ['region', 'id'],
  target: { warehouse: 'WH', table: 'dw.dim_account' },
});

const projectWith = (wh: WarehouseConfig) => ({ project: { config: { warehouses: { WH: wh } } } as unknown as ResolvedProject });
const WAREHOUSES: Record<WarehouseConfig['kind'], WarehouseConfig> = {
  duckdb: warehouseSchema.parse({ kind: 'duckdb', path: 'warehouse.duckdb' }),
  postgres: warehouseSchema.parse({ kind: 'postgres', setting: 'PG' }),
  synapse: warehouseSchema.parse({ kind: 'synapse', setting: 'DW' }),
  mssql: warehouseSchema.parse({ kind: 'mssql', setting: 'SQL' }),
};

const manifest = (extra: Partial<ChangesManifest> = {}): ChangesManifest =>
  changesManifestSchema.parse({
    kind: 'changes',
    version: 1,
    pipeline: 'accounts',
    runId: '20261203T120000Z-ab12',
    baseRunId: null,
    window: { mode: 'full', from: null, to: null, next: null },
    boundary: '2026-12-03T12:00:00.000Z',
    changes: { name: 'accounts/20261203T120000Z-ab12/changes.parquet', rows: 1, md5: 'x' },
    snapshot: { name: 'accounts/snapshots/20261203T120000Z-ab12.json', rows: 1 },
    schema: [
      { name: 'id', type: 'BIGINT' },
      { name: 'region', type: 'VARCHAR' },
      { name: 'city', type: 'VARCHAR' },
    ],
    counts: { extracted: 1, inserted: 1, updated: 0, deleted: 0, unchanged: 0, stale: 0, quarantined: 0, type1: 0 },
    expected: { currentRows: null, checksum: null, checksumColumns: [], checksumScope: 'table' },
    sourceRowCount: null,
    hashRule: 4,
    createdAt: '2026-12-03T12:00:01.000Z',
    ...extra,
  });

describe('mergePlanOf', () => {
  for (const kind of ['duckdb', 'postgres'] as const) {
    it(`${kind}: a versionKey: merge file gets the key columns in key order, typed by the manifest, under the manifest's hash rule`, () => {
      for (const hashRule of [4, 3]) {
        const plan = mergePlanOf(projectWith(WAREHOUSES[kind]), pipeline, manifest({ versionKey: 'merge', hashRule }), 7);
        expect(plan.versionKeyFrom).toEqual({
          keys: [
            { name: 'region', type: 'VARCHAR' },
            { name: 'id', type: 'BIGINT' },
          ],
          rule: hashRule,
        });
        expect(plan.hashFormat).toBe(hashRule === 4 ? 'binary' : 'hex');
        expect(plan.commit).toEqual({ baseRunId: null, runSeq: 7, readTo: null, snapshot: 'accounts/snapshots/20261203T120000Z-ab12.json' });
      }
    });
  }

  for (const kind of ['duckdb', 'postgres', 'synapse', 'mssql'] as const) {
    it(`${kind}: a file that holds its keys (versionKey: file, or a manifest from before, without it) is read as it is`, () => {
      for (const extra of [{ versionKey: 'file' as const }, {}]) {
        expect(mergePlanOf(projectWith(WAREHOUSES[kind]), pipeline, manifest(extra), null)).not.toHaveProperty('versionKeyFrom');
      }
    });
  }

  for (const kind of ['synapse', 'mssql'] as const) {
    it(`${kind}: a versionKey: merge file is refused, naming the fix`, () => {
      const refuse = () => mergePlanOf(projectWith(WAREHOUSES[kind]), pipeline, manifest({ versionKey: 'merge' }), null);
      expect(refuse).toThrow(TerminalError);
      expect(refuse).toThrow(
        `the changes of run 20261203T120000Z-ab12 of accounts hold no _tm_version_key (written for a DuckDB or PostgreSQL target), and its ${kind} warehouse loads the file's columns as they are; nothing was applied. The target's warehouse changed while the run was in flight: cancel it (tidemark cancel accounts) and start a new run`,
      );
    });
  }

  it('refuses a versionKey: merge manifest whose schema lacks a key column', () => {
    const m = manifest({ versionKey: 'merge', schema: [{ name: 'id', type: 'BIGINT' }] });
    const refuse = () => mergePlanOf(projectWith(WAREHOUSES.duckdb), pipeline, m, null);
    expect(refuse).toThrow(TerminalError);
    expect(refuse).toThrow(
      'key column region of accounts is not in the schema of the changes manifest of run 20261203T120000Z-ab12, so its version keys cannot be computed; nothing was applied. The key changed while the run was in flight: cancel it (tidemark cancel accounts) and start a new run',
    );
  });
});

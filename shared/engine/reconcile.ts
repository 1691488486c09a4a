import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { splitQualified, type QualifiedName } from '../config/identifiers.js';
import { connectionOf, getPipeline, warehouseOf } from '../config/load.js';
import type { PipelineConfig } from '../config/schema.js';
import { NotSupportedError, TerminalError } from '../errors.js';
import type { Statement } from '../merge/dialect.js';
import type { Warehouse } from '../merge/warehouse.js';
import { rollbackStyleFor } from '../rollback/styles.js';
import { readCheckpointHead, type CheckpointHead } from '../state/checkpoints.js';
import type { ReconcileOptions, RunRecord } from '../state/runs.js';
import { BackgroundUploads } from '../storage/background-uploads.js';
import { blobCacheOf } from '../storage/blob-cache.js';
import { removeScratchDir, scratchDir } from '../storage/files.js';
import { CONTAINERS, layout } from '../storage/layout.js';
import {
  changesManifestSchema,
  changesHashRule,
  changesKeyColumns,
  hashRuleOf,
  parseManifest,
  type ColumnInfo,
  type RawManifest,
  type ReconcileReport,
} from '../storage/manifest.js';
import { changesCopyOptions, PARQUET_COPY_OPTIONS } from '../storage/parquet-format.js';
import { snapshotViewSql } from '../transform/classify.js';
import { DuckSession, duckLiteral, quoteDuck } from '../duckdb/session.js';
import { hashDuckType, hashFormatOf, versionKeyExpr, type HashFormat, type HashRule, type TypedColumn } from '../canonical/row-hash.js';
import type { EngineContext } from './context.js';
import { publishChangesManifest, publishRawManifest, uploadParts } from './raw-output.js';
import { loadSnapshot, publishSnapshot, snapshotLayerName, type LoadedSnapshot } from './snapshots.js';

/**
 * `tidemark reconcile` (docs/design.md §5): the committed snapshot (what change detection
 * compares against) is rebuilt from the warehouse's current versions, and with `deletes` a
 * key-only read of the source finds the keys current in the warehouse that the source no
 * longer has. Both happen in a run of mode `reconcile`, so the new snapshot and the deletes
 * commit with a ledger row like any run and `tidemark rollback` undoes them.
 *
 * Rules (README "Reconcile"):
 *  - the rebuilt snapshot takes every current version of the warehouse: its key, row hash,
 *    valid-from and deleted flag (`deletes: mark`). The type 1 hash, which the warehouse does
 *    not store, is kept from the old snapshot where the row hash agrees, else left unknown, so
 *    the key's next read rewrites its type 1 columns in place (no new version);
 *  - the key-only read takes the pipeline's key columns of every source row, whatever the
 *    change column holds; a row with a NULL in a key column cannot match a warehouse key: it
 *    is counted and left out;
 *  - a source that returns no key at all would delete every current key: refused unless
 *    `allowEmpty` (a wrong connection or an emptied staging table looks exactly like this);
 *  - deletes follow the pipeline's `deletes:` (retire closes, mark adds a deleted version);
 *    `deletes: ignore` keeps absent keys on purpose, so `--deletes` is refused for it.
 */

const SAMPLE_KEYS = 10;
const q = quoteDuck;

/** Refused before a run starts: what `--deletes` cannot do for this pipeline. */
export function assertReconcilable(p: PipelineConfig, opts: ReconcileOptions): void {
  if (!opts.deletes) return;
  const mode = p.source.changeDetection.mode;
  if (mode !== 'timestamp' && mode !== 'rowversion') {
    throw new NotSupportedError(
      `reconcile --deletes is for timestamp and rowversion pipelines; ${p.name} is in ${mode} mode, which ${mode === 'full' ? 'finds deletes on every run' : 'delivers deletes from the change feed'}. Run tidemark reconcile ${p.name} without --deletes to rebuild the snapshot`,
    );
  }
  if (p.target.deletes === 'ignore') {
    throw new NotSupportedError(
      `${p.name} has target.deletes: ignore, which keeps keys the source no longer has; set deletes: retire or mark in pipelines/${p.name}.yaml to apply them`,
    );
  }
}

/** The warehouse's current versions, every value as text (read back into DuckDB typed by the run's schema). */
export function planWarehouseCurrent(w: Pick<Warehouse, 'dialect'>, target: QualifiedName, keys: readonly string[]): Statement {
  const s = rollbackStyleFor(w.dialect.name);
  const text = w.dialect.typeName({ kind: 'text' });
  const cols = [...keys.map((k) => `CAST(${s.q(k)} AS ${text}) AS ${s.q(k)}`), `${s.q('_tm_row_hash')} AS ${s.q('_tm_row_hash')}`, `CAST(${s.q('_tm_valid_from')} AS ${text}) AS ${s.q('_tm_valid_from')}`, `${s.q('_tm_is_deleted')} AS ${s.q('_tm_is_deleted')}`];
  return { sql: `SELECT ${cols.join(', ')} FROM ${s.qualify(target)} WHERE ${s.q('_tm_is_current')} = ${s.true}`, parameters: [] };
}

/** Writes the current versions to an NDJSON file; returns how many there are. */
async function fetchWarehouseCurrent(warehouse: Warehouse, target: QualifiedName, keys: readonly string[], file: string): Promise<number> {
  if (!warehouse.sql) throw new NotSupportedError(`the ${warehouse.dialect.name} warehouse offers no SQL access; reconcile needs it to read the current versions`);
  const rows = await warehouse.sql.query<Record<string, unknown>>(planWarehouseCurrent(warehouse, target, keys));
  // One JSON line per version; the flag as a boolean whatever the driver returns (bit, 't').
  // A 16-byte row hash (hash rule 4) arrives as bytes from every driver and travels as hex,
  // turned back into bytes in DuckDB (computeReconcile): no engine's own hex function is
  // needed (the T-SQL engine here ignores CONVERT's binary style).
  const asText = (v: unknown) => (v === null || v === undefined ? null : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : String(v));
  const text = rows
    .map((r) => JSON.stringify({ ...Object.fromEntries([...keys, '_tm_row_hash', '_tm_valid_from'].map((k) => [k, asText(r[k])])), _tm_is_deleted: r._tm_is_deleted === true || r._tm_is_deleted === 1 || r._tm_is_deleted === 't' || r._tm_is_deleted === 'true' }))
    .join('\n');
  writeFileSync(file, text);
  return rows.length;
}

export interface ReconcileInputs {
  pipeline: PipelineConfig;
  /** Key columns typed as the target's committed changes have them. */
  keys: TypedColumn[];
  snapshotLayers: string[];
  /** NDJSON of the warehouse's current versions (fetchWarehouseCurrent). */
  warehouseFile: string;
  warehouseRows: number;
  /** How the target stores its hashes (its hash rule, recorded in its manifests). */
  hashFormat: HashFormat;
  /** Key-only parts of the source; undefined without deletes. */
  sourceKeys: { files: string[]; schema: ColumnInfo[] } | undefined;
  allowEmpty: boolean;
}

export interface ReconcileFindings {
  report: ReconcileReport;
  /** Set when the deletes would be refused (the empty-source rule). */
  refused: string | undefined;
}

const keyText = (keys: readonly TypedColumn[], alias: string) => keys.map((k) => `CAST(${alias}.${q(k.name)} AS VARCHAR) AS ${q(k.name)}`).join(', ');
const keyJoin = (keys: readonly TypedColumn[], a: string, b: string) => keys.map((k) => `${a}.${q(k.name)} = ${b}.${q(k.name)}`).join(' AND ');

/**
 * Builds `rebuilt` (the snapshot the warehouse implies) and, with source keys, `absent` (keys
 * current there that the source lacks) in the session, and reports the differences.
 */
export async function computeReconcile(s: DuckSession, input: ReconcileInputs): Promise<ReconcileFindings> {
  const { keys } = input;
  const kl = keys.map((k) => q(k.name)).join(', ');
  const hashType = hashDuckType(input.hashFormat);
  const typedKeys = keys.map((k) => `CAST(${q(k.name)} AS ${k.type}) AS ${q(k.name)}`).join(', ');
  const jsonCols = `{${[...keys.map((k) => k.name), '_tm_row_hash', '_tm_valid_from'].map((c) => `${duckLiteral(c)}: 'VARCHAR'`).join(', ')}, '_tm_is_deleted': 'BOOLEAN'}`;
  if (input.warehouseRows > 0) {
    await s.run(
      `CREATE TEMP TABLE wh AS SELECT ${typedKeys}, ${input.hashFormat === 'binary' ? 'unhex(_tm_row_hash) AS _tm_row_hash' : '_tm_row_hash'}, CAST(_tm_valid_from AS TIMESTAMP) AS _tm_valid_from, _tm_is_deleted AS _tm_deleted FROM read_json(${duckLiteral(input.warehouseFile)}, format = 'newline_delimited', columns = ${jsonCols})`,
    );
  } else {
    await s.run(`CREATE TEMP TABLE wh (${keys.map((k) => `${q(k.name)} ${k.type}`).join(', ')}, _tm_row_hash ${hashType}, _tm_valid_from TIMESTAMP, _tm_deleted BOOLEAN)`);
  }
  if (input.snapshotLayers.length > 0) {
    for (const st of snapshotViewSql(keys, input.snapshotLayers[0]!, input.snapshotLayers.slice(1))) await s.run(st);
  } else {
    await s.run(`CREATE TEMP TABLE snap (${keys.map((k) => `${q(k.name)} ${k.type}`).join(', ')}, _tm_row_hash ${hashType}, _tm_t1_hash ${hashType}, _tm_valid_from TIMESTAMP, _tm_deleted BOOLEAN)`);
  }
  await s.run(
    `CREATE TEMP TABLE diff AS
SELECT ${keys.map((k) => `COALESCE(w.${q(k.name)}, s.${q(k.name)}) AS ${q(k.name)}`).join(', ')},
  CASE WHEN w._p IS NULL THEN 'only_in_snapshot' WHEN s._p IS NULL THEN 'only_in_warehouse' ELSE 'hash_differs' END AS difference
FROM (SELECT *, true AS _p FROM wh WHERE NOT _tm_deleted) w
FULL OUTER JOIN (SELECT *, true AS _p FROM snap WHERE NOT _tm_deleted) s ON ${keyJoin(keys, 'w', 's')}
WHERE w._p IS NULL OR s._p IS NULL OR w._tm_row_hash IS DISTINCT FROM s._tm_row_hash`,
  );
  await s.run(
    `CREATE TEMP TABLE rebuilt AS
SELECT ${keys.map((k) => `w.${q(k.name)}`).join(', ')}, w._tm_row_hash, CASE WHEN s._tm_row_hash = w._tm_row_hash THEN s._tm_t1_hash END AS _tm_t1_hash, w._tm_valid_from, w._tm_deleted
FROM wh w LEFT JOIN snap s ON ${keyJoin(keys, 'w', 's')}`,
  );
  const byKind = await s.rows<{ difference: string; n: bigint }>(`SELECT difference, count(*)::BIGINT AS n FROM diff GROUP BY 1`);
  const n = (d: string) => Number(byKind.find((r) => r.difference === d)?.n ?? 0);
  const sample = await s.rows<Record<string, string | null>>(`SELECT difference, ${keyText(keys, 'diff')} FROM diff ORDER BY difference, ${kl} LIMIT ${SAMPLE_KEYS}`);
  const one = async (sql: string) => Number((await s.one<{ n: bigint }>(sql))?.n ?? 0);
  const report: ReconcileReport = {
    snapshot: {
      warehouseCurrent: await one('SELECT count(*)::BIGINT AS n FROM wh WHERE NOT _tm_deleted'),
      snapshotCurrent: await one('SELECT count(*)::BIGINT AS n FROM snap WHERE NOT _tm_deleted'),
      onlyInSnapshot: n('only_in_snapshot'),
      onlyInWarehouse: n('only_in_warehouse'),
      hashDiffers: n('hash_differs'),
      sample: sample.map(({ difference, ...key }) => ({ difference: difference as 'only_in_snapshot', key })),
    },
    deletes: null,
  };
  let refused: string | undefined;
  if (input.sourceKeys) {
    const src = input.sourceKeys;
    const missing = keys.filter((k) => !src.schema.some((c) => c.name === k.name));
    if (missing.length) {
      throw new TerminalError(`${input.pipeline.name}: the source has no column ${missing.map((k) => k.name).join(', ')} of the key; reconcile --deletes reads the key columns by their target names, so keep the source's key names in transform.sql`);
    }
    const rel = src.files.length > 0 ? `read_parquet([${src.files.map(duckLiteral).join(', ')}])` : `(SELECT ${keys.map((k) => `CAST(NULL AS ${k.type}) AS ${q(k.name)}`).join(', ')} WHERE false)`;
    const anyNull = keys.map((k) => `${q(k.name)} IS NULL`).join(' OR ');
    try {
      await s.run(`CREATE TEMP TABLE src_keys AS SELECT DISTINCT ${typedKeys} FROM ${rel} WHERE NOT (${anyNull})`);
    } catch (cause) {
      throw new TerminalError(`${input.pipeline.name}: the source's key columns do not convert to the target's key types (${keys.map((k) => `${k.name} ${k.type}`).join(', ')}): ${(cause as Error).message}`, { cause });
    }
    const nullKeys = await one(`SELECT count(*)::BIGINT AS n FROM ${rel} WHERE ${anyNull}`);
    await s.run(`CREATE TEMP TABLE absent AS SELECT ${kl} FROM rebuilt r WHERE NOT r._tm_deleted AND NOT EXISTS (SELECT 1 FROM src_keys e WHERE ${keyJoin(keys, 'e', 'r')})`);
    const sourceKeys = await one('SELECT count(*)::BIGINT AS n FROM src_keys');
    const absent = await one('SELECT count(*)::BIGINT AS n FROM absent');
    const absentSample = await s.rows<Record<string, string | null>>(`SELECT ${keyText(keys, 'absent')} FROM absent ORDER BY ${kl} LIMIT ${SAMPLE_KEYS}`);
    report.deletes = { sourceKeys, nullKeys, absent, sample: absentSample };
    if (sourceKeys === 0 && absent > 0 && !input.allowEmpty) {
      refused = `the source of ${input.pipeline.name} returned no key${nullKeys ? ` (only ${nullKeys} row(s) with a NULL key)` : ''}, so every one of the ${absent} current key(s) would be deleted; nothing was deleted. Check the connection and source.table, or pass --allow-empty if the source really is empty`;
    }
  }
  return { report, refused };
}

/** The key columns as the committed run's changes typed them, and that schema (the shape of a changes file). */
async function committedShape(ctx: EngineContext, p: PipelineConfig, checkpoint: CheckpointHead): Promise<{ keys: TypedColumn[]; schema: ColumnInfo[]; hashRule: HashRule | undefined }> {
  if (checkpoint.lastRunId === null) throw new TerminalError(`${p.name} has no committed run yet; run it first (a first load builds the snapshot)`);
  const name = layout.changesManifest(p.name, checkpoint.lastRunId);
  const text = await ctx.blobs.getText(CONTAINERS.changes, name);
  if (text === undefined) throw new TerminalError(`changes manifest changes/${name} of the committed run is missing; reconcile needs the target's column types from it`);
  const m = parseManifest(changesManifestSchema, `changes/${name}`, text);
  const { columns: keys, missing } = changesKeyColumns(p.key, m);
  if (missing !== undefined) throw new TerminalError(`key column ${missing} of ${p.name} is not in the committed run's changes (changes/${name}); the key changed since: run --full instead`);
  return { keys, schema: m.schema, hashRule: m.hashRule === undefined ? undefined : changesHashRule(m) };
}

interface Gathered {
  findings: ReconcileFindings;
  committed: LoadedSnapshot | undefined;
  schema: ColumnInfo[];
  keys: TypedColumn[];
  /** The target's hash rule: its committed snapshot's, else its committed changes' (1 when neither recorded one). */
  hashRule: HashRule;
}

async function gather(
  ctx: EngineContext,
  p: PipelineConfig,
  checkpoint: CheckpointHead,
  s: DuckSession,
  dir: string,
  sourceKeys: ReconcileInputs['sourceKeys'],
  allowEmpty: boolean,
): Promise<Gathered> {
  const shape = await committedShape(ctx, p, checkpoint);
  const { keys, schema } = shape;
  const committed = await loadSnapshot(ctx, p.name, checkpoint.snapshot, dir);
  const hashRule = hashRuleOf(committed) ?? shape.hashRule ?? 1;
  const warehouse = ctx.warehouseFor(ctx, warehouseOf(ctx.project, p), p);
  const warehouseFile = join(dir, 'warehouse-current.ndjson');
  let warehouseRows: number;
  try {
    warehouseRows = await fetchWarehouseCurrent(warehouse, splitQualified(p.target.table), p.key, warehouseFile);
  } finally {
    await warehouse.close();
  }
  const findings = await computeReconcile(s, {
    pipeline: p,
    keys,
    snapshotLayers: committed?.input.layers.map((l) => l.file) ?? [],
    warehouseFile,
    warehouseRows,
    hashFormat: hashFormatOf(hashRule),
    sourceKeys,
    allowEmpty,
  });
  return { findings, committed, schema, keys, hashRule };
}

async function readSourceKeys(ctx: EngineContext, p: PipelineConfig, outDir: string): Promise<{ files: string[]; schema: ColumnInfo[] }> {
  const source = ctx.sourceFor(ctx, connectionOf(ctx.project, p), p);
  try {
    if (!source.extractKeys) throw new NotSupportedError(`the ${connectionOf(ctx.project, p).kind} source of ${p.name} cannot read its keys alone; reconcile --deletes is not available for it`);
    return await source.extractKeys({ outDir, partRows: p.source.partRows, partBytes: p.source.partBytes });
  } finally {
    await source.close();
  }
}

export interface ReconcilePreview extends ReconcileFindings {
  pipeline: string;
  /** The committed run the reconcile would build on. */
  baseRunId: string;
  /** True when a reconcile run would change something (the snapshot, or deletes). */
  changes: boolean;
}

/** What `tidemark reconcile` would find and do, changing nothing (the preview and `--dry-run`). */
export async function previewReconcile(ctx: EngineContext, req: { pipeline: string } & ReconcileOptions): Promise<ReconcilePreview> {
  const p = getPipeline(ctx.project, req.pipeline);
  assertReconcilable(p, req);
  const checkpoint = await readCheckpointHead(ctx.tables, p.name);
  const dir = await scratchDir(ctx.workDir, p.name, `preview-${Date.now()}`, 'reconcile');
  const s = await DuckSession.open(':memory:', ctx.duck);
  try {
    await s.run(`SET TimeZone = 'UTC'`);
    const sourceKeys = req.deletes ? await readSourceKeys(ctx, p, join(dir, 'keys')) : undefined;
    const { findings } = await gather(ctx, p, checkpoint, s, dir, sourceKeys, req.allowEmpty);
    const r = findings.report;
    const changes = r.snapshot.onlyInSnapshot + r.snapshot.onlyInWarehouse + r.snapshot.hashDiffers > 0 || (r.deletes?.absent ?? 0) > 0;
    return { pipeline: p.name, baseRunId: checkpoint.lastRunId!, ...findings, changes };
  } finally {
    await s.close();
    await removeScratchDir(dir);
  }
}

/** The extract stage of a reconcile run: the source's keys (with deletes), or nothing. */
export async function extractReconcile(ctx: EngineContext, p: PipelineConfig, run: RunRecord, dir: string): Promise<void> {
  const checkpoint = await readCheckpointHead(ctx.tables, p.name);
  const opts = run.reconcile ?? { deletes: false, allowEmpty: false };
  assertReconcilable(p, opts);
  const keys = opts.deletes ? await readSourceKeys(ctx, p, join(dir, 'parts')) : { files: [], schema: [] };
  const { parts, schema } = await uploadParts(ctx, keys.files, keys.schema, (i) => layout.rawPart(p.name, run.runId, i), layout.rawPrefix(p.name, run.runId));
  const cd = p.source.changeDetection;
  // The watermark stays where it is: a reconcile reads no window, and the next run goes on from it.
  const w = checkpoint.watermark;
  await publishRawManifest(ctx, {
    pipeline: p.name,
    runId: run.runId,
    baseRunId: checkpoint.lastRunId,
    window: { mode: cd.mode, ...(cd.column ? { column: cd.column } : {}), from: w, to: w, next: w },
    read: { kind: opts.deletes ? 'keys' : 'empty', from: null, to: null, nullChangeColumnRows: null },
    sourceRowCount: null,
    schema,
    parts,
    createdAt: ctx.now().toISOString(),
  });
}

/**
 * The transform stage of a reconcile run: the rebuilt snapshot (with the deletes applied) as a
 * new base, and a changes file holding only the deletes, shaped like the committed run's.
 */
export async function transformReconcile(ctx: EngineContext, p: PipelineConfig, run: RunRecord, manifest: RawManifest, partFiles: string[], checkpoint: CheckpointHead, dir: string): Promise<void> {
  const opts = run.reconcile ?? { deletes: false, allowEmpty: false };
  const s = await DuckSession.open(':memory:', ctx.duck);
  const uploads = new BackgroundUploads(ctx.blobs);
  try {
    await s.run(`SET TimeZone = 'UTC'`);
    const sourceKeys = manifest.read?.kind === 'keys' ? { files: partFiles, schema: manifest.schema } : undefined;
    const g = await gather(ctx, p, checkpoint, s, dir, sourceKeys, opts.allowEmpty);
    if (g.findings.refused) throw new TerminalError(g.findings.refused);
    if (!sourceKeys) await s.run(`CREATE TEMP TABLE absent AS SELECT ${g.keys.map((k) => q(k.name)).join(', ')} FROM rebuilt WHERE false`);
    const kl = g.keys.map((k) => q(k.name)).join(', ');
    const boundary = `CAST(CAST(${duckLiteral(run.boundary)} AS TIMESTAMPTZ) AS TIMESTAMP)`;
    await s.run(`CREATE TEMP TABLE _tm_shape (${g.schema.map((c) => `${q(c.name)} ${c.type}`).join(', ')})`);
    const changesFile = join(dir, 'changes.parquet');
    await s.run(
      `COPY (SELECT * FROM _tm_shape UNION ALL BY NAME SELECT ${kl}, 'delete' AS _tm_op, ${boundary} AS _tm_valid_from, ${versionKeyExpr(g.keys, boundary, undefined, g.hashRule)} AS _tm_version_key FROM absent) TO ${duckLiteral(changesFile)} (${changesCopyOptions(warehouseOf(ctx.project, p).kind)})`,
    );
    const changesName = layout.changes(p.name, run.runId);
    uploads.start(CONTAINERS.changes, changesName, changesFile);
    const snapFile = join(dir, 'snapshot.parquet');
    const marked = p.target.deletes === 'mark';
    await s.run(
      `COPY (SELECT ${g.keys.map((k) => `r.${q(k.name)}`).join(', ')}, r._tm_row_hash, r._tm_t1_hash,
  CASE WHEN a._p THEN ${boundary} ELSE r._tm_valid_from END AS _tm_valid_from, (r._tm_deleted OR a._p IS NOT NULL) AS _tm_deleted
FROM rebuilt r LEFT JOIN (SELECT *, true AS _p FROM absent) a ON ${keyJoin(g.keys, 'r', 'a')}${marked ? '' : ' WHERE NOT (r._tm_deleted OR a._p IS NOT NULL)'}) TO ${duckLiteral(snapFile)} (${PARQUET_COPY_OPTIONS})`,
    );
    const layerName = snapshotLayerName(p.name, run.runId);
    uploads.start(CONTAINERS.state, layerName, snapFile);
    const sizes = await s.one<{ n: bigint; c: bigint }>(`SELECT count(*)::BIGINT AS n, count(*) FILTER (WHERE NOT _tm_deleted)::BIGINT AS c FROM read_parquet(${duckLiteral(snapFile)})`);
    const rows = Number(sizes?.n ?? 0);
    const current = Number(sizes?.c ?? 0);
    const deleted = g.findings.report.deletes?.absent ?? 0;
    const changesRows = deleted;
    const { md5: changesMd5 } = await uploads.result(CONTAINERS.changes, changesName);
    await blobCacheOf(ctx.workDir, ctx.env).adopt(CONTAINERS.changes, changesName, changesMd5, changesFile);
    const layer = { name: layerName, md5: (await uploads.result(CONTAINERS.state, layerName)).md5 };
    const snapshot = await publishSnapshot(ctx, { pipeline: p.name, runId: run.runId, previous: g.committed, out: { kind: 'base', file: snapFile, rows, current }, hashRule: g.hashRule, uploaded: layer });
    const counts = { extracted: manifest.rowCount, inserted: 0, updated: 0, deleted, unchanged: current, stale: 0, quarantined: 0, type1: 0 };
    await publishChangesManifest(ctx, run, manifest, {
      changes: { name: changesName, rows: changesRows, md5: changesMd5 },
      snapshot: { name: snapshot.name, rows: snapshot.current },
      schema: g.schema,
      counts,
      expected: { currentRows: current, checksum: null, checksumColumns: [], checksumScope: 'changes' },
      sourceRowCount: null,
      hashRule: g.hashRule,
      // A few deletes: the file holds its version keys whatever the warehouse.
      versionKey: 'file',
      reconcile: g.findings.report,
    });
  } finally {
    await s.close();
    await uploads.settle();
  }
}

/** A reconcile run's findings, from its changes manifest (undefined before its transform wrote it). */
export async function reconcileReportOf(ctx: EngineContext, pipeline: string, runId: string): Promise<ReconcileReport | undefined> {
  const name = layout.changesManifest(pipeline, runId);
  const text = await ctx.blobs.getText(CONTAINERS.changes, name);
  if (text === undefined) return undefined;
  return parseManifest(changesManifestSchema, `changes/${name}`, text).reconcile;
}

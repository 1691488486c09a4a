import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { PipelineConfig, WarehouseConfig } from '../config/schema.js';
import { PARQUET_COPY_OPTIONS, changesCopyOptions, versionKeyPlace } from '../storage/parquet-format.js';
import { TerminalError } from '../errors.js';
import { SOURCE_OP_COLUMN } from '../extract/source.js';
import type { ColumnInfo, Counts, VersionKeyPlace } from '../storage/manifest.js';
import { classificationSql, resolveShape, snapshotViewSql, type TransformShape } from './classify.js';
import { checksumSql } from '../canonical/row-hash.js';
import { HASH_RULE, canonicalRowExpr, listElementType, type HashRule } from '../canonical/row-hash.js';
import { DuckSession, duckLiteral, quoteDuck, type DuckSettings, type SqlValue } from '../duckdb/session.js';

export interface TransformInput {
  pipeline: PipelineConfig;
  /** Local Parquet parts of the extract, and their schema (used when there are no parts). */
  parts: string[];
  schema: ColumnInfo[];
  /** Local copies of the committed snapshot's layers (base first), or undefined on a first load. */
  snapshot: CommittedSnapshot | undefined;
  /** When a run folds the layers into a new base instead of adding a delta. */
  compaction?: CompactionPolicy;
  fullRead: boolean;
  /** The target's hash rule (its committed snapshot's); the current one when absent (a first load). */
  hashRule?: HashRule;
  boundary: string;
  sourceRowCount: number | null;
  /**
   * Key-only parts of every live source row, read beside a change-feed window that missed
   * deletes (RawManifest.keys): a current key absent from them is deleted.
   */
  liveKeys?: string[];
  outDir: string;
  duck: DuckSettings;
  /**
   * The target's warehouse kind, which picks the changes file's codec and whether it holds the
   * version key; absent, a file every warehouse reads.
   */
  warehouseKind?: WarehouseConfig['kind'];
  /**
   * Called when the changes file or the snapshot layer is final, while the transform goes on
   * (checks, counts, sample), so the caller can upload it meanwhile. Called again if the file
   * is rewritten.
   */
  onWritten?: (kind: 'changes' | 'snapshot', file: string) => void;
}

export interface CommittedSnapshot {
  layers: Array<{ file: string; rows: number | null }>;
  /** Current (not deleted) keys; null when not recorded (a snapshot of an older tidemark). */
  current: number | null;
}

export interface CompactionPolicy {
  /** Most deltas on top of a base. */
  maxDeltas: number;
  /** Most delta rows, as a fraction of the base's rows. */
  maxDeltaFraction: number;
}

/**
 * A delta costs its own rows to write and a small anti join to read; a compaction rewrites the
 * whole dimension. 16 deltas and a quarter of the base bound the read cost of the layers
 * while a run of a few changes against a big dimension writes only what it changed.
 */
export const DEFAULT_COMPACTION: CompactionPolicy = { maxDeltas: 16, maxDeltaFraction: 0.25 };

export interface SnapshotOutput {
  /** base: a whole snapshot replacing the layers; delta: one more layer; unchanged: nothing to add. */
  kind: 'base' | 'delta' | 'unchanged';
  /** The written layer (base or delta). */
  file: string | undefined;
  /** Rows of the written layer. */
  rows: number;
  /** Current (not deleted) keys after this run. */
  current: number;
}

export interface TransformOutput {
  changesFile: string;
  changesRows: number;
  snapshot: SnapshotOutput;
  quarantineFile: string | undefined;
  /** Up to validation.sample rows of the batch (keys, tracked and type 1 columns), for the sample check. */
  sampleFile: string | undefined;
  sampleRows: number;
  schema: ColumnInfo[];
  counts: Omit<Counts, 'extracted'>;
  /** The hash rule of this run's hashes. */
  hashRule: HashRule;
  /** Whether the changes file holds `_tm_version_key`, for the manifest. */
  versionKey: VersionKeyPlace;
  expected: { currentRows: number | null; checksum: string | null; checksumColumns: string[]; checksumScope: 'table' | 'changes' };
  warnings: string[];
}

const q = quoteDuck;

async function count(s: DuckSession, sql: string, params: readonly SqlValue[] = []): Promise<number> {
  const r = await s.one<{ n: bigint | number }>(sql, params);
  return Number(r?.n ?? 0);
}

function paramsFor(sql: string, boundary: string): SqlValue[] {
  return sql.includes('$1') ? [boundary] : [];
}

/**
 * The transform of docs/design.md §1: user SQL over the view `extract`, quality rules, NULL-key and
 * duplicate checks, dedupe per key, row hash, classification against the committed snapshot.
 * Everything runs inside DuckDB (spilling to disk past its memory limit); no row enters JS.
 */
export async function runTransform(input: TransformInput): Promise<TransformOutput> {
  const p = input.pipeline;
  const changesOptions = changesCopyOptions(input.warehouseKind);
  const versionKey = versionKeyPlace(input.warehouseKind);
  const s = await DuckSession.open(':memory:', input.duck);
  const warnings: string[] = [];
  try {
    await s.run(`SET TimeZone = 'UTC'`);
    if (input.parts.length > 0) {
      await s.run(`CREATE VIEW _tm_parts AS SELECT * FROM read_parquet([${input.parts.map(duckLiteral).join(', ')}])`);
    } else {
      if (input.schema.length === 0) throw new TerminalError('the extract has no parts and no schema; the manifest is incomplete');
      await s.run(`CREATE TABLE _tm_parts (${input.schema.map((c) => `${q(c.name)} ${c.type}`).join(', ')})`);
    }
    // Change-feed parts carry the source's operation per row: deleted rows are not data for
    // transform.sql, only keys to retire.
    const sourceDeletes = input.schema.some((c) => c.name === SOURCE_OP_COLUMN);
    if (sourceDeletes) {
      const missing = p.key.filter((k) => !input.schema.some((c) => c.name === k));
      if (missing.length) {
        throw new TerminalError(
          `${p.name}: the source reports deletes by key, but key column(s) ${missing.join(', ')} are not columns of the extract; keep the key names of the source table`,
        );
      }
      await s.run(`CREATE VIEW extract AS SELECT * EXCLUDE (${q(SOURCE_OP_COLUMN)}) FROM _tm_parts WHERE ${q(SOURCE_OP_COLUMN)} IS DISTINCT FROM 'delete'`);
      await s.run(`CREATE TEMP TABLE source_deletes AS SELECT DISTINCT ${p.key.map(q).join(', ')} FROM _tm_parts WHERE ${q(SOURCE_OP_COLUMN)} = 'delete'`);
    } else {
      await s.run('CREATE VIEW extract AS SELECT * FROM _tm_parts');
    }
    try {
      await s.run(`CREATE VIEW transformed AS ${p.transform.sql ?? 'SELECT * FROM extract'}`);
    } catch (cause) {
      throw new TerminalError(`transform.sql of ${p.name} does not compile: ${(cause as Error).message}`, { cause });
    }
    let columns: ColumnInfo[];
    try {
      columns = (await s.rows<{ column_name: string; column_type: string }>('DESCRIBE SELECT * FROM transformed')).map((r) => ({
        name: r.column_name,
        type: r.column_type,
      }));
    } catch (cause) {
      throw new TerminalError(`transform.sql of ${p.name} failed: ${(cause as Error).message}`, { cause });
    }
    const hashRule = input.hashRule ?? HASH_RULE;
    const textLists = hashRule < 3 ? columns.filter((c) => listElementType(c.type) !== undefined) : [];
    if (textLists.length > 0) {
      // A target created before hash rule 3 holds its lists as DuckDB's list text, hashed as
      // that: it keeps both, so an upgrade opens no versions and changes no column type. (The
      // snapshot holds keys and hashes only, so its older layers need no such cast.)
      await s.run('ALTER VIEW transformed RENAME TO _tm_transformed_lists');
      await s.run(
        `CREATE VIEW transformed AS SELECT * REPLACE (${textLists.map((c) => `CAST(${q(c.name)} AS VARCHAR) AS ${q(c.name)}`).join(', ')}) FROM _tm_transformed_lists`,
      );
      columns = columns.map((c) => (textLists.includes(c) ? { name: c.name, type: 'VARCHAR' } : c));
    }
    let shape: TransformShape;
    try {
      shape = resolveShape(p, columns, hashRule);
    } catch (cause) {
      throw new TerminalError(`pipelines/${p.name}.yaml: ${(cause as Error).message}`, { cause });
    }
    const keyNames = shape.keys.map((k) => q(k.name));

    // NULL keys: refused before anything reaches the warehouse (docs/design.md §8).
    const nullKeys = await count(s, `SELECT count(*) AS n FROM transformed WHERE ${keyNames.map((k) => `${k} IS NULL`).join(' OR ')}`);
    if (nullKeys > 0) {
      throw new TerminalError(
        `${nullKeys} row(s) of ${p.name} have NULL in key column(s) ${p.key.join(', ')}; nothing was merged. Fix the source or filter them in transform.sql`,
      );
    }

    // validFrom: { column }: a version needs its start; a NULL one would be written as a NULL
    // _tm_valid_from (and version key) or break the NOT NULL of the warehouse.
    if (shape.validFromColumn) {
      const vf = q(shape.validFromColumn);
      const bad = await s.rows<Record<string, unknown>>(`SELECT ${keyNames.join(', ')} FROM transformed WHERE ${vf} IS NULL LIMIT 3`);
      if (bad.length > 0) {
        const n = await count(s, `SELECT count(*) AS n FROM transformed WHERE ${vf} IS NULL`);
        const ex = bad.map((d) => `(${p.key.map((k) => String(d[k])).join(', ')})`).join(', ');
        throw new TerminalError(
          `${n} row(s) of ${p.name} have NULL in target.validFrom.column ${shape.validFromColumn} (keys ${ex}${n > bad.length ? ', …' : ''}); nothing was merged. Fill it in the source, or coalesce it in transform.sql`,
        );
      }
    }

    // Quality rules.
    const quarantineRules = p.transform.rules.filter((r) => r.onFail === 'quarantine');
    for (const r of p.transform.rules) {
      try {
        await s.run(`SELECT (${r.check}) FROM transformed LIMIT 0`);
      } catch (cause) {
        throw new TerminalError(`rule ${r.name} of ${p.name}: check does not compile: ${(cause as Error).message}`, { cause });
      }
    }
    for (const r of p.transform.rules.filter((x) => x.onFail !== 'quarantine')) {
      const failing = await count(s, `SELECT count(*) AS n FROM transformed WHERE (${r.check}) IS NOT TRUE`);
      if (failing === 0) continue;
      if (r.onFail === 'fail') throw new TerminalError(`rule ${r.name} failed for ${failing} row(s) of ${p.name} (check: ${r.check}); nothing was merged`);
      warnings.push(`rule ${r.name}: ${failing} row(s) failed (warn only)`);
    }
    let quarantined = 0;
    let quarantineFile: string | undefined;
    if (quarantineRules.length > 0) {
      const failedList = `list_filter([${quarantineRules.map((r) => `CASE WHEN (${r.check}) IS NOT TRUE THEN '${r.name}' END`).join(', ')}], x -> x IS NOT NULL)`;
      await s.run(`CREATE TEMP TABLE quarantined AS SELECT *, ${failedList} AS _tm_failed_rules FROM transformed WHERE len(${failedList}) > 0`);
      quarantined = await count(s, 'SELECT count(*) AS n FROM quarantined');
      await s.run(
        `CREATE VIEW good AS SELECT * FROM transformed WHERE ${quarantineRules.map((r) => `(${r.check}) IS TRUE`).join(' AND ')}`,
      );
      if (quarantined > 0) {
        quarantineFile = join(input.outDir, 'quarantine.parquet');
        await s.run(`COPY quarantined TO ${duckLiteral(quarantineFile)} (FORMAT parquet)`);
      }
    } else {
      await s.run('CREATE VIEW good AS SELECT * FROM transformed');
    }

    // Several rows of one key: the latest by the order column wins. Without one (a full
    // extract with no time column) there is no "latest", so duplicates are refused.
    // A full extract reads the whole table, where a key must be unique (issue #6: extract
    // validation); incremental windows may hold several versions of a key, deduped below.
    const mustBeUnique = !shape.orderColumn || p.source.changeDetection.mode === 'full';
    // Dedupe (a window sort over every row) only when a key repeats; a hash aggregate that
    // stops at the first repeat is far cheaper on a big load, where keys are usually unique.
    // Grouped by a 64-bit hash of the key rather than the key: one fixed-width group instead of
    // the key's own columns (text keys, composite keys) is the cheaper table to build. Distinct
    // hashes prove distinct keys; a collision (about n² / 2⁶⁵, 3·10⁻⁶ at 10 M keys) only takes
    // the dedupe path, whose output is the same rows when no key repeats.
    const repeats = async (relation: string): Promise<boolean> =>
      (await s.rows(`SELECT 1 FROM ${relation} GROUP BY hash(${keyNames.join(', ')}) HAVING count(*) > 1 LIMIT 1`)).length > 0;

    const refuseDuplicates = async (relation: string): Promise<void> => {
      // The cheap check first: the examples need the exact grouping, which only a repeat pays for.
      if (!(await repeats(relation))) return;
      const dups = await s.rows<Record<string, unknown>>(
        `SELECT ${keyNames.join(', ')}, count(*)::BIGINT AS n FROM ${relation} GROUP BY ALL HAVING count(*) > 1 LIMIT 3`,
      );
      if (dups.length === 0) return;
      const ex = dups.map((d) => `(${p.key.map((k) => String(d[k])).join(', ')}) ×${String(d.n)}`).join(', ');
      // In full mode a change column does not pick a latest (a full read is the whole table,
      // where a key must be unique), so the advice depends on the mode.
      const fix =
        p.source.changeDetection.mode === 'full'
          ? `a full read is the whole table, where the key must be unique: fix the source, widen the key, or keep one row per key in transform.sql (e.g. QUALIFY row_number() OVER (PARTITION BY ${p.key.join(', ')} ORDER BY …) = 1)`
          : `the key must be unique, or set target.validFrom.column (or changeDetection.column) to pick the latest`;
      throw new TerminalError(`duplicate keys in the extract of ${p.name}: ${ex}; ${fix}`);
    };

    const layers = input.snapshot?.layers ?? [];
    for (const l of layers) if (!existsSync(l.file)) throw new Error(`snapshot layer ${l.file} is missing locally`);
    const hasSnapshot = layers.length > 0;
    const plan = (dedupe: boolean) =>
      classificationSql(shape, { fullRead: input.fullRead, deletes: p.target.deletes, sourceDeletes, dedupe, firstLoad: !hasSnapshot, versionKey });
    let changesFile = join(input.outDir, 'changes.parquet');
    let sql: ReturnType<typeof plan>;
    const written = () => `read_parquet(${duckLiteral(changesFile)})`;
    // A first load is every row an insert: one pass writes the changes file (hashes, and
    // version keys where the file holds them) straight from the extract, and the checks and the snapshot read
    // the written file's narrow columns instead of re-running transform.sql over the parts.
    const writeFirstLoad = async (dedupe: boolean, file: string) => {
      const planned = plan(dedupe);
      await s.run(`COPY (${planned.firstLoadChanges}) TO ${duckLiteral(file)} (${changesOptions})`, paramsFor(planned.firstLoadChanges, input.boundary));
      input.onWritten?.('changes', file);
      changesFile = file;
      await s.run(`CREATE OR REPLACE TEMP VIEW batch AS SELECT * EXCLUDE (_tm_op${versionKey === 'file' ? ', _tm_version_key' : ''}) FROM ${written()}`);
      return planned;
    };
    // A first load that may dedupe looks for a repeated key after the snapshot base is written,
    // not before: the check (a hash aggregate over every key) then runs while both files
    // upload, when DuckDB would otherwise wait on storage. Only a load where a key does repeat
    // writes both files again (under new names, since the first ones may be uploading).
    const repeatCheckAfterSnapshot = !hasSnapshot && !mustBeUnique;
    if (!hasSnapshot) {
      sql = await writeFirstLoad(false, changesFile);
      if (mustBeUnique) await refuseDuplicates(written());
      await s.run(sql.emptySnapshot);
    } else {
      if (mustBeUnique) await refuseDuplicates('good');
      sql = plan(shape.orderColumn !== undefined && (await repeats('good')));
      await s.run(sql.batch, paramsFor(sql.batch, input.boundary));
      // Read in place, not copied into a temp table: the base is as big as the dimension, and
      // an incremental run needs it only for one semi join.
      for (const stmt of snapshotViewSql(shape.keys, layers[0]!.file, layers.slice(1).map((l) => l.file))) await s.run(stmt);
    }
    // Deletes need the extracted keys: a full read detects deletes by absent keys, and a change
    // feed's delete does not count for a key the same window re-inserted.
    if ((input.fullRead && hasSnapshot) || sourceDeletes) {
      await s.run(`CREATE TEMP TABLE extract_keys AS SELECT DISTINCT ${keyNames.join(', ')} FROM transformed`);
    } else {
      await s.run(`CREATE TEMP TABLE extract_keys AS SELECT ${keyNames.join(', ')} FROM transformed WHERE false`);
    }
    if (input.liveKeys && hasSnapshot) await addAbsentKeysToDeletes(s, p, shape, input.liveKeys, sourceDeletes);
    if (sql.snapHit) await s.run(sql.snapHit);
    await s.run(sql.classified);
    await s.run(sql.deleted, paramsFor(sql.deleted, input.boundary));
    await s.run(sql.changed);
    if (hasSnapshot) {
      await s.run(`COPY (${sql.changes}) TO ${duckLiteral(changesFile)} (${changesOptions})`);
      input.onWritten?.('changes', changesFile);
    }
    const countOps = () => s.rows<{ op: string; n: bigint }>(`SELECT _tm_op AS op, count(*)::BIGINT AS n FROM classified GROUP BY 1`);
    let byOp = await countOps();
    const op = (name: string) => Number(byOp.find((r) => r.op === name)?.n ?? 0);
    const deleted = await count(s, 'SELECT count(*) AS n FROM deleted');
    if (shape.validFromColumn) {
      const corrected = await count(s, `SELECT count(*) AS n FROM classified WHERE _tm_op = 'type1' AND _tm_row_hash <> (SELECT sn._tm_row_hash FROM ${hasSnapshot && !input.fullRead ? 'snap_hit' : 'snap'} sn WHERE ${shape.keys.map((k) => `sn.${q(k.name)} = classified.${q(k.name)}`).join(' AND ')})`);
      if (corrected > 0) {
        warnings.push(
          `${corrected} row(s) of ${p.name} carry the same target.validFrom.column ${shape.validFromColumn} time as the current version of their key with other values: corrected in place (no new version)`,
        );
      }
    }
    if (shape.validFromColumn && op('stale') > 0) {
      const ex = await s.rows<Record<string, unknown>>(`SELECT ${keyNames.join(', ')} FROM classified WHERE _tm_op = 'stale' ORDER BY ALL LIMIT 3`);
      warnings.push(
        `${op('stale')} row(s) of ${p.name} are older (target.validFrom.column ${shape.validFromColumn}) than the current version of their key and were not applied (keys ${ex.map((d) => `(${p.key.map((k) => String(d[k])).join(', ')})`).join(', ')}${op('stale') > ex.length ? ', …' : ''}); counted as stale`,
      );
    }
    let snapshot = await writeSnapshotLayer(s, input, sql.compacted, { inserted: op('insert'), deleted }, 'snapshot.parquet');
    if (repeatCheckAfterSnapshot && (await repeats(written()))) {
      // Rare: a key repeats in a first load. `classified` and `changed` are views over `batch`,
      // which now reads the deduped file; the counts and the snapshot follow it.
      sql = await writeFirstLoad(true, join(input.outDir, 'changes-deduped.parquet'));
      byOp = await countOps();
      snapshot = await writeSnapshotLayer(s, input, sql.compacted, { inserted: op('insert'), deleted }, 'snapshot-deduped.parquet');
    }
    // Sampled keys for the field-by-field check after the merge: chosen by a hash of the key so
    // the choice is stable and spread over the key space; stale rows are not in the warehouse.
    let sampleFile: string | undefined;
    let sampleRows = 0;
    if (p.validation.sample > 0) {
      const cols = [...shape.keys, ...shape.tracked, ...shape.type1].map((c) => q(c.name));
      sampleFile = join(input.outDir, 'sample.parquet');
      await s.run(
        `COPY (SELECT ${cols.join(', ')} FROM classified WHERE _tm_op <> 'stale' ORDER BY md5(${canonicalRowExpr(shape.keys)}) LIMIT ${p.validation.sample}) TO ${duckLiteral(sampleFile)} (FORMAT parquet)`,
      );
      sampleRows = await count(s, `SELECT count(*) AS n FROM read_parquet(${duckLiteral(sampleFile)})`);
    }

    const changesRows = await count(s, `SELECT count(*) AS n FROM read_parquet(${duckLiteral(changesFile)})`);
    const schema = (await s.rows<{ column_name: string; column_type: string }>(`DESCRIBE SELECT * FROM read_parquet(${duckLiteral(changesFile)})`)).map(
      (r) => ({ name: r.column_name, type: r.column_type }),
    );

    // Keys current after this run, per mode: a full read makes them the distinct keys read (after
    // dedupe, less quarantined; plus the kept ones under deletes: ignore); a window read changes
    // only its own keys (inserts add, deletes remove; absent keys stay). Never a count of source
    // rows, which holds repeats of a key and rows outside the window.
    const currentRows: number | null = snapshot.current;

    let checksum: string | null = null;
    // The whole table matches the batch only when every current target row came from this
    // extract: not with quarantined or stale rows, nor with `deletes: ignore`, which keeps keys
    // current that the source no longer has.
    const checksumScope: 'table' | 'changes' =
      input.fullRead && quarantined === 0 && op('stale') === 0 && p.target.deletes !== 'ignore' ? 'table' : 'changes';
    const checksumColumns = p.validation.checksumColumns;
    if (checksumColumns.length > 0) {
      const typed = checksumColumns.map((c) => shape.columns.find((x) => x.name === c)!);
      const rel =
        checksumScope === 'table'
          ? 'batch'
          : `(SELECT * FROM classified WHERE _tm_op IN ('insert', 'update', 'type1')) AS _tm_c`;
      const r = await s.one<{ n: bigint; s: bigint }>(checksumSql(typed, rel));
      checksum = `${r?.n ?? 0}:${r?.s ?? 0}`;
    }

    return {
      changesFile,
      changesRows,
      snapshot,
      quarantineFile,
      sampleFile,
      sampleRows,
      schema,
      counts: {
        inserted: op('insert'),
        updated: op('update'),
        deleted,
        unchanged: op('unchanged'),
        stale: op('stale'),
        quarantined,
        type1: op('type1'),
      },
      hashRule: shape.hashRule,
      versionKey,
      expected: { currentRows, checksum, checksumColumns, checksumScope },
      warnings,
    };
  } finally {
    await s.close();
  }
}

/**
 * A change feed that missed deletes (a Salesforce recycle-bin gap) is completed by the live
 * keys: every key current in the snapshot and absent from them joins `source_deletes`. A key
 * list with no key at all would delete the whole dimension: refused, as `reconcile` does.
 */
async function addAbsentKeysToDeletes(s: DuckSession, p: PipelineConfig, shape: TransformShape, files: string[], sourceDeletes: boolean): Promise<void> {
  if (!sourceDeletes) throw new TerminalError(`${p.name}: the extract read live keys beside a window that reports no deletes; only change-feed reads carry them`);
  const keys = shape.keys.map((k) => q(k.name));
  const rel = files.length ? `(SELECT ${shape.keys.map((k) => `CAST(${q(k.name)} AS ${k.type}) AS ${q(k.name)}`).join(', ')} FROM read_parquet([${files.map(duckLiteral).join(', ')}]))` : undefined;
  const live = rel ? await count(s, `SELECT count(*) AS n FROM ${rel} AS k WHERE ${keys.map((k) => `${k} IS NOT NULL`).join(' AND ')}`) : 0;
  if (live === 0 && (await count(s, 'SELECT count(*) AS n FROM snap WHERE NOT _tm_deleted')) > 0) {
    throw new TerminalError(`${p.name}: the key-only read returned no key, so every current key would be deleted; nothing was merged. Check the connection, or run tidemark reconcile ${p.name} --deletes --allow-empty if the source really is empty`);
  }
  if (!rel) return;
  await s.run(
    `INSERT INTO source_deletes SELECT ${shape.keys.map((k) => `s.${q(k.name)}`).join(', ')} FROM snap s WHERE NOT s._tm_deleted AND NOT EXISTS (SELECT 1 FROM ${rel} AS k WHERE ${shape.keys.map((k) => `k.${q(k.name)} = s.${q(k.name)}`).join(' AND ')})`,
  );
}

/**
 * Writes the run's snapshot layer: a delta with the keys it changed, or, on a first load and
 * past the compaction bound, a new base with every key. Needs the relations `changed` and
 * `snap`; `ops` are the run's inserts and deletes.
 */
async function writeSnapshotLayer(
  s: DuckSession,
  input: TransformInput,
  compactedSql: string,
  ops: { inserted: number; deleted: number },
  fileName: string,
): Promise<SnapshotOutput> {
  const layers = input.snapshot?.layers ?? [];
  const file = join(input.outDir, fileName);
  const writeBase = async (): Promise<SnapshotOutput> => {
    await s.run(`COPY (${compactedSql}) TO ${duckLiteral(file)} (${PARQUET_COPY_OPTIONS})`);
    input.onWritten?.('snapshot', file);
    const r = await s.one<{ n: bigint; c: bigint }>(
      `SELECT count(*)::BIGINT AS n, count(*) FILTER (WHERE NOT _tm_deleted)::BIGINT AS c FROM read_parquet(${duckLiteral(file)})`,
    );
    return { kind: 'base', file, rows: Number(r?.n ?? 0), current: Number(r?.c ?? 0) };
  };
  const previous = input.snapshot?.current ?? null;
  // A first load has nothing to add to; a snapshot of an older tidemark has no recorded count.
  if (layers.length === 0 || previous === null) return writeBase();

  const changedRows = await count(s, 'SELECT count(*) AS n FROM changed');
  if (changedRows === 0) return { kind: 'unchanged', file: undefined, rows: 0, current: previous };
  const policy = input.compaction ?? DEFAULT_COMPACTION;
  // Only a snapshot of an older tidemark lacks row counts, and it became a base above.
  const sizes = layers.map((l) => l.rows ?? 0);
  const deltaRows = sizes.slice(1).reduce((a, b) => a + b, 0) + changedRows;
  if (layers.length > policy.maxDeltas || deltaRows > policy.maxDeltaFraction * sizes[0]!) return writeBase();

  await s.run(`COPY (SELECT * FROM changed) TO ${duckLiteral(file)} (${PARQUET_COPY_OPTIONS})`);
  input.onWritten?.('snapshot', file);
  // An insert makes a key current (it was absent or deleted); a delete makes a current key not.
  return { kind: 'delta', file, rows: changedRows, current: previous + ops.inserted - ops.deleted };
}

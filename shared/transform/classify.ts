import type { PipelineConfig } from '../config/schema.js';
import { duckLiteral, quoteDuck } from '../duckdb/session.js';
import { HASH_RULE, hashColumnOrder, hashDuckType, hashFormatOf, rowHashExpr, versionKeyExpr, type HashRule, type TypedColumn } from '../canonical/row-hash.js';
import type { VersionKeyPlace } from '../storage/manifest.js';

/** Columns tidemark adds; user columns must not use the prefix. */
export const TM_PREFIX = '_tm_';

export interface TransformShape {
  /** The transform's output columns, in order. */
  columns: TypedColumn[];
  keys: TypedColumn[];
  tracked: TypedColumn[];
  type1: TypedColumn[];
  /** Column that orders duplicates of a key (latest wins), if any. */
  orderColumn: string | undefined;
  /** validFrom: { column } */
  validFromColumn: string | undefined;
  /** The target's hash rule (row-hash.ts), from its committed snapshot. */
  hashRule: HashRule;
}

/** Resolves config against the transform's actual output; every mismatch names the field. */
export function resolveShape(p: PipelineConfig, columns: TypedColumn[], hashRule: HashRule = HASH_RULE): TransformShape {
  const byName = new Map(columns.map((c) => [c.name, c]));
  const need = (name: string, field: string): TypedColumn => {
    const c = byName.get(name);
    if (!c) {
      throw new Error(
        `${field} names column ${name}, which the transform does not output (columns: ${columns.map((x) => x.name).join(', ')})`,
      );
    }
    return c;
  };
  const reserved = columns.filter((c) => c.name.toLowerCase().startsWith(TM_PREFIX));
  if (reserved.length) throw new Error(`column ${reserved[0]!.name} uses the reserved prefix ${TM_PREFIX}; rename it in transform.sql`);
  const keys = p.key.map((k, i) => need(k, `key[${i}]`));
  const type1 = p.target.type1Columns.map((c, i) => need(c, `target.type1Columns[${i}]`));
  // Under `all`, the change-detection column is left out like the _tm_ columns: it moves on
  // every touch, and tracking it would open a version per touch (hash rule 2).
  const cdColumn = p.source.changeDetection.column;
  const exclude = new Set([...p.key, ...p.target.type1Columns, ...(hashRule >= 2 && cdColumn ? [cdColumn] : [])]);
  if (Array.isArray(p.target.trackedColumns)) p.target.trackedColumns.forEach((c, i) => need(c, `target.trackedColumns[${i}]`));
  const tracked = hashColumnOrder(p.target.trackedColumns, columns, exclude);
  const validFromColumn = typeof p.target.validFrom === 'object' ? p.target.validFrom.column : undefined;
  if (validFromColumn) need(validFromColumn, 'target.validFrom.column');
  const cdCol = p.source.changeDetection.column;
  const orderColumn = validFromColumn ?? (cdCol && byName.has(cdCol) ? cdCol : undefined);
  for (const [i, c] of p.validation.checksumColumns.entries()) need(c, `validation.checksumColumns[${i}]`);
  return { columns, keys, tracked, type1, orderColumn, validFromColumn, hashRule };
}

const q = quoteDuck;
const keyJoin = (shape: TransformShape, a: string, b: string) =>
  shape.keys.map((k) => `${a}.${q(k.name)} = ${b}.${q(k.name)}`).join(' AND ');

/**
 * SQL of the change classification (DuckDB), as pure functions of the shape. The relations
 * `good` (rows that passed quarantine rules), `extract_keys` (every extracted key) and `snap`
 * (the committed snapshot, see snapshotViewSql) exist when these run; `$1` is the run boundary.
 * `snapHit`, when set, runs after `batch` and before `classified`.
 */
export function classificationSql(
  shape: TransformShape,
  opts: {
    fullRead: boolean;
    deletes: 'retire' | 'mark' | 'ignore';
    /** Change-feed extracts (cdc, changeTracking): the relation `source_deletes` holds the deleted keys. */
    sourceDeletes?: boolean;
    /** false when the caller checked that no key repeats: the window sort over every row is the costliest step of a big load. */
    dedupe?: boolean;
    /** No committed snapshot: every row is an insert, so `classified` is a view over `batch`, not a second copy of it. */
    firstLoad?: boolean;
    /** 'merge': the changes carry no `_tm_version_key`; the merge computes it (storage/parquet-format.ts). */
    versionKey?: VersionKeyPlace;
  },
) {
  const keysList = shape.keys.map((k) => q(k.name)).join(', ');
  const hashType = hashDuckType(hashFormatOf(shape.hashRule));
  // The `, <version key> AS _tm_version_key` of a changes row, or nothing when the merge computes it.
  const versionKey = (validFromSql: string, qualifier?: string) =>
    opts.versionKey === 'merge' ? '' : `, ${versionKeyExpr(shape.keys, validFromSql, qualifier, shape.hashRule)} AS _tm_version_key`;
  const t1Hash = shape.type1.length ? rowHashExpr(shape.type1, undefined, shape.hashRule) : `CAST(NULL AS ${hashType})`;
  const validFrom = shape.validFromColumn
    ? `CAST(${q(shape.validFromColumn)} AS TIMESTAMP)`
    : 'CAST(CAST($1 AS TIMESTAMPTZ) AS TIMESTAMP)';
  const order = shape.orderColumn ? `${q(shape.orderColumn)} DESC NULLS LAST, ` : '';
  const batchSelect = `SELECT *, ${rowHashExpr(shape.tracked, undefined, shape.hashRule)} AS _tm_row_hash, ${t1Hash} AS _tm_t1_hash, ${validFrom} AS _tm_valid_from
FROM good${
    opts.dedupe === false ? '' : `\nQUALIFY row_number() OVER (PARTITION BY ${keysList} ORDER BY ${order}_tm_row_hash DESC) = 1`
  }`;
  const batch = `CREATE TEMP TABLE batch AS\n${batchSelect}`;
  // A first load's changes, written in one pass from `good` (the rows `changes` would give).
  const firstLoadChanges = `SELECT *, 'insert' AS _tm_op${versionKey('_tm_valid_from')}
FROM (${batchSelect}) AS b`;

  // An incremental batch is small next to the snapshot: the snapshot rows of its keys are
  // picked by a semi join that hashes the batch's keys and streams the snapshot past them, so
  // the dimension is read once and never held. A full read touches every key anyway.
  const lookup = opts.fullRead || opts.firstLoad ? 'snap' : 'snap_hit';
  const probeKeys = `SELECT ${keysList} FROM batch${opts.sourceDeletes ? ` UNION ALL SELECT ${keysList} FROM source_deletes` : ''}`;
  const snapHit =
    lookup === 'snap_hit' ? `CREATE TEMP TABLE snap_hit AS SELECT s.* FROM snap s SEMI JOIN (${probeKeys}) p ON ${keyJoin(shape, 'p', 's')}` : undefined;

  // Interval rules (README, "SCD2"): a key's versions never overlap or invert. Every new
  // version starts strictly after the key's latest recorded start `s._tm_valid_from` (its
  // current version, or its delete): where the source time (or the run boundary) is not later,
  // it takes that start + 1 µs, the smallest later instant every warehouse stores.
  // validFrom: { column }: a row whose values differ from the current version's is stale when
  // its time is older, and a correction of that version (overwritten in place, as a type 1
  // change is) when its time is the same; a re-insert after a delete is never stale.
  const staleCase = shape.validFromColumn
    ? `WHEN b._tm_row_hash = s._tm_row_hash AND b._tm_t1_hash IS NOT DISTINCT FROM s._tm_t1_hash THEN 'unchanged'
       WHEN b._tm_valid_from < s._tm_valid_from THEN 'stale' WHEN b._tm_valid_from = s._tm_valid_from THEN 'type1'
       `
    : '';
  const after = (start: string) =>
    `CASE WHEN s._tm_valid_from IS NOT NULL AND ${start} <= s._tm_valid_from THEN s._tm_valid_from + INTERVAL 1 MICROSECOND ELSE ${start} END`;
  // The version key is computed in `changes`, for the rows that open a version only: most
  // rows of an incremental batch are unchanged and a big load pays one md5 less per row.
  const classified = opts.firstLoad
    ? `CREATE TEMP VIEW classified AS
SELECT b.*, 'insert' AS _tm_op, CAST(NULL AS TIMESTAMP) AS _tm_prev_valid_from FROM batch b`
    : `CREATE TEMP TABLE classified AS
SELECT b.* REPLACE (${after('b._tm_valid_from')} AS _tm_valid_from),
  CASE WHEN s._tm_row_hash IS NULL OR s._tm_deleted THEN 'insert' ${staleCase}WHEN b._tm_row_hash <> s._tm_row_hash THEN 'update'
       WHEN b._tm_t1_hash IS DISTINCT FROM s._tm_t1_hash THEN 'type1' ELSE 'unchanged' END AS _tm_op,
  s._tm_valid_from AS _tm_prev_valid_from
FROM batch b LEFT JOIN ${lookup} s ON ${keyJoin(shape, 'b', 's')}`;

  // Full reads: a current key absent from the extract was deleted. Change feeds: a key the
  // source reported deleted (and not re-inserted in the same window) was deleted.
  const deletedKeys = opts.fullRead
    ? ''
    : `EXISTS (SELECT 1 FROM source_deletes d WHERE ${keyJoin(shape, 'd', 's')}) AND `;
  // A delete has no source time (a full read sees the key absent, a change feed's delete row
  // carries only the key): the run boundary, never at or before the version it closes.
  const deletedAt = after('CAST(CAST($1 AS TIMESTAMPTZ) AS TIMESTAMP)');
  const deletesSql =
    (opts.fullRead || opts.sourceDeletes) && opts.deletes !== 'ignore'
      ? `CREATE TEMP TABLE deleted AS
SELECT ${shape.keys.map((k) => `s.${q(k.name)}`).join(', ')}, 'delete' AS _tm_op,
  ${deletedAt} AS _tm_valid_from${versionKey(deletedAt, 's')}
FROM ${lookup} s WHERE NOT s._tm_deleted AND ${deletedKeys}NOT EXISTS (SELECT 1 FROM extract_keys e WHERE ${keyJoin(shape, 'e', 's')})`
      : `CREATE TEMP TABLE deleted AS SELECT ${shape.keys.map((k) => `s.${q(k.name)}`).join(', ')}, 'delete' AS _tm_op,
  CAST(NULL AS TIMESTAMP) AS _tm_valid_from${opts.versionKey === 'merge' ? '' : `, CAST(NULL AS ${hashType}) AS _tm_version_key`} FROM snap s WHERE false`;

  // A row written in place (type 1, correction) keeps its version's start; the 1 µs step is for new versions only.
  const changes = `SELECT * EXCLUDE (_tm_prev_valid_from) REPLACE (CASE WHEN _tm_op = 'type1' THEN _tm_prev_valid_from ELSE _tm_valid_from END AS _tm_valid_from)${versionKey('_tm_valid_from')}
FROM classified WHERE _tm_op IN ('insert', 'update', 'type1')
UNION ALL BY NAME SELECT * FROM deleted`;

  // The run's snapshot layer: the new state of every key this run changed. A deleted key stays
  // as a row with `_tm_deleted` (a tombstone) so that it hides the key in older layers.
  const changed = `${opts.firstLoad ? 'CREATE TEMP VIEW' : 'CREATE TEMP TABLE'} changed AS
SELECT ${keysList}, _tm_row_hash, _tm_t1_hash,
  CASE WHEN _tm_op = 'type1' THEN _tm_prev_valid_from ELSE _tm_valid_from END AS _tm_valid_from, false AS _tm_deleted
FROM classified WHERE _tm_op IN ('insert', 'update', 'type1')
UNION ALL
SELECT ${shape.keys.map((k) => `s.${q(k.name)}`).join(', ')}, s._tm_row_hash, s._tm_t1_hash, d._tm_valid_from, true
FROM deleted d JOIN ${lookup} s ON ${keyJoin(shape, 'd', 's')}`;

  // A whole snapshot (a base layer): the current snapshot with this run's changes applied.
  // With `deletes: retire` a deleted key has nothing left to hide, so its tombstone goes;
  // except with validFrom: { column }, where it holds the delete's time, which a re-insert with
  // an older source time must start after.
  const keepTombstones = opts.deletes === 'mark' || shape.validFromColumn !== undefined;
  const compacted = `SELECT * FROM changed${keepTombstones ? '' : ' WHERE NOT _tm_deleted'}
UNION ALL BY NAME
SELECT s.* FROM snap s WHERE NOT EXISTS (SELECT 1 FROM changed c WHERE ${keyJoin(shape, 'c', 's')})${
    keepTombstones ? '' : ' AND NOT s._tm_deleted'
  }`;

  const emptySnapshot = `CREATE TEMP TABLE snap AS SELECT ${keysList}, CAST(NULL AS ${hashType}) AS _tm_row_hash,
  CAST(NULL AS ${hashType}) AS _tm_t1_hash, CAST(NULL AS TIMESTAMP) AS _tm_valid_from, CAST(NULL AS BOOLEAN) AS _tm_deleted FROM batch WHERE false`;

  return { batch, firstLoadChanges, snapHit, classified, deleted: deletesSql, changes, changed, compacted, emptySnapshot };
}

/**
 * The committed snapshot as the relation `snap`: a base layer and the deltas of later runs,
 * oldest first; for each key the newest layer that has it wins. The deltas are small (a
 * compaction folds them into a new base past a bound), so they are deduplicated in memory
 * and the base is read in place with an anti join.
 */
export function snapshotViewSql(keys: readonly TypedColumn[], base: string, deltas: readonly string[]): string[] {
  const keysList = keys.map((k) => q(k.name)).join(', ');
  if (deltas.length === 0) return [`CREATE TEMP VIEW snap AS SELECT * FROM read_parquet(${duckLiteral(base)})`];
  const union = deltas.map((d, i) => `SELECT *, ${i} AS _tm_layer FROM read_parquet(${duckLiteral(d)})`).join('\nUNION ALL BY NAME\n');
  const join = keys.map((k) => `d.${q(k.name)} = b.${q(k.name)}`).join(' AND ');
  return [
    `CREATE TEMP TABLE snap_delta AS SELECT * EXCLUDE (_tm_layer) FROM (
${union}
) QUALIFY row_number() OVER (PARTITION BY ${keysList} ORDER BY _tm_layer DESC) = 1`,
    `CREATE TEMP VIEW snap AS SELECT * FROM snap_delta
UNION ALL BY NAME
SELECT b.* FROM read_parquet(${duckLiteral(base)}) b WHERE NOT EXISTS (SELECT 1 FROM snap_delta d WHERE ${join})`,
  ];
}

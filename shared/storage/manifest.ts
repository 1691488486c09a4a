import { z } from 'zod';
import { TerminalError } from '../errors.js';
import { PIPELINE_NAME_PATTERN, RUN_ID_PATTERN } from '../config/identifiers.js';
import type { HashRule } from '../canonical/row-hash.js';

const columnSchema = z.strictObject({ name: z.string(), type: z.string() });

export const windowSchema = z.strictObject({
  mode: z.enum(['full', 'timestamp', 'rowversion', 'cdc', 'changeTracking']),
  column: z.string().optional(),
  /** Exclusive lower bound actually queried (saved watermark minus lag); null = from the start. */
  from: z.string().nullable(),
  /** Inclusive upper bound captured before reading; null = nothing to read. */
  to: z.string().nullable(),
  /** Watermark to commit when the run succeeds. */
  next: z.string().nullable(),
});

/**
 * What the extract actually read, recorded by the source itself; the transform and validation
 * decide from this alone (never from the window's bounds). `full`: every row of the source
 * (first load, full mode, a full run, a change feed's re-snapshot), so absent keys are deletes;
 * `window`: the rows changed between `from` (exclusive) and `to` (inclusive), none or many;
 * `empty`: the source had no upper bound (no row with a change column, or no change since the
 * saved version of a change feed), so nothing was read.
 * `nullChangeColumnRows`: source rows whose change column is NULL: read by full reads only,
 * counted here (null when the mode has no change column or the source did not count).
 * `keys`: the key columns of every source row and nothing else (a `reconcile --deletes` run):
 * a current key absent from them was deleted; nothing else is compared.
 */
export const readSchema = z.strictObject({
  kind: z.enum(['full', 'window', 'empty', 'keys']),
  from: z.string().nullable(),
  to: z.string().nullable(),
  rows: z.number().int().min(0),
  nullChangeColumnRows: z.number().int().min(0).nullable(),
});

export const rawManifestSchema = z.strictObject({
  kind: z.literal('raw'),
  version: z.literal(1),
  pipeline: z.string().regex(PIPELINE_NAME_PATTERN),
  runId: z.string().regex(RUN_ID_PATTERN),
  /** The committed run this extract was read against; the checkpoint must still point there at merge. */
  baseRunId: z.string().nullable(),
  window: windowSchema,
  /** Absent in manifests of an older tidemark (then inferred as it did: full when `from` is null). */
  read: readSchema.optional(),
  rowCount: z.number().int().min(0),
  /** Rows in the whole source up to the window's upper bound (for row-count validation). */
  sourceRowCount: z.number().int().min(0).nullable(),
  schema: z.array(columnSchema),
  parts: z.array(
    z.strictObject({
      name: z.string(),
      rows: z.number().int().min(0),
      bytes: z.number().int().min(0),
      md5: z.string().regex(/^[0-9a-f]{32}$/),
    }),
  ),
  /**
   * Key-only parts read beside a window whose change feed missed deletes (a Salesforce
   * recycle-bin gap under `deletesGap: keys`): the transform deletes current keys absent from them.
   */
  keys: z
    .array(z.strictObject({ name: z.string(), rows: z.number().int().min(0), bytes: z.number().int().min(0), md5: z.string().regex(/^[0-9a-f]{32}$/) }))
    .optional(),
  /** What the extract had to surface, e.g. SnapshotGap (a CDC / Change Tracking cleanup gap answered by a re-snapshot). */
  warnings: z.array(z.strictObject({ event: z.string(), message: z.string() })).optional(),
  createdAt: z.string(),
});

export const countsSchema = z.strictObject({
  extracted: z.number().int(),
  inserted: z.number().int(),
  updated: z.number().int(),
  deleted: z.number().int(),
  unchanged: z.number().int(),
  stale: z.number().int(),
  quarantined: z.number().int(),
  type1: z.number().int(),
});

/** Where a changes file's `_tm_version_key` is (storage/parquet-format.ts versionKeyPlace). */
export const versionKeyPlaceSchema = z.enum(['file', 'merge']);
export type VersionKeyPlace = z.infer<typeof versionKeyPlaceSchema>;

export const changesManifestSchema = z.strictObject({
  kind: z.literal('changes'),
  version: z.literal(1),
  pipeline: z.string().regex(PIPELINE_NAME_PATTERN),
  runId: z.string().regex(RUN_ID_PATTERN),
  baseRunId: z.string().nullable(),
  window: windowSchema,
  read: readSchema.optional(),
  /** Valid-from for versions this run opens (the run boundary, UTC ISO-8601). */
  boundary: z.string(),
  changes: z.strictObject({ name: z.string(), rows: z.number().int().min(0), md5: z.string() }),
  /** The candidate snapshot manifest (SnapshotManifest) and its current keys. */
  snapshot: z.strictObject({ name: z.string(), rows: z.number().int().min(0) }),
  schema: z.array(columnSchema),
  counts: countsSchema,
  /** Extract-side validation figures, compared with the warehouse after the merge. */
  expected: z.strictObject({
    currentRows: z.number().int().nullable(),
    checksum: z.string().nullable(),
    checksumColumns: z.array(z.string()),
    checksumScope: z.enum(['table', 'changes']),
  }),
  sourceRowCount: z.number().int().nullable(),
  /** Sampled rows of the batch (validation.sample), compared field by field after the merge. */
  sample: z.strictObject({ name: z.string(), rows: z.number().int().min(0) }).optional(),
  /** A reconcile run's findings (shared/engine/reconcile.ts). */
  reconcile: z.lazy(() => reconcileReportSchema).optional(),
  /** The target's hash rule the changes were written under (canonical/row-hash.ts); absent: before it was recorded, hex hashes. */
  hashRule: z.number().int().min(1).optional(),
  /**
   * Where `_tm_version_key` is (storage/parquet-format.ts VersionKeyPlace): in the changes file,
   * or computed by the merge from the key and `_tm_valid_from`. Absent: in the file (written
   * before it was recorded).
   */
  versionKey: versionKeyPlaceSchema.optional(),
  createdAt: z.string(),
});

const keySampleSchema = z.array(z.record(z.string(), z.union([z.string(), z.null()])));

/**
 * What a reconcile found. `snapshot`: the committed snapshot against the warehouse's current
 * versions (`onlyInSnapshot`: current in the snapshot, not in the warehouse; `onlyInWarehouse`:
 * the other way; `hashDiffers`: current in both with another row hash). `deletes`: the source's
 * keys against the rebuilt snapshot (null without `--deletes`). Samples hold keys as text.
 */
export const reconcileReportSchema = z.strictObject({
  snapshot: z.strictObject({
    warehouseCurrent: z.number().int().min(0),
    snapshotCurrent: z.number().int().min(0),
    onlyInSnapshot: z.number().int().min(0),
    onlyInWarehouse: z.number().int().min(0),
    hashDiffers: z.number().int().min(0),
    sample: z.array(z.strictObject({ difference: z.enum(['only_in_snapshot', 'only_in_warehouse', 'hash_differs']), key: keySampleSchema.element })),
  }),
  deletes: z
    .strictObject({
      sourceKeys: z.number().int().min(0),
      nullKeys: z.number().int().min(0),
      absent: z.number().int().min(0),
      sample: keySampleSchema,
    })
    .nullable(),
});
export type ReconcileReport = z.infer<typeof reconcileReportSchema>;

/**
 * The committed snapshot of one run (`state/{pipeline}/snapshots/{runId}.json`): a base layer
 * and the deltas of later runs, oldest first; for each key the newest layer that has it wins.
 * Layers are immutable and named by their md5, so a rollback that points back at an older
 * snapshot finds exactly the files it was made of.
 */
export const snapshotManifestSchema = z.strictObject({
  kind: z.literal('snapshot'),
  version: z.literal(1),
  pipeline: z.string().regex(PIPELINE_NAME_PATTERN),
  runId: z.string().regex(RUN_ID_PATTERN),
  layers: z
    .array(z.strictObject({ name: z.string(), rows: z.number().int().min(0), md5: z.string().regex(/^[0-9a-f]{32}$/) }))
    .min(1),
  /** Keys current (not deleted) in the target after this run. */
  current: z.number().int().min(0),
  /** The row-hash rule of the layers' hashes (canonical/row-hash.ts); absent = 1 (before rules were recorded). */
  hashRule: z.number().int().min(1).optional(),
  createdAt: z.string(),
});

export type RawManifest = z.infer<typeof rawManifestSchema>;
export type SnapshotManifest = z.infer<typeof snapshotManifestSchema>;
export type ChangesManifest = z.infer<typeof changesManifestSchema>;
export type Counts = z.infer<typeof countsSchema>;
export type ExtractWindow = z.infer<typeof windowSchema>;
export type ExtractRead = z.infer<typeof readSchema>;
export type ReadKind = ExtractRead['kind'];

/**
 * The read kind of a raw manifest. Manifests written before `read` existed are read the way
 * that tidemark did (a null lower bound outside a backfill was a full read), so a run extracted
 * before an upgrade transforms as it would have.
 */
export function readKindOf(m: Pick<RawManifest, 'read' | 'window'>, backfill: boolean): ReadKind {
  if (m.read) return m.read.kind;
  return m.window.mode === 'full' || (m.window.from === null && !backfill) ? 'full' : 'window';
}
export type ColumnInfo = z.infer<typeof columnSchema>;

export function emptyCounts(): Counts {
  return { extracted: 0, inserted: 0, updated: 0, deleted: 0, unchanged: 0, stale: 0, quarantined: 0, type1: 0 };
}

/**
 * The hash rule of a committed snapshot: recorded, or 1 for a snapshot of a tidemark that did
 * not record it (also one with no manifest at all); undefined with no snapshot (a first load
 * takes the current rule).
 */
export function hashRuleOf(committed: { manifest: SnapshotManifest | undefined } | undefined): HashRule | undefined {
  if (committed === undefined) return undefined;
  const rule = committed.manifest?.hashRule;
  return rule === 2 || rule === 3 || rule === 4 ? rule : 1;
}

/** The key columns as a changes manifest's schema types them, in key order, or the first key it lacks. */
export function changesKeyColumns(keys: readonly string[], m: Pick<ChangesManifest, 'schema'>): { columns: ColumnInfo[]; missing?: undefined } | { columns?: undefined; missing: string } {
  const columns: ColumnInfo[] = [];
  for (const k of keys) {
    const c = m.schema.find((x) => x.name === k);
    if (!c) return { missing: k };
    columns.push(c);
  }
  return { columns };
}

/**
 * The hash rule a changes file was written under: recorded, or 3 (hex hashes) for a changes
 * manifest written before it was recorded, so a merge queued across an upgrade stages text.
 * The merge decides the hash columns' types from this alone, never from the target's columns.
 */
export function changesHashRule(m: Pick<ChangesManifest, 'hashRule'>): HashRule {
  return m.hashRule === 1 || m.hashRule === 2 || m.hashRule === 4 ? m.hashRule : 3;
}

/** A malformed manifest is terminal: re-reading the same blob cannot fix it. */
export function parseManifest<T>(schema: z.ZodType<T>, where: string, text: string): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new TerminalError(`malformed manifest ${where}: not JSON (truncated or corrupt): ${(cause as Error).message}`, { cause });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new TerminalError(`malformed manifest ${where}: ${i.path.join('.') || '(root)'}: ${i.message}`, { cause: parsed.error });
  }
  return parsed.data;
}

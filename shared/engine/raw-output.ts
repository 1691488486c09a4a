import { parquetStats } from '../extract/parquet-stats.js';
import { recordExtracted, recordTransformed } from './run-lifecycle.js';
import { blobCacheOf } from '../storage/blob-cache.js';
import { CONTAINERS, QUEUES, layout } from '../storage/layout.js';
import { rawManifestSchema, type ChangesManifest, type ColumnInfo, type ExtractRead, type RawManifest, type VersionKeyPlace } from '../storage/manifest.js';
import type { HashRule } from '../canonical/row-hash.js';
import type { EngineContext } from './context.js';

const PART_UPLOADS = 3;

/**
 * Uploads an extract's local Parquet files under `raw/`, replacing whatever an interrupted
 * earlier attempt left under the same prefix, and returns the manifest entries with row counts
 * and checksums. Shared by the whole-table extract and each partition of a partitioned one.
 */
export async function uploadParts(
  ctx: EngineContext,
  files: readonly string[],
  fallbackSchema: ColumnInfo[],
  nameOf: (index: number) => string,
  prefix: string,
): Promise<{ parts: RawManifest['parts']; schema: ColumnInfo[] }> {
  const stats = await parquetStats(files, ctx.duck);
  await ctx.blobs.deletePrefix(CONTAINERS.raw, prefix);
  const parts: RawManifest['parts'] = new Array(files.length);
  const cache = blobCacheOf(ctx.workDir, ctx.env);
  // A few parts at a time: one stream rarely keeps the storage account (or Azurite) busy.
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (next < files.length && !failed) {
      const i = next++;
      const file = files[i]!;
      const name = nameOf(i);
      const { bytes, md5 } = await ctx.blobs.uploadFile(CONTAINERS.raw, name, file).catch((err: unknown) => {
        failed = true;
        throw err;
      });
      await cache.adopt(CONTAINERS.raw, name, md5, file);
      parts[i] = { name, rows: stats.rows[i] ?? 0, bytes, md5 };
    }
  };
  // Every upload settles before a failure is reported: a straggler landing after a retry
  // cleared the prefix would mix two attempts' parts.
  const settled = await Promise.allSettled(Array.from({ length: Math.min(PART_UPLOADS, files.length) }, worker));
  const rejected = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw rejected.reason;
  return { parts, schema: stats.schema.length ? stats.schema : fallbackSchema };
}

/**
 * Writes the run's `_manifest.json` (last, so it is what triggers the transform) after
 * recording the extracted row count on the run.
 */
export async function publishRawManifest(
  ctx: EngineContext,
  fields: Omit<RawManifest, 'kind' | 'version' | 'rowCount' | 'read'> & { read: Omit<ExtractRead, 'rows'> },
): Promise<RawManifest> {
  const rowCount = fields.parts.reduce((a, x) => a + x.rows, 0);
  // An empty read reads nothing: rows in its parts would mean the source ignored its own plan.
  if (fields.read.kind === 'empty' && rowCount > 0) throw new Error(`the extract of ${fields.pipeline} recorded an empty read but wrote ${rowCount} row(s)`);
  // Parsed before it is written: a manifest the transform would refuse must never trigger it.
  const manifest: RawManifest = rawManifestSchema.parse({ kind: 'raw', version: 1, ...fields, read: { ...fields.read, rows: rowCount }, rowCount });
  await recordExtracted(ctx, fields.pipeline, fields.runId, rowCount);
  await ctx.blobs.putText(CONTAINERS.raw, layout.rawManifest(fields.pipeline, fields.runId), JSON.stringify(manifest, null, 2));
  return manifest;
}

/**
 * Writes a run's changes manifest, built on its raw manifest, after recording the counts on the
 * run, and hands the run to the merge. Shared by the transform and the reconcile transform.
 */
export async function publishChangesManifest(
  ctx: EngineContext,
  run: { pipeline: string; runId: string; boundary: string },
  raw: RawManifest,
  fields: Pick<ChangesManifest, 'changes' | 'snapshot' | 'schema' | 'counts' | 'expected' | 'sourceRowCount' | 'sample' | 'reconcile'> & {
    /** Always recorded: the merge types the target's hash columns by it (storage/manifest.ts changesHashRule). */
    hashRule: HashRule;
    /** Always recorded: the merge computes the version key when the file does not hold it. */
    versionKey: VersionKeyPlace;
  },
): Promise<void> {
  const { sample, reconcile, ...rest } = fields;
  const manifest: ChangesManifest = {
    kind: 'changes',
    version: 1,
    pipeline: run.pipeline,
    runId: run.runId,
    baseRunId: raw.baseRunId,
    window: raw.window,
    ...(raw.read ? { read: raw.read } : {}),
    boundary: run.boundary,
    ...rest,
    ...(sample ? { sample } : {}),
    ...(reconcile ? { reconcile } : {}),
    createdAt: ctx.now().toISOString(),
  };
  await recordTransformed(ctx, run.pipeline, run.runId, fields.counts);
  await ctx.blobs.putText(CONTAINERS.changes, layout.changesManifest(run.pipeline, run.runId), JSON.stringify(manifest, null, 2));
  await ctx.queues.send(QUEUES.merge, { pipeline: run.pipeline, runId: run.runId });
}

import { parquetStats } from '../extract/parquet-stats.js';
import { updateRun } from '../state/runs.js';
import { blobCacheOf } from '../storage/blob-cache.js';
import { md5File } from '../storage/files.js';
import { CONTAINERS, layout } from '../storage/layout.js';
import { rawManifestSchema, type ColumnInfo, type RawManifest } from '../storage/manifest.js';
import type { EngineContext } from './context.js';

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
  const parts: RawManifest['parts'] = [];
  for (const [i, file] of files.entries()) {
    const name = nameOf(i);
    const md5 = await md5File(file);
    const { bytes } = await ctx.blobs.uploadFile(CONTAINERS.raw, name, file);
    await blobCacheOf(ctx.workDir, ctx.env).adopt(CONTAINERS.raw, name, md5, file);
    parts.push({ name, rows: stats.rows[i] ?? 0, bytes, md5 });
  }
  return { parts, schema: stats.schema.length ? stats.schema : fallbackSchema };
}

/**
 * Writes the run's `_manifest.json` (last, so it is what triggers the transform) after
 * recording the extracted row count on the run.
 */
export async function publishRawManifest(
  ctx: EngineContext,
  fields: Omit<RawManifest, 'kind' | 'version' | 'rowCount'>,
): Promise<RawManifest> {
  const rowCount = fields.parts.reduce((a, x) => a + x.rows, 0);
  // Parsed before it is written: a manifest the transform would refuse must never trigger it.
  const manifest: RawManifest = rawManifestSchema.parse({ kind: 'raw', version: 1, ...fields, rowCount });
  await updateRun(ctx.tables, fields.pipeline, fields.runId, (r) => ({ ...r, stage: 'transform', counts: { ...r.counts, extracted: rowCount } }), ctx.now);
  await ctx.blobs.putText(CONTAINERS.raw, layout.rawManifest(fields.pipeline, fields.runId), JSON.stringify(manifest, null, 2));
  return manifest;
}

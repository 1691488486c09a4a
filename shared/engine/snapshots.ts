import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { TerminalError } from '../errors.js';
import { readCheckpoint } from '../state/checkpoints.js';
import { runIdSecond } from '../state/runs.js';
import { blobCacheOf } from '../storage/blob-cache.js';
import { CONTAINERS, layout } from '../storage/layout.js';
import { parseManifest, snapshotManifestSchema, type SnapshotManifest } from '../storage/manifest.js';
import type { CommittedSnapshot, SnapshotOutput } from '../transform/run-transform.js';
import type { EngineContext } from './context.js';

/** What the transform needs of the committed snapshot, and what it was read from. */
export interface LoadedSnapshot {
  input: CommittedSnapshot;
  /** undefined for a snapshot of an older tidemark: one Parquet file named by the checkpoint. */
  manifest: SnapshotManifest | undefined;
}

/**
 * Makes the committed snapshot's layers local: from this instance's cache when an earlier
 * run here wrote or read them, downloaded and checked against their md5 otherwise.
 */
export async function loadSnapshot(ctx: EngineContext, pipeline: string, pointer: string | null, dir: string): Promise<LoadedSnapshot | undefined> {
  if (pointer === null) return undefined;
  if (pointer.endsWith('.parquet')) {
    // Written before snapshots had layers; the transform turns it into a base with a manifest.
    const file = join(dir, 'snapshot-legacy.parquet');
    await ctx.blobs.downloadToFile(CONTAINERS.state, pointer, file);
    return { input: { layers: [{ file, rows: null }], current: null }, manifest: undefined };
  }
  const where = `state/${pointer}`;
  const text = await ctx.blobs.getText(CONTAINERS.state, pointer);
  if (text === undefined) {
    throw new TerminalError(`the committed snapshot ${where} is missing; restore it, or roll the pipeline back to a run whose snapshot exists`);
  }
  const manifest = parseManifest(snapshotManifestSchema, where, text);
  const cache = blobCacheOf(ctx.workDir, ctx.env);
  const layers: CommittedSnapshot['layers'] = [];
  for (const [i, l] of manifest.layers.entries()) {
    const { path } = await cache.fetch(ctx.blobs, {
      container: CONTAINERS.state,
      name: l.name,
      md5: l.md5,
      dest: join(dir, `snapshot-${i}.parquet`),
      keep: true,
      onMismatch: (actual) => new TerminalError(`snapshot layer state/${l.name} does not match ${where} (md5 ${actual} ≠ ${l.md5})`),
    });
    layers.push({ file: path, rows: l.rows });
  }
  return { input: { layers, current: manifest.current }, manifest };
}

/**
 * Uploads the run's layer and its snapshot manifest (the candidate the checkpoint will point
 * at once the merge commits) and returns the manifest's name.
 */
export async function publishSnapshot(
  ctx: EngineContext,
  args: {
    pipeline: string;
    runId: string;
    previous: LoadedSnapshot | undefined;
    out: SnapshotOutput;
    /** The hash rule the run's hashes were computed under (the committed one, or the current on a new base). */
    hashRule: number;
    /** The run's layer, already uploaded (see snapshotLayerName), unless nothing changed. */
    uploaded: { name: string; md5: string } | undefined;
  },
): Promise<{ name: string; current: number }> {
  const { pipeline, runId, previous, out } = args;
  let layers: SnapshotManifest['layers'];
  if (out.kind === 'unchanged') {
    if (!previous?.manifest) throw new Error(`${pipeline}: a run that changed nothing needs a committed snapshot manifest to carry forward`);
    layers = previous.manifest.layers;
  } else {
    if (!args.uploaded) throw new Error(`${pipeline}: the snapshot layer of run ${runId} was not uploaded`);
    const { name, md5 } = args.uploaded;
    await blobCacheOf(ctx.workDir, ctx.env).adopt(CONTAINERS.state, name, md5, out.file!);
    const layer = { name, rows: out.rows, md5 };
    if (out.kind === 'delta' && !previous?.manifest) throw new Error(`${pipeline}: a delta layer needs a committed snapshot manifest to add to`);
    layers = out.kind === 'base' ? [layer] : [...previous!.manifest!.layers, layer];
  }
  const manifest: SnapshotManifest = snapshotManifestSchema.parse({
    kind: 'snapshot',
    version: 1,
    pipeline,
    runId,
    layers,
    current: out.current,
    hashRule: args.hashRule,
    createdAt: ctx.now().toISOString(),
  });
  const name = layout.snapshot(pipeline, runId);
  await ctx.blobs.putText(CONTAINERS.state, name, JSON.stringify(manifest, null, 2));
  // This instance keeps the layers of the committed snapshot and of this candidate; whichever
  // the checkpoint ends on, the next run here reads it without a download.
  const keep = new Set([...layers.map((l) => l.name), ...(previous?.manifest?.layers.map((l) => l.name) ?? [])]);
  await blobCacheOf(ctx.workDir, ctx.env).retain(CONTAINERS.state, layout.snapshotPrefix(pipeline), keep);
  return { name, current: out.current };
}

/** A fresh blob name for a run's layer: a retried transform never overwrites a layer a manifest names. */
export function snapshotLayerName(pipeline: string, runId: string): string {
  return layout.snapshotLayer(pipeline, runId, randomBytes(4).toString('hex'));
}

/**
 * Deletes the snapshot manifests and layers of a pipeline that no committed run can point at
 * again: rollback and restore only rewind to runs in the checkpoint's history, so what those
 * runs' manifests name is kept, and so is anything of a run not older than the oldest of them
 * (a run in flight writes its candidate before it commits). Returns the deleted blob names.
 */
export async function pruneSnapshots(ctx: EngineContext, pipeline: string): Promise<string[]> {
  const { checkpoint } = await readCheckpoint(ctx.tables, pipeline);
  if (checkpoint.history.length === 0) return [];
  const oldest = checkpoint.history[0]!.runId;
  const keep = new Set<string>();
  for (const pointer of new Set([...checkpoint.history.map((h) => h.snapshot), checkpoint.snapshot])) {
    if (!pointer) continue;
    keep.add(pointer);
    if (pointer.endsWith('.parquet')) continue;
    const text = await ctx.blobs.getText(CONTAINERS.state, pointer);
    // A kept manifest that cannot be read protects nothing it would name: prune nothing then.
    if (text === undefined) throw new TerminalError(`snapshot manifest state/${pointer} of ${pipeline} is missing; nothing was pruned`);
    for (const l of parseManifest(snapshotManifestSchema, `state/${pointer}`, text).layers) keep.add(l.name);
  }
  const prefix = layout.snapshotPrefix(pipeline);
  const doomed: string[] = [];
  for await (const b of ctx.blobs.list(CONTAINERS.state, prefix)) {
    const runId = b.name.slice(prefix.length).split('.')[0]!;
    // Strictly older seconds only: within one second the id's suffix says nothing of start order.
    if (!keep.has(b.name) && runIdSecond(runId) < runIdSecond(oldest)) doomed.push(b.name);
  }
  for (const name of doomed) await ctx.blobs.deletePrefix(CONTAINERS.state, name);
  return doomed;
}

import { join } from 'node:path';
import { splitQualified } from '../config/identifiers.js';
import { connectionOf, getPipeline, warehouseOf } from '../config/load.js';
import { parseDuration } from '../config/duration.js';
import type { PipelineConfig } from '../config/schema.js';
import { TerminalError, errorMessage } from '../errors.js';
import { parquetStats } from '../extract/parquet-stats.js';
import { planColumnsFromDuck } from '../merge/duckdb/warehouse.js';
import type { MergePlan } from '../merge/plan.js';
import { backupBeforeMerge } from '../rollback/backups.js';
import { readCheckpointHead } from '../state/checkpoints.js';
import { findRun, isTerminalStatus } from '../state/runs.js';
import type { ValidationResult } from '../state/validations.js';
import { blobCacheOf } from '../storage/blob-cache.js';
import { removeScratchDir, scratchDir } from '../storage/files.js';
import { CONTAINERS, QUEUES, layout, parseManifestPath } from '../storage/layout.js';
import {
  changesManifestSchema,
  parseManifest,
  rawManifestSchema,
  readKindOf,
  changesHashRule,
  changesKeyColumns,
  hashRuleOf,
  type ChangesManifest,
  type ColumnInfo,
  type RawManifest,
} from '../storage/manifest.js';
import { runTransform } from '../transform/run-transform.js';
import { firstLoadHashRule, hashFormatOf } from '../canonical/row-hash.js';
import { assertExtractValid } from '../validate/extract.js';
import { warehouseChecks } from '../validate/warehouse-checks.js';
import { checkSchemaDrift, compareSchemas } from '../transform/schema-drift.js';
import type { EngineContext } from './context.js';
import { recordCommitted, recordValidated, runStage, transitionRun, type StageOutcome } from './run-lifecycle.js';
import { withRetry } from '../retry.js';
import type { StageMessage } from './messages.js';
import { publishChangesManifest, publishRawManifest, uploadParts } from './raw-output.js';
import { loadSnapshot, publishSnapshot, snapshotLayerName } from './snapshots.js';
import { extractReconcile, transformReconcile } from './reconcile.js';
import { BackgroundUploads } from '../storage/background-uploads.js';
import { versionKeyPlace } from '../storage/parquet-format.js';
import { extractPartition, partitionsDue, startPartitions } from './partitioned-extract.js';
import type { WindowInput } from '../extract/window.js';
import { awaitDependencies } from './dependencies.js';
import type { StartNextRun } from './run-events.js';
import { telemetryOf } from '../telemetry/telemetry.js';

/**
 * Each stage's work. The run's bookkeeping around it (claims, status, counts, checkpoint, ending
 * or failing the run) is the run lifecycle's: shared/engine/run-lifecycle.ts.
 */
export { runStage, type StageOutcome } from './run-lifecycle.js';

function retryPolicy(p: PipelineConfig) {
  return { attempts: p.retry.attempts, backoff: p.retry.backoff, initialDelayMs: parseDuration(p.retry.initialDelay) };
}

/* ---------------- extract ---------------- */

export async function extractStage(ctx: EngineContext, msg: StageMessage): Promise<StageOutcome> {
  return runStage(ctx, 'extract', msg, async (run) => {
    const p = getPipeline(ctx.project, msg.pipeline);
    const manifestName = layout.rawManifest(p.name, run.runId);
    // The manifest is written last: if it exists, this stage completed and the blob trigger
    // owns the run now. A redelivered extract message must not rewrite parts under it.
    if (await ctx.blobs.exists(CONTAINERS.raw, manifestName)) return 'skipped';
    if (run.mode === 'reconcile') {
      // A repair of what is committed: it waits for no dependency and reads no window.
      await transitionRun(ctx, p.name, run.runId, 'extracting');
      const dir = await scratchDir(ctx.workDir, p.name, run.runId, 'extract');
      try {
        await withRetry(retryPolicy(p), () => extractReconcile(ctx, p, run, dir), (err, attempt, delay) =>
          ctx.log.log('warn', `key-only read failed (attempt ${attempt}), retrying in ${delay} ms: ${errorMessage(err)}`, { pipeline: p.name, runId: run.runId }),
        );
      } finally {
        await removeScratchDir(dir);
      }
      return 'done';
    }
    if ((await awaitDependencies(ctx, p, run)) === 'waiting') return 'skipped';
    await transitionRun(ctx, p.name, run.runId, 'extracting');
    // The head row alone: a run reads on from its watermark and base run, never its history
    // (listing the history rows cost a partition scan per stage).
    const checkpoint = await readCheckpointHead(ctx.tables, p.name);
    const cd = p.source.changeDetection;
    const window: WindowInput = {
      mode: cd.mode,
      ...(cd.column ? { column: cd.column } : {}),
      lagMs: cd.lag ? parseDuration(cd.lag) : 0,
      saved: checkpoint.watermark,
      runMode: checkpoint.lastRunId === null && run.mode === 'incremental' ? 'full' : run.mode,
      ...(run.backfill ? { backfill: run.backfill } : {}),
    };
    // Partitioned full reads (issue: initial loads): one message per key range.
    if (msg.partition !== undefined) return extractPartition(ctx, p, run, msg.partition, window);
    if (p.source.partitions) {
      const probe = ctx.sourceFor(ctx, connectionOf(ctx.project, p), p);
      const due = partitionsDue(p, window, probe);
      await probe.close();
      if (due && (await startPartitions(ctx, p, run, checkpoint, window))) return 'done';
    }
    const dir = await scratchDir(ctx.workDir, p.name, run.runId, 'extract');
    try {
      const result = await withRetry(
        retryPolicy(p),
        async () => {
          const source = ctx.sourceFor(ctx, connectionOf(ctx.project, p), p);
          try {
            return await source.extract({
              window,
              outDir: join(dir, 'parts'),
              partRows: p.source.partRows,
              partBytes: p.source.partBytes,
              countSource: p.validation.rowCount === 'exact',
            });
          } finally {
            await source.close();
          }
        },
        (err, attempt, delay) =>
          ctx.log.log('warn', `source read failed (attempt ${attempt}), retrying in ${delay} ms: ${errorMessage(err)}`, {
            pipeline: p.name,
            runId: run.runId,
          }),
      );
      // Parts of an earlier, interrupted attempt are replaced, never mixed in.
      const { parts, schema } = await uploadParts(ctx, result.files, result.schema, (i) => layout.rawPart(p.name, run.runId, i), layout.rawPrefix(p.name, run.runId));
      // After the data parts: their upload clears the run's whole prefix first.
      const keyParts = result.keys
        ? (await uploadParts(ctx, result.keys.files, result.keys.schema, (i) => layout.rawKeysPart(p.name, run.runId, i), layout.rawKeysPrefix(p.name, run.runId))).parts
        : undefined;
      for (const w of result.warnings ?? []) {
        ctx.log.log('warn', w.message, { pipeline: p.name, runId: run.runId, event: w.event });
        telemetryOf(ctx).event(w.event, { pipeline: p.name, runId: run.runId, reason: w.message.slice(0, 500) });
      }
      await publishRawManifest(ctx, {
        pipeline: p.name,
        runId: run.runId,
        baseRunId: checkpoint.lastRunId,
        window: result.window,
        read: result.read,
        sourceRowCount: result.sourceRowCount,
        schema,
        parts,
        ...(keyParts ? { keys: keyParts } : {}),
        ...(result.warnings?.length ? { warnings: result.warnings } : {}),
        createdAt: ctx.now().toISOString(),
      });
      return 'done';
    } finally {
      await removeScratchDir(dir);
    }
  });
}

/* ---------------- transform (blob trigger on the raw manifest) ---------------- */

export async function transformStage(ctx: EngineContext, blobName: string): Promise<StageOutcome> {
  const ref = parseManifestPath(blobName);
  if (!ref) {
    ctx.log.log('warn', `blob ${blobName} is not a run manifest; ignored`);
    return 'skipped';
  }
  return runStage(ctx, 'transform', ref, async (run) => {
    const p = getPipeline(ctx.project, ref.pipeline);
    const where = `raw/${blobName}`;
    const text = await ctx.blobs.getText(CONTAINERS.raw, blobName);
    if (text === undefined) throw new TerminalError(`manifest ${where} vanished before the transform read it`);
    const manifest = parseManifest(rawManifestSchema, where, text);
    if (manifest.pipeline !== ref.pipeline || manifest.runId !== ref.runId) {
      throw new TerminalError(`malformed manifest ${where}: it names ${manifest.pipeline}/${manifest.runId}, not the run of its path`);
    }
    const changesManifestName = layout.changesManifest(p.name, run.runId);
    if (await ctx.blobs.exists(CONTAINERS.changes, changesManifestName)) {
      // Transformed before (the trigger fired twice, or we crashed before the merge message):
      // only the enqueue may be missing, and the merge is idempotent.
      await ctx.queues.send(QUEUES.merge, { pipeline: p.name, runId: run.runId });
      return 'skipped';
    }
    const checkpoint = await readCheckpointHead(ctx.tables, p.name);
    if (checkpoint.lastRunId !== manifest.baseRunId) {
      throw new TerminalError(
        `the checkpoint moved to ${checkpoint.lastRunId} after this run extracted against ${manifest.baseRunId ?? 'nothing'}; start a new run`,
      );
    }
    // A reconcile's parts are keys only: no extract checks, no drift against a whole-row base.
    if (run.mode !== 'reconcile') {
      await assertExtractValid(ctx, p, manifest, run.mode === 'backfill');
      await checkSchemaDriftAgainstBase(ctx, p, manifest);
    }
    await transitionRun(ctx, p.name, run.runId, 'transforming');
    const dir = await scratchDir(ctx.workDir, p.name, run.runId, 'transform');
    const uploads = new BackgroundUploads(ctx.blobs);
    try {
      const partFiles: string[] = [];
      const cache = blobCacheOf(ctx.workDir, ctx.env);
      for (const [i, part] of manifest.parts.entries()) {
        if (!(await ctx.blobs.exists(CONTAINERS.raw, part.name))) {
          throw new TerminalError(`malformed manifest ${where}: part ${part.name} is missing from storage`);
        }
        const { path } = await cache.fetch(ctx.blobs, {
          container: CONTAINERS.raw,
          name: part.name,
          md5: part.md5,
          dest: join(dir, `part-${i}.parquet`),
          onMismatch: (md5) => new TerminalError(`part ${part.name} does not match its manifest checksum (${md5} ≠ ${part.md5})`),
        });
        partFiles.push(path);
      }
      const keyFiles: string[] = [];
      for (const [i, part] of (manifest.keys ?? []).entries()) {
        const { path } = await cache.fetch(ctx.blobs, {
          container: CONTAINERS.raw,
          name: part.name,
          md5: part.md5,
          dest: join(dir, `keys-${i}.parquet`),
          onMismatch: (md5) => new TerminalError(`key part ${part.name} does not match its manifest checksum (${md5} ≠ ${part.md5})`),
        });
        keyFiles.push(path);
      }
      const stats = await parquetStats(partFiles, ctx.duck);
      stats.rows.forEach((n, i) => {
        if (n !== manifest.parts[i]!.rows) {
          throw new TerminalError(`part ${manifest.parts[i]!.name} has ${n} rows, its manifest says ${manifest.parts[i]!.rows}`);
        }
      });
      if (partFiles.length > 0) assertSameSchema(where, manifest.schema, stats.schema);
      if (run.mode === 'reconcile') {
        await transformReconcile(ctx, p, run, manifest, partFiles, checkpoint, dir);
        for (const part of manifest.parts) await cache.evict(CONTAINERS.raw, part.name);
        return 'done';
      }

      const committed = await loadSnapshot(ctx, p.name, checkpoint.snapshot, dir);
      // Decided by what the extract recorded it did, never by the window's bounds (issue #14).
      const fullRead = readKindOf(manifest, run.mode === 'backfill') === 'full';
      const changesName = layout.changes(p.name, run.runId);
      const layerName = snapshotLayerName(p.name, run.runId);
      const out = await runTransform({
        pipeline: p,
        parts: partFiles,
        schema: manifest.schema,
        snapshot: committed?.input,
        fullRead,
        // An existing target keeps the hash rule it was created under (no versions opened by an upgrade).
        hashRule: hashRuleOf(committed) ?? firstLoadHashRule(p.target.hashFormat),
        boundary: run.boundary,
        sourceRowCount: manifest.sourceRowCount,
        ...(manifest.keys ? { liveKeys: keyFiles } : {}),
        outDir: dir,
        duck: ctx.duck,
        warehouseKind: warehouseOf(ctx.project, p).kind,
        onWritten: (kind, file) =>
          kind === 'changes' ? uploads.start(CONTAINERS.changes, changesName, file) : uploads.start(CONTAINERS.state, layerName, file),
      });
      for (const w of out.warnings) ctx.log.log('warn', w, { pipeline: p.name, runId: run.runId });
      if (out.quarantineFile) await ctx.blobs.uploadFile(CONTAINERS.quarantine, layout.quarantine(p.name, run.runId), out.quarantineFile);
      if (out.sampleFile) await ctx.blobs.uploadFile(CONTAINERS.changes, layout.sample(p.name, run.runId), out.sampleFile);
      const { md5: changesMd5 } = await uploads.result(CONTAINERS.changes, changesName);
      await cache.adopt(CONTAINERS.changes, changesName, changesMd5, out.changesFile);
      const layer = out.snapshot.kind === 'unchanged' ? undefined : { name: layerName, md5: (await uploads.result(CONTAINERS.state, layerName)).md5 };
      const snapshot = await publishSnapshot(ctx, { pipeline: p.name, runId: run.runId, previous: committed, out: out.snapshot, hashRule: out.hashRule, uploaded: layer });
      const counts = { ...out.counts, extracted: manifest.rowCount };
      await publishChangesManifest(ctx, run, manifest, {
        changes: { name: changesName, rows: out.changesRows, md5: changesMd5 },
        snapshot: { name: snapshot.name, rows: snapshot.current },
        schema: out.schema,
        counts,
        expected: out.expected,
        sourceRowCount: manifest.sourceRowCount,
        hashRule: out.hashRule,
        versionKey: out.versionKey,
        ...(out.sampleFile ? { sample: { name: layout.sample(p.name, run.runId), rows: out.sampleRows } } : {}),
      });
      for (const part of [...manifest.parts, ...(manifest.keys ?? [])]) await cache.evict(CONTAINERS.raw, part.name);
      return 'done';
    } finally {
      await uploads.settle();
      await removeScratchDir(dir);
    }
  });
}

/**
 * Refused before the transform writes anything: source columns that changed against the base
 * run's extract under source.schemaDrift. (Too few rows and expected columns are
 * validation.extract, checked by assertExtractValid.)
 */
async function checkSchemaDriftAgainstBase(ctx: EngineContext, p: PipelineConfig, manifest: RawManifest): Promise<void> {
  if (manifest.baseRunId === null || manifest.schema.length === 0) return;
  const baseName = layout.rawManifest(p.name, manifest.baseRunId);
  const text = await ctx.blobs.getText(CONTAINERS.raw, baseName);
  if (text === undefined) {
    ctx.log.log('warn', `schema drift not checked: raw/${baseName} of the base run is gone`, { pipeline: p.name, runId: manifest.runId });
    return;
  }
  const base = parseManifest(rawManifestSchema, `raw/${baseName}`, text);
  if (base.schema.length === 0) return;
  checkSchemaDrift(p.name, p.source.schemaDrift, compareSchemas(base.schema, manifest.schema));
}

/**
 * The merge plan of a run, from its changes manifest and the pipeline: what the merge stage
 * hands the warehouse (and what a test that applies a run again must hand it too). Refuses a
 * file without version keys for a warehouse that reads the file's columns as they are.
 */
export function mergePlanOf(ctx: Pick<EngineContext, 'project'>, p: PipelineConfig, manifest: ChangesManifest, runSeq: number | null): Omit<MergePlan, 'stage'> {
  const kind = warehouseOf(ctx.project, p).kind;
  if (manifest.versionKey === 'merge' && versionKeyPlace(kind) === 'file') {
    throw new TerminalError(
      `the changes of run ${manifest.runId} of ${p.name} hold no _tm_version_key (written for a DuckDB or PostgreSQL target), and its ${kind} warehouse loads the file's columns as they are; nothing was applied. The target's warehouse changed while the run was in flight: cancel it (tidemark cancel ${p.name}) and start a new run`,
    );
  }
  return {
    pipeline: p.name,
    runId: manifest.runId,
    boundary: manifest.boundary,
    target: splitQualified(p.target.table),
    keys: p.key,
    columns: planColumnsFromDuck(manifest.schema),
    type1Columns: p.target.type1Columns,
    deletes: p.target.deletes,
    scd: p.target.scd,
    allowTypeWidening: p.target.allowTypeWidening,
    hashFormat: hashFormatOf(changesHashRule(manifest)),
    ...(manifest.versionKey === 'merge' ? { versionKeyFrom: { keys: versionKeyColumns(p, manifest), rule: changesHashRule(manifest) } } : {}),
    counts: manifest.counts,
    commit: { baseRunId: manifest.baseRunId, runSeq, readTo: manifest.window.next, snapshot: manifest.snapshot.name },
  };
}

/** The typed key columns a merge computes the version key from (a `versionKey: merge` file). */
function versionKeyColumns(p: PipelineConfig, manifest: ChangesManifest): ColumnInfo[] {
  const { columns, missing } = changesKeyColumns(p.key, manifest);
  if (missing !== undefined) {
    throw new TerminalError(
      `key column ${missing} of ${p.name} is not in the schema of the changes manifest of run ${manifest.runId}, so its version keys cannot be computed; nothing was applied. The key changed while the run was in flight: cancel it (tidemark cancel ${p.name}) and start a new run`,
    );
  }
  return columns;
}

function assertSameSchema(where: string, declared: RawManifest['schema'], actual: RawManifest['schema']): void {
  const fmt = (cols: RawManifest['schema']) => cols.map((c) => `${c.name} ${c.type}`).join(', ');
  if (fmt(declared) !== fmt(actual)) {
    throw new TerminalError(`the parts of ${where} do not have the schema their manifest declares: parts have (${fmt(actual)}), manifest says (${fmt(declared)})`);
  }
}

async function readChangesManifest(ctx: EngineContext, pipeline: string, runId: string): Promise<ChangesManifest> {
  const name = layout.changesManifest(pipeline, runId);
  const text = await ctx.blobs.getText(CONTAINERS.changes, name);
  if (text === undefined) throw new TerminalError(`changes manifest changes/${name} is missing`);
  return parseManifest(changesManifestSchema, `changes/${name}`, text);
}

/* ---------------- merge ---------------- */

export async function mergeStage(ctx: EngineContext, msg: StageMessage): Promise<StageOutcome> {
  return runStage(ctx, 'merge', msg, async (run) => {
    const p = getPipeline(ctx.project, msg.pipeline);
    const manifest = await readChangesManifest(ctx, p.name, run.runId);
    // Before anything is written (the run's state, a backup): a file this warehouse cannot read.
    const plan = mergePlanOf(ctx, p, manifest, run.seq ?? null);
    await transitionRun(ctx, p.name, run.runId, 'merging');
    const dir = await scratchDir(ctx.workDir, p.name, run.runId, 'merge');
    const warehouse = ctx.warehouseFor(ctx, warehouseOf(ctx.project, p), p);
    try {
      const cache = blobCacheOf(ctx.workDir, ctx.env);
      const { path: local } = await cache.fetch(ctx.blobs, {
        container: CONTAINERS.changes,
        name: manifest.changes.name,
        md5: manifest.changes.md5,
        dest: join(dir, 'changes.parquet'),
        onMismatch: () => new TerminalError(`changes/${manifest.changes.name} does not match its manifest checksum`),
      });
      await backupBeforeMerge(ctx, p, run, manifest.baseRunId, warehouse);
      // Cancelled (or failed by a takeover) while this delivery got ready: apply nothing. A
      // cancel that lands once the transaction has begun waits for it (end-run.ts).
      const now = await findRun(ctx.tables, p.name, run.runId);
      if (!now || isTerminalStatus(now.status)) {
        ctx.log.log('warn', `run ${now?.status ?? 'gone'} before its merge began; nothing applied`, { pipeline: p.name, runId: run.runId });
        return 'skipped';
      }
      // Retried in place with the pipeline's backoff: the ledger makes a repeated merge a no-op,
      // so an outage of the warehouse costs time, not correctness.
      const outcome = await withRetry(
        retryPolicy(p),
        () =>
          warehouse.merge(
            plan,
            local,
            { container: CONTAINERS.changes, name: manifest.changes.name },
          ),
        (err, attempt, delay) =>
          ctx.log.log('warn', `warehouse merge failed (attempt ${attempt}), retrying in ${delay} ms: ${errorMessage(err)}`, {
            pipeline: p.name,
            runId: run.runId,
          }),
      );
      if (outcome === 'base-moved') {
        // Nothing was applied: the changes were computed against a run that is no longer the
        // pipeline's latest committed one, so applying them would double or lose versions.
        throw new TerminalError(
          `the warehouse's latest committed run of ${p.name} is no longer ${manifest.baseRunId ?? 'nothing'}, the run these changes were computed against; nothing was applied. Start a new run: it recomputes against the committed state`,
        );
      }
      ctx.log.log('info', `merge ${outcome}`, { pipeline: p.name, runId: run.runId });
      await recordCommitted(ctx, p, run.runId, { baseRunId: manifest.baseRunId, watermark: manifest.window.next, snapshot: manifest.snapshot.name });
      return 'done';
    } finally {
      await warehouse.close();
      await removeScratchDir(dir);
    }
  });
}

/* ---------------- validate ---------------- */

/** `startNext` is startRun: a succeeded backfill window starts the next one (run-events.ts). */
export async function validateStage(ctx: EngineContext, msg: StageMessage, startNext: StartNextRun): Promise<StageOutcome> {
  return runStage(ctx, 'validate', msg, async (run) => {
    const p = getPipeline(ctx.project, msg.pipeline);
    const manifest = await readChangesManifest(ctx, p.name, run.runId);
    const target = splitQualified(p.target.table);
    const warehouse = ctx.warehouseFor(ctx, warehouseOf(ctx.project, p), p);
    const dir = await scratchDir(ctx.workDir, p.name, run.runId, 'validate');
    const cache = blobCacheOf(ctx.workDir, ctx.env);
    const results: ValidationResult[] = [];
    try {
      if (p.validation.rowCount === 'exact' && manifest.expected.currentRows !== null) {
        const actual = await warehouse.currentRowCount(target);
        results.push({
          check: 'row_count',
          passed: actual === manifest.expected.currentRows,
          expected: manifest.expected.currentRows,
          actual,
          detail:
            manifest.read?.kind === 'full' || manifest.window.mode === 'full'
              ? 'distinct keys of the full read (after dedupe, less quarantined) vs current target rows'
              : 'keys current after this run (the committed ones plus inserts less deletes of the batch) vs current target rows',
        });
      }
      if (manifest.expected.checksum !== null) {
        let scope: 'table' | { changesFile: string } = 'table';
        if (manifest.expected.checksumScope === 'changes') {
          const { path } = await cache.fetch(ctx.blobs, {
            container: CONTAINERS.changes,
            name: manifest.changes.name,
            md5: manifest.changes.md5,
            dest: join(dir, 'changes.parquet'),
            onMismatch: () => new TerminalError(`changes/${manifest.changes.name} does not match its manifest checksum`),
          });
          scope = { changesFile: path };
        }
        const actual = await warehouse.checksum(target, manifest.expected.checksumColumns, p.key, scope);
        results.push({
          check: 'checksum',
          passed: actual === manifest.expected.checksum,
          expected: manifest.expected.checksum,
          actual,
          detail: `${manifest.expected.checksumColumns.join(', ')} over ${manifest.expected.checksumScope === 'table' ? 'all current rows' : "this run's changed rows"}`,
        });
      }
      results.push(...(await warehouseChecks(ctx, p, run.runId, manifest, warehouse, dir)));
    } finally {
      await warehouse.close();
      // The changes file's last reader (the merge and this checksum) is done with it.
      await cache.evict(CONTAINERS.changes, manifest.changes.name);
      await removeScratchDir(dir);
    }
    await recordValidated(ctx, p, run.runId, results, startNext);
    return 'done';
  });
}

/**
 * `npm run bench`: the scenarios of issue #8 through the real pipeline on the local stack
 * (Azurite on free ports with data on disk, DuckDB source and warehouse), each next to a
 * hand-written DuckDB baseline measured in the same run. Writes bench/results/<time>.json,
 * bench/results/latest.json and latest.md, and prints the table.
 *
 *   npm run bench -- [--scale 0.1] [--with-d] [--only A,B,C,E] [--seed 42] [--keep] [--profile]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startAzurite, type AzuriteHandle } from '../shared/local/azurite.js';
import { openLocalStack, runOnce, type LocalStack } from '../shared/local/stack.js';
import { CONTAINERS, layout } from '../shared/storage/layout.js';
import type { DuckSettings } from '../shared/duckdb/session.js';
import { Baseline, warehouseFigures, type WarehouseFigures } from './baseline.js';
import { CHANGE_COLUMN, KEY, SOURCE_TABLE, applyChanges, changeMix, generateSource, type ChangeMix } from './data.js';
import { measureFixedCost, type FixedCostResult } from './fixed-cost.js';
import { CpuMeter, PeakMonitor } from './memory.js';
import { installProfiler, summarizeProfile, takeProfile } from './profile.js';
import {
  evaluateTargets,
  fmtRows,
  markdownFixedCost,
  markdownTable,
  markdownTargets,
  resultFileName,
  type ScenarioId,
  type ScenarioResult,
} from './report.js';

const FULL = { dimension: 10_000_000, b: 100_000, c: 1_000_000, dDimension: 50_000_000 };
const MEMORY_LIMIT = '1GB';
const THREADS = 2;
const T0 = Date.parse('2026-11-01T00:00:00Z');

/** Tracked: every column but the key and the change column, sorted by name (what `all` would hash). */
const TRACKED = ['account_no', 'city', 'created_on', 'email', 'employees', 'is_active', 'name', 'notes', 'revenue', 'segment'];

const PROJECT = `storage: AzureWebJobsStorage
connections:
  SRC: { kind: duckdb, path: source.duckdb }
warehouses:
  WH: { kind: duckdb, path: warehouse.duckdb }
duckdb: { memoryLimit: ${MEMORY_LIMIT}, threads: ${THREADS} }
`;

/** One pipeline per dimension: checkpoints and runs are per pipeline name in the shared Azurite. */
const pipelineYaml = (name: string) => `name: ${name}
source:
  connection: SRC
  table: ${SOURCE_TABLE}
  changeDetection: { mode: timestamp, column: ${CHANGE_COLUMN} }
key: [${KEY}]
target:
  warehouse: WH
  table: dw.dim_account
  # ${CHANGE_COLUMN} is carried, not tracked: a touched row opens no version.
  trackedColumns: [${TRACKED.join(', ')}]
  deletes: retire
validation:
  rowCount: exact
`;

function log(line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

interface Dimension {
  label: string;
  pipeline: string;
  /** The bench's temp folder, kept out of anything written. */
  root: string;
  dir: string;
  sourceFile: string;
  stack: LocalStack;
  baseline: Baseline;
  round: number;
  clock: number;
}

async function openDimension(root: string, label: string, pipeline: string, rows: number, seed: number, duck: DuckSettings, az: AzuriteHandle): Promise<Dimension> {
  const dir = join(root, label);
  mkdirSync(join(dir, 'pipelines'), { recursive: true });
  writeFileSync(join(dir, 'tidemark.yaml'), PROJECT);
  writeFileSync(join(dir, 'pipelines', `${pipeline}.yaml`), pipelineYaml(pipeline));
  const sourceFile = join(dir, 'source.duckdb');
  const g = performance.now();
  await generateSource(sourceFile, rows, seed, new Date(T0).toISOString(), duck);
  log(`${label}: generated ${fmtRows(rows)} source rows in ${((performance.now() - g) / 1000).toFixed(1)} s`);
  const env = { ...process.env };
  delete env.TIDEMARK_WORK_DIR;
  const stack = await openLocalStack({
    projectDir: dir,
    connectionString: az.connectionString,
    env,
    // Stage messages stay invisible while a long load runs; the local host handles one at a time.
    host: { processingTimeoutSeconds: 3600 },
  });
  const baseline = new Baseline(join(dir, 'baseline'), sourceFile, duck, TRACKED);
  return { label, pipeline, root, dir, sourceFile, stack, baseline, round: 0, clock: T0 };
}

async function closeDimension(d: Dimension, keep: boolean): Promise<void> {
  await d.stack.close();
  if (!keep) rmSync(d.dir, { recursive: true, force: true });
}

function sameFigures(a: WarehouseFigures, b: WarehouseFigures): boolean {
  return a.rows === b.rows && a.current === b.current && a.hashSum === b.hashSum;
}

/**
 * Flushes the page cache's dirty pages to disk before a timed part. The source change round
 * and the part before (the pipeline's files, Azurite's extents, the warehouse) write hundreds
 * of MB; if the kernel were still writing them back, the part timed next would pay for it, and
 * the pipeline runs right after the change round. A guard, logged with its duration: in the
 * runs so far each flush took 0.0–0.1 s, so writeback was not what moved the figures between
 * runs. Returns the seconds it took (not counted in either part).
 */
function flushDisk(): number {
  const t = performance.now();
  execFileSync('sync');
  return (performance.now() - t) / 1000;
}

/** One measured load: the pipeline run, then the baseline doing the same work, then a comparison. */
async function measure(
  id: ScenarioId,
  title: string,
  d: Dimension,
  dimensionRows: number,
  az: AzuriteHandle,
  duck: DuckSettings,
): Promise<ScenarioResult & { checks: { pipeline: WarehouseFigures; baseline: WarehouseFigures }; profile?: string[] }> {
  d.clock += 3600_000;
  const flushedBefore = flushDisk();
  takeProfile();
  const monitor = new PeakMonitor(az.process?.pid);
  monitor.start();
  const selfCpu = new CpuMeter('self');
  const azCpu = new CpuMeter(az.process?.pid);
  const t = performance.now();
  const run = await runOnce(d.stack, { pipeline: d.pipeline }, 4 * 3600_000);
  const seconds = (performance.now() - t) / 1000;
  const peak = monitor.stop();
  const cpuSeconds = selfCpu.stop();
  const azuriteCpuSeconds = azCpu.stop();
  const bytesWritten = await stageBytes(d.stack, d.pipeline, run.runId);
  if (run.status !== 'succeeded') {
    throw new Error(`scenario ${id}: the pipeline run ${run.runId} ended ${run.status}: ${run.error ?? run.validations.filter((v) => !v.passed).map((v) => v.check).join(', ')}`);
  }
  log(`${id}: tidemark ${seconds.toFixed(1)} s (${JSON.stringify(run.timings)}), peak RSS ${Math.round(peak.selfBytes / 2 ** 20)} MiB`);
  const profile = takeProfile();
  // The working folder is a temp path of this machine: it is replaced, never written out.
  const pipelineProfile = profile.length ? redactPaths(summarizeProfile(profile), d.root) : undefined;
  if (pipelineProfile) log(`${id}: where the pipeline's time went\n${pipelineProfile}`);

  const flushedBetween = flushDisk();
  log(`${id}: disk flushed before the pipeline in ${flushedBefore.toFixed(1)} s, before the baseline in ${flushedBetween.toFixed(1)} s (not timed)`);
  const bm = new PeakMonitor(undefined);
  bm.start();
  const baseCpu = new CpuMeter('self');
  const base = await d.baseline.load(new Date().toISOString());
  const bpeak = bm.stop();
  const baseCpuSeconds = baseCpu.stop();
  log(`${id}: baseline ${base.seconds.toFixed(1)} s (${JSON.stringify(base.steps)})`);
  const bprofile = takeProfile();
  if (bprofile.length) log(`${id}: where the baseline's time went\n${redactPaths(summarizeProfile(bprofile, 8), d.root)}`);

  const pipelineFigures = await warehouseFigures(join(d.dir, 'warehouse.duckdb'), 'dw.dim_account', duck);
  const baselineFigures = await warehouseFigures(d.baseline.warehouseFile, 'dim_account', duck);
  if (!sameFigures(pipelineFigures, baselineFigures)) {
    throw new Error(`scenario ${id}: the pipeline and the baseline warehouses differ: ${JSON.stringify({ pipelineFigures, baselineFigures })}`);
  }
  const steps: Record<string, number> = {};
  for (const [k, v] of Object.entries(run.timings)) if (typeof v === 'number') steps[k] = v / 1000;
  return {
    id,
    title,
    dimensionRows,
    workRows: run.counts.extracted,
    pipeline: {
      seconds,
      peakRssBytes: peak.selfBytes,
      azuritePeakRssBytes: peak.childBytes,
      cpuSeconds,
      azuriteCpuSeconds,
      bytesWritten,
      steps,
      counts: { ...run.counts },
      runId: run.runId,
    },
    baseline: { seconds: base.seconds, peakRssBytes: bpeak.selfBytes, steps: base.steps, cpuSeconds: baseCpuSeconds, bytesWritten: base.bytesWritten },
    checks: { pipeline: pipelineFigures, baseline: baselineFigures },
    ...(pipelineProfile ? { profile: pipelineProfile.split('\n') } : {}),
  };
}

/** What the run left in storage, per stage: its raw extract, its changes, its snapshot layers. */
async function stageBytes(stack: LocalStack, pipeline: string, runId: string): Promise<Record<string, number>> {
  const sum = async (container: string, prefix: string) => {
    let n = 0;
    for await (const b of stack.ctx.blobs.list(container, prefix)) n += b.size;
    return n;
  };
  return {
    raw: await sum(CONTAINERS.raw, layout.rawPrefix(pipeline, runId)),
    changes: await sum(CONTAINERS.changes, `${pipeline}/${runId}/`),
    snapshot: await sum(CONTAINERS.state, `${layout.snapshotPrefix(pipeline)}${runId}.`),
  };
}

async function changeRound(d: Dimension, changes: number, duck: DuckSettings): Promise<ChangeMix> {
  d.round++;
  const at = new Date(d.clock + 1800_000).toISOString();
  const applied = await applyChanges(d.sourceFile, d.round, changeMix(changes), at, duck);
  log(`${d.label}: round ${d.round} changed the source: ${JSON.stringify(applied)}`);
  return applied;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scale: { type: 'string', default: '1' },
      'with-d': { type: 'boolean', default: false },
      only: { type: 'string' },
      seed: { type: 'string', default: '42' },
      keep: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      out: { type: 'string', default: join('bench', 'results') },
    },
  });
  const scale = Number(values.scale);
  if (!(scale > 0 && scale <= 10)) throw new Error(`--scale must be a number in (0, 10], got ${values.scale}`);
  const seed = Number(values.seed);
  if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, got ${values.seed}`);
  const wanted = new Set((values.only ?? `A,B,C,E${values['with-d'] ? ',D' : ''}`).split(',').map((x) => x.trim().toUpperCase()));
  for (const w of wanted) if (!['A', 'B', 'C', 'D', 'E'].includes(w)) throw new Error(`--only takes scenario letters A, B, C, D, E; got ${w}`);
  const size = (n: number) => Math.max(1000, Math.round(n * scale));

  const startedAt = new Date();
  const root = mkdtempSync(join(tmpdir(), 'tidemark-bench-'));
  if (values.profile) installProfiler((text) => redactPaths(text, root));
  const duck: DuckSettings = { memoryLimit: MEMORY_LIMIT, threads: THREADS, tempDir: join(root, 'spill') };
  log(`scale ${scale}, scenarios ${[...wanted].join(', ')}; working folder under the system temp folder`);
  const az = await startAzurite({ location: join(root, 'azurite'), logFile: join(root, 'azurite.log') });
  const results: Array<Awaited<ReturnType<typeof measure>>> = [];
  let fixedCost: FixedCostResult | undefined;
  try {
    // First, while nothing else has warmed the caches: the cost a user pays on every run.
    if (wanted.has('E')) fixedCost = await measureFixedCost({ root, az, duck, projectYaml: PROJECT, pipelineYaml, seed, repeats: 7, log });
    if (wanted.has('A') || wanted.has('B') || wanted.has('C')) {
      const n = size(FULL.dimension);
      const d = await openDimension(root, 'dim10m', 'accounts', n, seed, duck, az);
      try {
        const a = await measure('A', 'initial load', d, n, az, duck);
        if (wanted.has('A')) results.push(a);
        if (wanted.has('B') || wanted.has('C')) {
          await changeRound(d, size(FULL.b), duck);
          const b = await measure('B', `${fmtRows(size(FULL.b))} changes`, d, n, az, duck);
          results.push(b);
        }
        if (wanted.has('C')) {
          await changeRound(d, size(FULL.c), duck);
          results.push(await measure('C', `${fmtRows(size(FULL.c))} changes`, d, n, az, duck));
        }
      } finally {
        await closeDimension(d, values.keep);
      }
    }
    if (wanted.has('D')) {
      const n = size(FULL.dDimension);
      const d = await openDimension(root, 'dim50m', 'accounts_d', n, seed, duck, az);
      try {
        const load = await measure('A', 'initial load (D dimension, not a scenario)', d, n, az, duck);
        log(`D: initial load of ${fmtRows(n)} took ${load.pipeline.seconds.toFixed(1)} s (baseline ${load.baseline.seconds.toFixed(1)} s)`);
        await changeRound(d, size(FULL.b), duck);
        results.push(await measure('D', `${fmtRows(size(FULL.b))} changes`, d, n, az, duck));
      } finally {
        await closeDimension(d, values.keep);
      }
    }
  } finally {
    await az.stop();
    if (!values.keep) rmSync(root, { recursive: true, force: true });
  }

  const targets = evaluateTargets(results, fixedCost);
  const cpu = cpus();
  const doc = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    commit: gitCommit(),
    scale,
    seed,
    machine: {
      cpus: cpu.length,
      cpuModel: cpu[0]?.model ?? 'unknown',
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      platform: `${process.platform} ${process.arch}`,
      node: process.version,
    },
    duckdb: { memoryLimit: MEMORY_LIMIT, threads: THREADS },
    scenarios: results.map((r) => ({
      ...r,
      ratio: r.pipeline.seconds / r.baseline.seconds,
      pipelineRowsPerSecond: r.workRows / r.pipeline.seconds,
      baselineRowsPerSecond: r.workRows / r.baseline.seconds,
    })),
    ...(fixedCost ? { fixedCost } : {}),
    targets,
  };
  mkdirSync(values.out, { recursive: true });
  const json = JSON.stringify(doc, null, 2);
  writeFileSync(join(values.out, resultFileName(startedAt)), json);
  writeFileSync(join(values.out, 'latest.json'), json);
  const md = [results.length ? markdownTable(results) : '', fixedCost ? markdownFixedCost(fixedCost) : '', markdownTargets(targets)].filter(Boolean).join('\n\n') + '\n';
  writeFileSync(join(values.out, 'latest.md'), md);
  process.stdout.write(`\n${md}\n`);
  process.stdout.write(`machine: ${doc.machine.cpus} cores (${doc.machine.cpuModel}), ${doc.machine.memoryGiB} GiB, ${doc.machine.node}; scale ${scale}; commit ${doc.commit ?? '?'}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});

/** Results are committed: no folder of this machine in them, not even the project's scratch path. */
function redactPaths(text: string, root: string): string {
  return text.split(root).join('<bench>').replace(/\/\.tidemark\/work\//g, '/<scratch>/');
}

/**
 * Pure helpers of the benchmark: the result shape, ratios, targets and the printed table.
 * Kept apart from the harness so they are unit-tested (test/unit/bench/report.test.ts).
 */

export type ScenarioId = 'A' | 'B' | 'C' | 'D' | 'E';

export interface Measured {
  /** Wall-clock seconds, end to end. */
  seconds: number;
  /** Peak resident set size of the tidemark (bench) process during the measurement, bytes. */
  peakRssBytes: number;
  /** Per-step seconds (pipeline: the run record's stage timings; baseline: its SQL steps). */
  steps: Record<string, number>;
  /** CPU seconds of the tidemark (bench) process, all threads, over the measurement; null off Linux. */
  cpuSeconds?: number | null;
  /** Bytes the run wrote to storage, per stage (pipeline: raw / changes / snapshot blobs; baseline: its Parquet). */
  bytesWritten?: Record<string, number>;
}

export interface PipelineMeasured extends Measured {
  /** Peak RSS of the Azurite child process during the run, bytes; counted apart. */
  azuritePeakRssBytes: number | null;
  /** CPU seconds of the Azurite child over the run: local storage work Azure would do elsewhere. */
  azuriteCpuSeconds?: number | null;
  counts: Record<string, number>;
  runId: string;
}

export interface ScenarioResult {
  id: ScenarioId;
  title: string;
  /** Rows in the dimension before the scenario's changes. */
  dimensionRows: number;
  /** Rows the scenario processes: the whole table for a load, the changed rows otherwise. */
  workRows: number;
  pipeline: PipelineMeasured;
  baseline: Measured;
}

export interface Target {
  scenario: ScenarioId;
  name: string;
  /** What is compared: `actual <= limit` (or `<` when strict). */
  actual: number;
  limit: number;
  strict: boolean;
  holds: boolean;
  unit: string;
}

export const GB = 1e9;

/** Pipeline seconds over baseline seconds; NaN-free (a zero baseline gives Infinity). */
export function ratio(pipeline: number, baseline: number): number {
  if (baseline <= 0) return pipeline <= 0 ? 1 : Number.POSITIVE_INFINITY;
  return pipeline / baseline;
}

export function rowsPerSecond(rows: number, seconds: number): number {
  return seconds > 0 ? rows / seconds : 0;
}

function target(scenario: ScenarioId, name: string, actual: number, limit: number, unit: string, strict = false): Target {
  return { scenario, name, actual, limit, strict, unit, holds: strict ? actual < limit : actual <= limit };
}

/**
 * The targets of issue #8, evaluated on what ran (a scenario that did not run has no target):
 * A ≤ 1.5× baseline and peak RSS ≤ 1.5 GB; B ≤ 2× baseline and < 10 s; C ≤ 10× B; D ≤ 3× B;
 * E (the fixed cost of a no-change CLI run, issue #19) ≤ 1 s, its median over the repeats.
 */
export function evaluateTargets(results: readonly ScenarioResult[], fixedCost?: { medianSeconds: number }): Target[] {
  const by = new Map(results.map((r) => [r.id, r]));
  const out: Target[] = [];
  const a = by.get('A');
  if (a) {
    out.push(target('A', 'A / baseline', ratio(a.pipeline.seconds, a.baseline.seconds), 1.5, '×'));
    out.push(target('A', 'A peak RSS', a.pipeline.peakRssBytes / GB, 1.5, 'GB'));
  }
  const b = by.get('B');
  if (b) {
    out.push(target('B', 'B / baseline', ratio(b.pipeline.seconds, b.baseline.seconds), 2, '×'));
    out.push(target('B', 'B end to end', b.pipeline.seconds, 10, 's', true));
  }
  const c = by.get('C');
  if (c && b) out.push(target('C', 'C / B', ratio(c.pipeline.seconds, b.pipeline.seconds), 10, '×'));
  const d = by.get('D');
  if (d && b) out.push(target('D', 'D / B', ratio(d.pipeline.seconds, b.pipeline.seconds), 3, '×'));
  if (fixedCost) out.push(target('E', 'E no-change CLI run', fixedCost.medianSeconds, 1, 's'));
  return out;
}

const STAGES = ['extract', 'transform', 'merge', 'validate'] as const;

function fmtNum(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '∞';
}

export function fmtRows(n: number): string {
  if (n >= 1e6) return `${fmtNum(n / 1e6, n % 1e6 === 0 ? 0 : 2)} M`;
  if (n >= 1e3) return `${fmtNum(n / 1e3, n % 1e3 === 0 ? 0 : 1)} k`;
  return String(n);
}

function fmtMiB(bytes: number | null): string {
  return bytes === null ? '–' : `${Math.round(bytes / 2 ** 20)}`;
}

function fmtCpu(s: number | null | undefined): string {
  return s === null || s === undefined ? '–' : fmtNum(s);
}

function fmtMB(bytes: number): string {
  return fmtNum(bytes / 1e6);
}

/** The scenario table as Markdown (also what the terminal shows): one row per scenario. */
export function markdownTable(results: readonly ScenarioResult[]): string {
  const head = [
    'scenario',
    'dimension',
    'rows',
    'tidemark s',
    'baseline s',
    'ratio',
    'tidemark rows/s',
    'baseline rows/s',
    ...STAGES.map((s) => `${s} s`),
    'peak RSS MiB',
    'baseline RSS MiB',
    'Azurite RSS MiB',
    'tidemark CPU s',
    'Azurite CPU s',
    'written MB (raw/changes/snapshot)',
    'baseline written MB',
  ];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  for (const r of results) {
    const cells = [
      `${r.id}. ${r.title}`,
      fmtRows(r.dimensionRows),
      fmtRows(r.workRows),
      fmtNum(r.pipeline.seconds),
      fmtNum(r.baseline.seconds),
      `${fmtNum(ratio(r.pipeline.seconds, r.baseline.seconds), 2)}×`,
      fmtRows(Math.round(rowsPerSecond(r.workRows, r.pipeline.seconds))),
      fmtRows(Math.round(rowsPerSecond(r.workRows, r.baseline.seconds))),
      ...STAGES.map((s) => (r.pipeline.steps[s] === undefined ? '–' : fmtNum(r.pipeline.steps[s]!))),
      fmtMiB(r.pipeline.peakRssBytes),
      fmtMiB(r.baseline.peakRssBytes),
      fmtMiB(r.pipeline.azuritePeakRssBytes),
      fmtCpu(r.pipeline.cpuSeconds),
      fmtCpu(r.pipeline.azuriteCpuSeconds),
      r.pipeline.bytesWritten ? ['raw', 'changes', 'snapshot'].map((k) => fmtMB(r.pipeline.bytesWritten![k] ?? 0)).join('/') : '–',
      r.baseline.bytesWritten ? fmtMB(Object.values(r.baseline.bytesWritten).reduce((a, b) => a + b, 0)) : '–',
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

export function markdownTargets(targets: readonly Target[]): string {
  const lines = ['| target | actual | limit | holds |', '|---|---:|---:|---|'];
  for (const t of targets) {
    const unit = t.unit === '×' ? '×' : ` ${t.unit}`;
    lines.push(`| ${t.name} | ${fmtNum(t.actual, 2)}${unit} | ${t.strict ? '< ' : '≤ '}${fmtNum(t.limit, 1)}${unit} | ${t.holds ? 'yes' : '**no**'} |`);
  }
  return lines.join('\n');
}

/** File name of a results file: sortable, no characters a file system refuses. */
export function resultFileName(startedAt: Date): string {
  return `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`;
}

/** Scenario E as one line of Markdown: the median, the spread, and the floor node itself costs. */
export function markdownFixedCost(e: {
  rows: number;
  runs: readonly number[];
  medianSeconds: number;
  minSeconds: number;
  nodeStartSeconds: number;
  medianCpuSeconds?: number;
  medianAzuriteCpuSeconds?: number;
}): string {
  const cpu = e.medianCpuSeconds === undefined ? '' : `; CPU of the tidemark process median ${fmtNum(e.medianCpuSeconds, 2)} s`;
  const az = e.medianAzuriteCpuSeconds === undefined ? '' : `, of Azurite ${fmtNum(e.medianAzuriteCpuSeconds, 2)} s per run`;
  return `E. no-change \`tidemark run\` of a ${fmtRows(e.rows)}-row pipeline through the CLI: median ${fmtNum(e.medianSeconds, 2)} s over ${e.runs.length} runs (min ${fmtNum(e.minSeconds, 2)} s; \`node -e ""\` alone ${fmtNum(e.nodeStartSeconds, 2)} s${cpu}${az})`;
}

import { describe, expect, it } from 'vitest';
import { parseProcStatCpu, parseProcStatusField } from '../../../bench/memory.js';
import { changeMix } from '../../../bench/data.js';
import { median } from '../../../bench/fixed-cost.js';
import { GB, evaluateTargets, fmtRows, markdownFixedCost, markdownTable, markdownTargets, ratio, resultFileName, rowsPerSecond, type ScenarioResult } from '../../../bench/report.js';

function scenario(id: ScenarioResult['id'], pipelineS: number, baselineS: number, rss = 0.5 * GB): ScenarioResult {
  return {
    id,
    title: `scenario ${id}`,
    dimensionRows: 10_000_000,
    workRows: id === 'A' ? 10_000_000 : 100_000,
    pipeline: { seconds: pipelineS, peakRssBytes: rss, azuritePeakRssBytes: 200 * 2 ** 20, steps: { extract: 1, transform: 2.5 }, counts: {}, runId: 'r' },
    baseline: { seconds: baselineS, peakRssBytes: rss / 2, steps: {} },
  };
}

describe('bench report helpers', () => {
  it('computes ratios and rows per second without NaN', () => {
    expect(ratio(3, 2)).toBe(1.5);
    expect(ratio(1, 0)).toBe(Number.POSITIVE_INFINITY);
    expect(ratio(0, 0)).toBe(1);
    expect(rowsPerSecond(1000, 4)).toBe(250);
    expect(rowsPerSecond(1000, 0)).toBe(0);
  });

  it('evaluates every target of the issue against what ran, each limit at its edge', () => {
    const t = evaluateTargets([scenario('A', 15, 10, 1.5 * GB), scenario('B', 10, 5), scenario('C', 100.1, 50), scenario('D', 29, 20)]);
    const by = Object.fromEntries(t.map((x) => [x.name, x]));
    expect(by['A / baseline']).toMatchObject({ actual: 1.5, limit: 1.5, holds: true });
    expect(by['A peak RSS']).toMatchObject({ actual: 1.5, holds: true });
    expect(by['B / baseline']).toMatchObject({ actual: 2, holds: true });
    // "under 10 s" is strict: exactly 10 s does not hold.
    expect(by['B end to end']).toMatchObject({ actual: 10, strict: true, holds: false });
    expect(by['C / B']!.holds).toBe(false);
    expect(by['C / B']!.actual).toBeCloseTo(10.01);
    expect(by['D / B']).toMatchObject({ actual: 2.9, holds: true });
  });

  it('leaves out targets whose scenarios did not run (C and D need B)', () => {
    expect(evaluateTargets([scenario('A', 1, 1), scenario('C', 1, 1)]).map((t) => t.name)).toEqual(['A / baseline', 'A peak RSS']);
  });

  it('prints one table row per scenario with the ratio, stage times and RSS in MiB', () => {
    const md = markdownTable([scenario('A', 15, 10, 2 ** 30)]);
    const lines = md.split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe('| A. scenario A | 10 M | 10 M | 15.0 | 10.0 | 1.50× | 666.7 k | 1 M | 1.0 | 2.5 | – | – | 1024 | 512 | 200 | – | – | – | – |');
    const measured = scenario('A', 15, 10, 2 ** 30);
    measured.pipeline = { ...measured.pipeline, cpuSeconds: 21.26, azuriteCpuSeconds: 3.04, bytesWritten: { raw: 512e6, changes: 640e6, snapshot: 96e6 } };
    measured.baseline = { ...measured.baseline, bytesWritten: { raw: 505e6 } };
    expect(markdownTable([measured]).split('\n')[2]).toMatch(/\| 21\.3 \| 3\.0 \| 512\.0\/640\.0\/96\.0 \| 505\.0 \|$/);
    expect(markdownTargets(evaluateTargets([scenario('A', 30, 10)]))).toContain('| A / baseline | 3.00× | ≤ 1.5× | **no** |');
  });

  it('judges scenario E by the median of its runs against 1 s, and prints the spread and the node floor', () => {
    const runs = [1.4, 0.8, 0.95, 2.5, 0.9];
    expect(median(runs)).toBe(0.95);
    expect(median([1, 2])).toBe(1.5);
    const [e] = evaluateTargets([], { medianSeconds: median(runs) });
    expect(e).toMatchObject({ scenario: 'E', actual: 0.95, limit: 1, holds: true });
    expect(evaluateTargets([], { medianSeconds: 1.01 })[0]!.holds).toBe(false);
    expect(markdownFixedCost({ rows: 1000, runs, medianSeconds: 0.95, minSeconds: 0.8, nodeStartSeconds: 0.05 })).toBe(
      'E. no-change `tidemark run` of a 1 k-row pipeline through the CLI: median 0.95 s over 5 runs (min 0.80 s; `node -e ""` alone 0.05 s)',
    );
    expect(markdownFixedCost({ rows: 1000, runs, medianSeconds: 0.95, minSeconds: 0.8, nodeStartSeconds: 0.05, medianCpuSeconds: 0.61, medianAzuriteCpuSeconds: 0.2 })).toBe(
      'E. no-change `tidemark run` of a 1 k-row pipeline through the CLI: median 0.95 s over 5 runs (min 0.80 s; `node -e ""` alone 0.05 s; CPU of the tidemark process median 0.61 s, of Azurite 0.20 s per run)',
    );
  });

  it('formats row counts and result file names', () => {
    expect(fmtRows(10_000_000)).toBe('10 M');
    expect(fmtRows(1_500_000)).toBe('1.50 M');
    expect(fmtRows(100_000)).toBe('100 k');
    expect(fmtRows(999)).toBe('999');
    expect(resultFileName(new Date('2026-11-24T21:05:03.123Z'))).toBe('2026-11-24T21-05-03-123Z.json');
  });

  it('reads user + system CPU from /proc stat text, a command name with spaces and parentheses included', () => {
    const stat = '4242 (node (azurite) x) S 1 4242 4242 0 -1 4194304 1200 0 0 0 1234 566 0 0 20 0 11 0 100 0 0';
    expect(parseProcStatCpu(stat)).toBeCloseTo(18.0, 6);
    expect(parseProcStatCpu('1 (x) S')).toBeNull();
  });

  it('reads VmHWM / VmRSS from /proc status text', () => {
    const text = 'Name:\tnode\nVmHWM:\t  123456 kB\nVmRSS:\t   2048 kB\n';
    expect(parseProcStatusField(text, 'VmHWM')).toBe(123456 * 1024);
    expect(parseProcStatusField(text, 'VmRSS')).toBe(2048 * 1024);
    expect(parseProcStatusField(text, 'VmSwap')).toBeNull();
  });

  it('splits a change count into disjoint kinds that add up', () => {
    expect(changeMix(100_000)).toEqual({ updated: 60_000, touched: 20_000, deleted: 0, inserted: 20_000 });
    const withDeletes = changeMix(1001, true);
    expect(withDeletes.updated + withDeletes.touched + withDeletes.deleted + withDeletes.inserted).toBe(1001);
    expect(withDeletes.deleted).toBe(100);
  });
});

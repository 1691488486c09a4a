import type { ExtractRead, ExtractWindow, ReadKind } from '../storage/manifest.js';
import type { ExtractWarning } from './source.js';
import type { RunMode } from '../state/runs.js';

export type DetectionMode = ExtractWindow['mode'];

/**
 * Lower bound of an incremental read: the saved watermark moved back by `lag`, so rows that
 * were committed late (clock skew, long transactions) are read again. Dedupe and the row hash
 * make the overlap harmless: a re-read unchanged row is classified `unchanged`.
 */
export function lowerBound(saved: string | null, lagMs: number): string | null {
  if (saved === null) return null;
  if (lagMs === 0) return saved;
  const t = Date.parse(saved);
  if (Number.isNaN(t)) throw new Error(`saved watermark ${JSON.stringify(saved)} is not a timestamp`);
  // Date keeps milliseconds; flooring to them only widens the window, never narrows it.
  return new Date(t - lagMs).toISOString();
}

export interface WindowInput {
  mode: DetectionMode;
  column?: string;
  lagMs: number;
  saved: string | null;
  runMode: RunMode;
  backfill?: { from?: string; to?: string };
}

/** The part of the window known before touching the source. `to` is captured by the source. */
export function planWindow(input: WindowInput): { from: string | null; fullRead: boolean; to?: string } {
  if (input.mode === 'full' || input.runMode === 'full') return { from: null, fullRead: true };
  if (input.runMode === 'backfill') {
    return { from: input.backfill?.from ?? null, fullRead: false, ...(input.backfill?.to ? { to: input.backfill.to } : {}) };
  }
  return { from: lowerBound(input.saved, input.lagMs), fullRead: false };
}

/**
 * Completes the window once the source captured its upper bound. The watermark to commit is
 * the captured upper bound; with nothing new it stays where it was. A backfill never moves it:
 * it re-reads history without changing where incremental runs continue.
 */
export function completeWindow(input: WindowInput, captured: string | null): ExtractWindow {
  const plan = planWindow(input);
  const base = { mode: input.mode, ...(input.column ? { column: input.column } : {}) };
  if (input.mode === 'full') return { ...base, from: null, to: null, next: null };
  let to = captured;
  if (plan.to !== undefined && to !== null && Date.parse(plan.to) < Date.parse(to)) to = plan.to;
  const next = input.runMode === 'backfill' ? input.saved : newer(input.saved, captured);
  return { ...base, from: plan.from, to, next };
}

function newer(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return Date.parse(b) >= Date.parse(a) ? b : a;
}

/** The read record of a window read (full, window or empty), as the source performed it. */
export function readRecord(kind: ReadKind, window: ExtractWindow, nullChangeColumnRows: number | null): Omit<ExtractRead, 'rows'> {
  return kind === 'full'
    ? { kind, from: null, to: window.to, nullChangeColumnRows }
    : { kind, from: window.from, to: window.to, nullChangeColumnRows };
}

/**
 * The NULL change-column rule: a row whose change column is NULL has no place in a window, so
 * incremental reads never see it; full reads (the first load, a full run) read it like any row.
 * Such rows are counted on every read and surfaced, since their later edits stay invisible
 * until the column is filled or a full run re-reads them.
 */
export function nullChangeColumnWarning(pipeline: string, column: string, kind: ReadKind, n: number | null): ExtractWarning[] {
  if (n === null || n === 0) return [];
  const what =
    kind === 'full'
      ? `${n} row(s) with NULL ${column} were read by this full read, but incremental runs will not see their changes`
      : `${n} source row(s) with NULL ${column} were not read (a window read only sees rows with a ${column})`;
  return [{ event: 'NullChangeColumn', message: `${pipeline}: ${what}; fill ${column} in the source, or start a full run (tidemark run ${pipeline} --full) to re-read them` }];
}

import { parseDuration } from '../config/duration.js';
import { TerminalError } from '../errors.js';

export interface BackfillWindow {
  from: string;
  to: string;
}

/** More windows than this is almost certainly a typo in windowSize (1m over a year). */
export const MAX_BACKFILL_WINDOWS = 1000;

/**
 * Splits [from, to) into consecutive windows of `windowSize` (the last one shorter). Each
 * window becomes its own run, applied in order (one run per pipeline in flight): a long
 * backfill then commits in small steps, and a failure stops at the window that failed.
 */
export function splitBackfill(from: string, to: string, windowSize: string): BackfillWindow[] {
  const start = Date.parse(from);
  const end = Date.parse(to);
  if (Number.isNaN(start) || Number.isNaN(end)) throw new TerminalError(`backfill from/to must be ISO-8601 timestamps, got ${from} / ${to}`);
  if (end <= start) throw new TerminalError(`backfill "to" (${to}) must be after "from" (${from})`);
  const size = parseDuration(windowSize);
  if (size <= 0) throw new TerminalError(`windowSize must be positive, got ${windowSize}`);
  const count = Math.ceil((end - start) / size);
  if (count > MAX_BACKFILL_WINDOWS) {
    throw new TerminalError(`windowSize ${windowSize} splits ${from}..${to} into ${count} windows; at most ${MAX_BACKFILL_WINDOWS}: use a larger windowSize`);
  }
  const out: BackfillWindow[] = [];
  for (let t = start; t < end; t += size) out.push({ from: new Date(t).toISOString(), to: new Date(Math.min(t + size, end)).toISOString() });
  return out;
}

import { TerminalError } from '../errors.js';
import type { ExtractWindow } from '../storage/manifest.js';
import type { WindowInput } from './window.js';

/** Compares two rowversions / LSNs given as `0x…` hex of any length, numerically. */
export function compareHex(a: string, b: string): number {
  const norm = (x: string) => x.replace(/^0x/i, '').toUpperCase().replace(/^0+/, '');
  const x = norm(a);
  const y = norm(b);
  if (x.length !== y.length) return x.length < y.length ? -1 : 1;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Compares Change Tracking versions (BIGINT as decimal text) without going through a JS number. */
export function compareVersion(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export type VersionRead = 'snapshot' | 'changes' | 'nothing';

export interface VersionWindowPlan {
  window: ExtractWindow;
  read: VersionRead;
  /** Set when the saved position fell out of retention: the run re-snapshots instead (SnapshotGap). */
  gap?: string;
}

/**
 * Window of the version-based modes (rowversion, cdc, changeTracking). `upper` is captured
 * before any row is read (MIN_ACTIVE_ROWVERSION(), sys.fn_cdc_get_max_lsn(),
 * CHANGE_TRACKING_CURRENT_VERSION()), so a snapshot taken now and the changes read next time
 * overlap rather than leave a hole; the row hash makes the overlap harmless.
 *
 * `oldestAvailable` is the oldest position the source can still answer from
 * (sys.fn_cdc_get_min_lsn, CHANGE_TRACKING_MIN_VALID_VERSION). A saved position older than it
 * means the cleanup job removed changes we never read: reading changes would lose them
 * silently, so the run reads a full snapshot (deletes then come from absent keys).
 */
export function planVersionWindow(
  input: WindowInput,
  captured: { upper: string | null; oldestAvailable?: string | null },
  compare: (a: string, b: string) => number,
): VersionWindowPlan {
  const mode = input.mode;
  if (input.runMode === 'backfill') {
    throw new TerminalError(`a backfill re-reads a time range and needs changeDetection.mode: timestamp; this pipeline uses ${mode}. Start a full run instead`);
  }
  const snapshot = (gap?: string): VersionWindowPlan => ({
    window: { mode, from: null, to: captured.upper, next: captured.upper ?? input.saved },
    read: 'snapshot',
    ...(gap ? { gap } : {}),
  });
  const saved = input.saved;
  if (mode === 'full' || input.runMode === 'full' || saved === null) return snapshot();
  const oldest = captured.oldestAvailable;
  if (oldest !== undefined && oldest !== null && compare(saved, oldest) < 0) {
    return snapshot(
      `saved ${mode === 'cdc' ? 'LSN' : 'version'} ${saved} is older than the oldest the source still holds (${oldest}): the cleanup job removed changes that were never read. A full re-snapshot was taken instead; raise the retention or run more often`,
    );
  }
  if (captured.upper === null || compare(captured.upper, saved) <= 0) {
    return { window: { mode, from: saved, to: null, next: saved }, read: 'nothing' };
  }
  return { window: { mode, from: saved, to: captured.upper, next: captured.upper }, read: 'changes' };
}

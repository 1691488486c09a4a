import { randomBytes } from 'node:crypto';

/** `20261124T021500Z-7f3a`: sorts by start time; the suffix keeps two starts in a second apart. */
export function newRunId(now: Date): string {
  const iso = now.toISOString(); // 2026-11-24T02:15:00.000Z
  const stamp = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return `${stamp}-${randomBytes(2).toString('hex')}`;
}

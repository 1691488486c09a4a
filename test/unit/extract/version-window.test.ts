import { describe, expect, it } from 'vitest';
import { compareHex, compareVersion, planVersionWindow } from '../../../shared/extract/version-window.js';
import type { WindowInput } from '../../../shared/extract/window.js';

const input = (mode: WindowInput['mode'], saved: string | null, runMode: WindowInput['runMode'] = 'incremental'): WindowInput => ({ mode, lagMs: 0, saved, runMode });

describe('version windows (rowversion, cdc, changeTracking) and their checkpoints', () => {
  it('compares LSNs / rowversions numerically, whatever the padding', () => {
    expect(compareHex('0x0000000A', '0x09')).toBe(1);
    expect(compareHex('0x00000000000007d1', '0x7D1')).toBe(0);
    expect(compareVersion('10', '9')).toBe(1);
    expect(compareVersion('9223372036854775807', '9223372036854775806')).toBe(1);
  });

  it('first run: snapshot, checkpoint = the upper bound captured before reading', () => {
    expect(planVersionWindow(input('cdc', null), { upper: '0x20', oldestAvailable: '0x01' }, compareHex)).toEqual({
      window: { mode: 'cdc', from: null, to: '0x20', next: '0x20' },
      read: 'snapshot',
    });
  });

  it('incremental: (saved, upper]; nothing new keeps the checkpoint', () => {
    expect(planVersionWindow(input('changeTracking', '41'), { upper: '57', oldestAvailable: '3' }, compareVersion)).toEqual({
      window: { mode: 'changeTracking', from: '41', to: '57', next: '57' },
      read: 'changes',
    });
    expect(planVersionWindow(input('rowversion', '0x0800'), { upper: '0x0800' }, compareHex)).toEqual({
      window: { mode: 'rowversion', from: '0x0800', to: null, next: '0x0800' },
      read: 'nothing',
    });
  });

  it('cleanup gap: saved older than the oldest available → snapshot with a reason, checkpoint to the new upper', () => {
    const r = planVersionWindow(input('cdc', '0x10'), { upper: '0x90', oldestAvailable: '0x40' }, compareHex);
    expect(r.read).toBe('snapshot');
    expect(r.window).toEqual({ mode: 'cdc', from: null, to: '0x90', next: '0x90' });
    expect(r.gap).toMatch(/saved LSN 0x10 is older than the oldest the source still holds \(0x40\)/);
    // At the boundary (saved == oldest) the changes are still there: no gap.
    expect(planVersionWindow(input('cdc', '0x40'), { upper: '0x90', oldestAvailable: '0x40' }, compareHex).read).toBe('changes');
    const ct = planVersionWindow(input('changeTracking', '99'), { upper: '1000', oldestAvailable: '500' }, compareVersion);
    expect(ct.gap).toMatch(/saved version 99/);
  });

  it('a full run re-snapshots even with a valid checkpoint; backfill is refused', () => {
    expect(planVersionWindow(input('cdc', '0x40', 'full'), { upper: '0x90', oldestAvailable: '0x01' }, compareHex).read).toBe('snapshot');
    expect(() => planVersionWindow(input('rowversion', '0x40', 'backfill'), { upper: '0x90' }, compareHex)).toThrow(/needs changeDetection.mode: timestamp/);
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { demoCommand } from '../../../cli/commands/demo.js';
import type { AzuriteHandle } from '../../../shared/local/azurite.js';
import { withAzurite } from '../../support/azurite.js';

// `tidemark demo --source salesforce` on the Salesforce test double (a service that cannot run
// here; shared/local/salesforce-double.ts), with Azurite on ports this test picks.
describe('tidemark demo --source salesforce', () => {
  let az: AzuriteHandle;
  let dir: string;
  const saved = process.env.AzureWebJobsStorage;
  beforeAll(async () => {
    az = await withAzurite();
    process.env.AzureWebJobsStorage = az.connectionString;
    dir = mkdtempSync(join(tmpdir(), 'tm-sf-demo-'));
  });
  afterAll(async () => {
    if (saved === undefined) delete process.env.AzureWebJobsStorage;
    else process.env.AzureWebJobsStorage = saved;
    await az?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads, applies a day of updates and deletes through a throttled answer, and reports it', async () => {
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    try {
      expect(await demoCommand.run(['--source', 'salesforce', '--scale', '0.02', '--json', '--project', dir])).toBe(0);
    } finally {
      vi.restoreAllMocks();
    }
    const r = JSON.parse(out.join('')) as { ok: boolean; runs: Array<{ phase: string; status: string; counts: Record<string, number> }> };
    expect(r.ok).toBe(true);
    expect(r.runs.map((x) => [x.phase, x.status, x.counts.inserted, x.counts.updated, x.counts.deleted])).toEqual([
      ['initial load', 'succeeded', 1000, 0, 0],
      ['after a day', 'succeeded', 0, 10, 1],
    ]);
    await expect(demoCommand.run(['--source', 'oracle', '--project', dir])).rejects.toThrow(/--source must be duckdb or salesforce/);
  }, 120_000);
});

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runCommand } from '../../../cli/commands/run.js';
import { statusCommand } from '../../../cli/commands/status.js';
import { exitCodeFor } from '../../../cli/common.js';
import { isListening } from '../../../shared/local/azurite.js';
import { duckExec, makeProject } from '../../support/project.js';

/**
 * `tidemark run` with nothing started: the CLI starts Azurite itself (default ports, data
 * under the project's .tidemark/), and a second invocation continues from the first one's
 * checkpoint. This file is the only test that uses the default Azurite ports.
 */
describe('tidemark run / status (CLI, Azurite started by tidemark)', () => {
  const saved = { ...process.env };
  let out: string[];
  beforeEach(() => {
    out = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    delete process.env.AzureWebJobsStorage;
  });
  afterEach(() => {
    vi.restoreAllMocks();
    process.env = { ...saved };
  });

  it('runs, prints the --json object, and a second run continues from the checkpoint', async () => {
    const name = `acc_${Date.now().toString(36)}`;
    const dir = makeProject({
      pipelines: {
        [name]: `name: ${name}
source: { connection: SRC, table: accounts, changeDetection: { mode: timestamp, column: modified } }
key: [id]
target: { warehouse: WH, table: dim_account }
`,
      },
    });
    await duckExec(join(dir, 'source.duckdb'), `create table accounts as select range::int as id, 'n' || range as name, TIMESTAMP '2026-01-01' as modified from range(4)`);
    const wasListening = await isListening(10000);

    expect(await runCommand.run([name, '--project', dir, '--json'])).toBe(0);
    const first = JSON.parse(out.join('')) as Record<string, unknown>;
    expect(first).toEqual({
      pipeline: name,
      runId: expect.stringMatching(/^\d{8}T\d{6}Z-[0-9a-f]{4}$/),
      status: 'succeeded',
      counts: { extracted: 4, inserted: 4, updated: 0, deleted: 0, unchanged: 0, stale: 0, quarantined: 0 },
      validations: [{ check: 'row_count', passed: true, expected: 4, actual: 4, detail: 'distinct keys of the full read (after dedupe, less quarantined) vs current target rows' }],
    });
    if (!wasListening) expect(existsSync(join(dir, '.tidemark', 'azurite'))).toBe(true);

    out.length = 0;
    expect(await runCommand.run([name, '--project', dir, '--json'])).toBe(0);
    const second = JSON.parse(out.join('')) as { counts: Record<string, number>; runId: string };
    // Nothing changed: the watermark from the first run excludes every row.
    expect(second.counts).toEqual({ extracted: 0, inserted: 0, updated: 0, deleted: 0, unchanged: 0, stale: 0, quarantined: 0 });

    out.length = 0;
    expect(await statusCommand.run(['--project', dir, '--json'])).toBe(0);
    const status = JSON.parse(out.join('')) as Array<{ pipeline: string; checkpoint: { lastRunId: string; watermark: string }; runs: unknown[] }>;
    expect(status[0]!.pipeline).toBe(name);
    expect(status[0]!.checkpoint.lastRunId).toBe(second.runId);
    expect(status[0]!.checkpoint.watermark).toBe('2026-01-01T00:00:00.000000Z');
    expect(status[0]!.runs).toHaveLength(2);
  });

  it('exits 1 when the run fails and 2 on usage or config errors', async () => {
    const name = `bad_${Date.now().toString(36)}`;
    const dir = makeProject({
      pipelines: { [name]: `name: ${name}\nsource: { connection: SRC, table: missing_table }\nkey: [id]\ntarget: { warehouse: WH, table: t }\n` },
    });
    await duckExec(join(dir, 'source.duckdb'), 'create table other (id int)');
    expect(await runCommand.run([name, '--project', dir, '--json'])).toBe(1);
    const failed = JSON.parse(out.join('')) as { status: string; error: string };
    expect(failed.status).toBe('failed');
    expect(failed.error).toContain('missing_table');

    await expect(runCommand.run(['--project', dir])).rejects.toThrow(/name one pipeline/);
    const err = await runCommand.run(['nope', '--project', dir]).catch((e: unknown) => e);
    expect(exitCodeFor(err)).toBe(2);
    expect(String(err)).toContain('unknown pipeline "nope"');
  });
});

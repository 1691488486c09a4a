import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { devCommand } from '../../cli/commands/dev.js';
import { callLocalServer, readLocalServer } from '../../shared/local/http-server.js';
import type { AzuriteHandle } from '../../shared/local/azurite.js';
import { withAzurite } from '../support/azurite.js';
import { duckExec, makeProject } from '../support/project.js';

describe('tidemark dev: triggers, timers and the HTTP API together', () => {
  let az: AzuriteHandle;
  beforeAll(async () => {
    az = await withAzurite();
  });
  afterAll(async () => az?.stop());

  it('serves the API, drives a run started over HTTP to success, fires timers, and stops on SIGINT with exit 0', async () => {
    const dir = makeProject({
      pipelines: {
        accounts: 'name: accounts\nsource: { connection: SRC, table: crm.accounts }\nkey: [id]\ntarget: { warehouse: WH, table: dw.accounts }\n',
        ticker: 'name: ticker\nschedule: "*/1 * * * * *"\nsource: { connection: SRC, table: crm.accounts }\nkey: [id]\ntarget: { warehouse: WH, table: dw.ticker }\n',
      },
    });
    await duckExec(join(dir, 'source.duckdb'), 'create schema crm', 'create table crm.accounts (id integer)', 'insert into crm.accounts values (1), (2)');
    const saved = { storage: process.env.AzureWebJobsStorage, level: process.env.TIDEMARK_LOG_LEVEL };
    process.env.AzureWebJobsStorage = az.connectionString;
    process.env.TIDEMARK_LOG_LEVEL = 'error';
    let printed = '';
    const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((printed += String(chunk)), true));
    try {
      // Three workers: the ticker's runs and the HTTP-started run share them.
      const exit = devCommand.run(['--project', dir, '--port', '0', '--workers', '3']);
      let base: string | undefined;
      for (let i = 0; i < 200 && !base; i++) {
        base = /http\s+(http:\/\/127\.0\.0\.1:\d+)\/api\/pipelines/.exec(printed)?.[1];
        if (!base) await new Promise((r) => setTimeout(r, 100));
      }
      expect(base, printed).toBeDefined();
      expect(printed).toMatch(/workers\s+3 \(messages handled at once\)/);
      expect(printed).toMatch(/timer\s+ticker\s+\*\/1 \* \* \* \* \*\s+next \d{4}-/);

      let ticker: { runs: Array<{ trigger: string }> } = { runs: [] };
      for (let i = 0; i < 50 && ticker.runs.length === 0; i++) {
        ticker = (await (await fetch(`${base}/api/pipelines/ticker/runs`)).json()) as typeof ticker;
        if (ticker.runs.length === 0) await new Promise((r) => setTimeout(r, 100));
      }
      expect(ticker.runs.length).toBeGreaterThanOrEqual(1);
      expect(ticker.runs.every((r) => r.trigger === 'schedule')).toBe(true);

      // The token is printed nowhere: the user's own tools read it from .tidemark/local-server.json.
      const token = readLocalServer(join(dir, '.tidemark'))?.token;
      expect(token).toMatch(/^[A-Za-z0-9_-]{40,}$/);
      expect(printed).not.toContain(token);
      const post = await callLocalServer(join(dir, '.tidemark'), 'POST', 'pipelines/accounts/runs', { mode: 'full' });
      expect(post.status).toBe(202);
      const { statusUrl } = (await post.json()) as { statusUrl: string };
      let run: { status: string; counts: { inserted: number } } | undefined;
      for (let i = 0; i < 600; i++) {
        run = (await (await fetch(statusUrl)).json()) as typeof run;
        if (run!.status !== 'queued' && run!.status !== 'running') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(run).toMatchObject({ status: 'succeeded', counts: { inserted: 2 } });

      process.emit('SIGINT');
      expect(await exit).toBe(0);
      await expect(fetch(`${base}/api/pipelines`)).rejects.toThrow();
      expect(readLocalServer(join(dir, '.tidemark')), 'local-server.json is removed on stop').toBeUndefined();
    } finally {
      out.mockRestore();
      process.env.AzureWebJobsStorage = saved.storage;
      if (saved.level === undefined) delete process.env.TIDEMARK_LOG_LEVEL;
      else process.env.TIDEMARK_LOG_LEVEL = saved.level;
    }
  });

  it('--workers takes a whole number from 1 to 64, and says so', async () => {
    for (const bad of ['0', '65', '1.5', 'many']) {
      await expect(devCommand.run(['--workers', bad]), bad).rejects.toThrow(/--workers must be a whole number from 1 to 64 \(messages handled at once\), got /);
    }
  });
});

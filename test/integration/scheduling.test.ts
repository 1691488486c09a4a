import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleStartRun } from '../../shared/engine/http-api.js';
import { startScheduledRun } from '../../shared/engine/schedule.js';
import { startRun } from '../../shared/engine/start-run.js';
import type { AzuriteHandle } from '../../shared/local/azurite.js';
import { openLocalStack, type LocalStack } from '../../shared/local/stack.js';
import { startLocalTimers } from '../../shared/local/timers.js';
import { getRun, isTerminalStatus, listRuns } from '../../shared/state/runs.js';
import { createLogger } from '../../shared/telemetry/logger.js';
import { withAzurite } from '../support/azurite.js';
import { duckExec, makeProject } from '../support/project.js';

const full = (name: string, table: string, extra = '') => `name: ${name}
source: { connection: SRC, table: ${table} }
key: [id]
target: { warehouse: WH, table: dw.${name} }
${extra}`;

describe('scheduling on Azurite + DuckDB', () => {
  let az: AzuriteHandle;
  beforeAll(async () => {
    az = await withAzurite();
  });
  afterAll(async () => az?.stop());

  describe('dependsOn (manual clock)', () => {
    let stack: LocalStack;
    const clock = { t: Date.parse('2026-01-01T10:00:00Z') };
    const lines: Array<{ level: string; message: string; props: Record<string, unknown> }> = [];
    beforeAll(async () => {
      const dir = makeProject({
        pipelines: {
          countries: full('countries', 'crm.countries'),
          accounts: full('accounts', 'crm.accounts', 'dependsOn: [countries]\n'),
          orders: full('orders', 'crm.accounts', 'schedule: "0 0 0 * * *"\ndependsOn: [countries]\ndependencyTimeout: 1h\n'),
        },
      });
      await duckExec(
        join(dir, 'source.duckdb'),
        'create schema crm',
        'create table crm.countries (id integer, name varchar)',
        `insert into crm.countries values (1, 'Norway'), (2, 'Peru')`,
        'create table crm.accounts (id integer, country integer)',
        'insert into crm.accounts values (10, 1), (11, 2), (12, 1)',
      );
      stack = await openLocalStack({
        projectDir: dir,
        connectionString: az.connectionString,
        now: () => new Date(clock.t),
        env: { ...process.env, TIDEMARK_DEPENDENCY_POLL_SECONDS: '1' },
        log: createLogger((level, message, props) => void lines.push({ level, message, props })),
      });
    });
    afterAll(async () => stack?.close());

    const drive = (pipeline: string, runId: string, ms = 60_000) =>
      stack.host.runUntil(async () => isTerminalStatus((await getRun(stack.ctx.tables, pipeline, runId)).status), ms);

    it('a run waits on the queue until its dependency succeeded, then runs', async () => {
      const acc = await startRun(stack.ctx, { pipeline: 'accounts', trigger: 'http' });
      expect(acc.dependsSince).toBe('1970-01-01T00:00:00.000Z'); // never loaded: any success counts
      await expect(drive('accounts', acc.runId, 2500)).rejects.toThrow(/timed out/);
      const waiting = await getRun(stack.ctx.tables, 'accounts', acc.runId);
      expect(waiting).toMatchObject({ status: 'queued', waitingFor: ['countries'] });
      expect(lines.some((l) => l.message.startsWith('waiting for countries') && l.props.runId === acc.runId)).toBe(true);

      clock.t += 10_000;
      const ctry = await startRun(stack.ctx, { pipeline: 'countries', trigger: 'schedule' });
      await drive('accounts', acc.runId);
      const c = await getRun(stack.ctx.tables, 'countries', ctry.runId);
      const a = await getRun(stack.ctx.tables, 'accounts', acc.runId);
      expect(c.status).toBe('succeeded');
      expect(a).toMatchObject({ status: 'succeeded', waitingFor: [], counts: { extracted: 3, inserted: 3 } });
    });

    it('a scheduled run belongs to its tick: a success from an earlier window does not count, and the timeout fails it clearly', async () => {
      // Next day, 7 s after the midnight tick: countries last succeeded yesterday.
      clock.t = Date.parse('2026-01-02T00:00:07Z');
      expect(await startScheduledRun(stack.ctx, 'orders', { isPastDue: true })).toBe('started');
      expect(lines.some((l) => l.level === 'warn' && l.message.includes('past due') && l.props.pipeline === 'orders')).toBe(true);
      const [run] = await listRuns(stack.ctx.tables, 'orders', 1);
      expect(run).toMatchObject({ dependsSince: '2026-01-02T00:00:00.000Z', dependsDeadline: '2026-01-02T01:00:07.000Z', trigger: 'schedule' });

      // A second tick while the first run is in flight is a no-op.
      expect(await startScheduledRun(stack.ctx, 'orders', { isPastDue: false })).toBe('skipped');

      await expect(drive('orders', run!.runId, 2500)).rejects.toThrow(/timed out/);
      clock.t += 2 * 3_600_000; // past the deadline
      await drive('orders', run!.runId);
      const failed = await getRun(stack.ctx.tables, 'orders', run!.runId);
      expect(failed.status).toBe('failed');
      expect(failed.error).toMatch(/^extract: dependencies did not succeed in this run's window \(since 2026-01-02T00:00:00.000Z\) within dependencyTimeout 1h: countries \(last run \S+ succeeded at 2026-01-01T10:00:10.000Z\)/);
    });
  });

  describe('backfill windows and local timers (real clock)', () => {
    let stack: LocalStack;
    beforeAll(async () => {
      const dir = makeProject({
        pipelines: {
          events: `name: events
source:
  connection: SRC
  table: app.events
  changeDetection: { mode: timestamp, column: ts }
key: [id]
target: { warehouse: WH, table: dw.events }
`,
          ticker: full('ticker', 'app.events', 'schedule: "*/1 * * * * *"\n'),
        },
      });
      await duckExec(
        join(dir, 'source.duckdb'),
        'create schema app',
        'create table app.events (id integer, ts timestamptz)',
        `insert into app.events values (1, '2026-01-01 01:00:00+00'), (2, '2026-01-01 05:00:00+00'), (3, '2026-01-01 07:00:00+00'),
           (4, '2026-01-01 13:00:00+00'), (5, '2026-01-01 17:00:00+00'), (6, '2026-01-01 20:00:00+00')`,
      );
      stack = await openLocalStack({ projectDir: dir, connectionString: az.connectionString });
    });
    afterAll(async () => stack?.close());

    it('a backfill with windowSize runs one run per window, in order, each reading only its window', async () => {
      const res = await handleStartRun(stack.ctx, {
        pipeline: 'events',
        baseUrl: 'http://127.0.0.1',
        bodyText: JSON.stringify({ mode: 'backfill', from: '2026-01-01T00:00:00Z', to: '2026-01-01T18:00:00Z', windowSize: '6h' }),
      });
      expect(res.status).toBe(202);
      await stack.host.runUntil(async () => {
        const runs = await listRuns(stack.ctx.tables, 'events');
        return runs.length === 3 && runs.every((r) => isTerminalStatus(r.status));
      }, 90_000);
      const runs = (await listRuns(stack.ctx.tables, 'events')).sort((a, b) => (a.backfill!.from! < b.backfill!.from! ? -1 : 1));
      expect(runs.map((r) => [r.status, r.backfill, r.counts.extracted, r.counts.inserted])).toEqual([
        ['succeeded', { from: '2026-01-01T00:00:00.000Z', to: '2026-01-01T06:00:00.000Z' }, 2, 2],
        ['succeeded', { from: '2026-01-01T06:00:00.000Z', to: '2026-01-01T12:00:00.000Z' }, 1, 1],
        ['succeeded', { from: '2026-01-01T12:00:00.000Z', to: '2026-01-01T18:00:00.000Z' }, 2, 2],
      ]);
      expect(runs.map((r) => r.backfillRemaining?.length ?? 0)).toEqual([2, 1, 0]);
      for (let i = 1; i < runs.length; i++) expect(Date.parse(runs[i]!.createdAt)).toBeGreaterThanOrEqual(Date.parse(runs[i - 1]!.finishedAt!));
    });

    it('local timers fire NCRONTAB schedules in UTC through startScheduledRun', async () => {
      const ticks: string[] = [];
      const timers = startLocalTimers(stack.ctx, (p, outcome) => ticks.push(`${p}:${outcome}`));
      try {
        expect(timers.next().map((t) => t.pipeline)).toEqual(['ticker']);
        await new Promise((r) => setTimeout(r, 2600));
      } finally {
        timers.stop();
      }
      expect(ticks[0]).toBe('ticker:started');
      expect(ticks.slice(1).every((t) => t === 'ticker:skipped')).toBe(true); // the first run still holds the lease
      expect((await listRuns(stack.ctx.tables, 'ticker')).map((r) => r.trigger)).toEqual(['schedule']);
    });
  });
});

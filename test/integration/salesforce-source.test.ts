import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectionSchema, pipelineSchema, type PipelineInput } from '../../shared/config/schema.js';
import { TerminalError } from '../../shared/errors.js';
import { SalesforceSource } from '../../shared/extract/salesforce/source.js';
import type { SfConnectionConfig } from '../../shared/extract/salesforce/client.js';
import type { WindowInput } from '../../shared/extract/window.js';
import { duckQuery } from '../support/project.js';
import { SalesforceDouble } from '../support/salesforce-server.js';

// Salesforce cannot run here: these tests speak to test/support/salesforce-server.ts, a test
// double of the documented REST / Bulk API 2.0 endpoints (its header lists them).
const duck = { memoryLimit: '256MB', threads: 1, tempDir: join(tmpdir(), 'tidemark-test-spill') };
const env = { SF_URL: '', SF_ID: 'client-1', SF_SECRET: 'secret-1' };
const conn = connectionSchema.parse({ kind: 'salesforce', instanceUrlSetting: 'SF_URL', clientIdSetting: 'SF_ID', secretSetting: 'SF_SECRET' }) as SfConnectionConfig;
const pipeline = (source: Partial<PipelineInput['source']> = {}) =>
  pipelineSchema.parse({
    name: 'acc',
    source: { connection: 'CRM', object: 'Account', changeDetection: { mode: 'timestamp' }, ...source },
    key: ['Id'],
    target: { warehouse: 'W', table: 'dw.acc' },
  });
const full: WindowInput = { mode: 'timestamp', lagMs: 0, saved: null, runMode: 'full' };
const retry = { attempts: 4, backoff: 'exponential' as const, initialDelayMs: 20 };

describe('SalesforceSource on the Salesforce test double', () => {
  let sf: SalesforceDouble;
  let dir: string;
  beforeAll(async () => {
    sf = await SalesforceDouble.start(1_000_000, { clientId: 'client-1', secret: 'secret-1' });
    env.SF_URL = sf.url;
    dir = mkdtempSync(join(tmpdir(), 'tm-sf-'));
  });
  afterAll(async () => {
    await sf?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('first load of 1 M rows through Bulk API 2.0: gzip pages by Sforce-Locator into bounded parts, memory flat', async () => {
    const src = new SalesforceSource(conn, env, pipeline({ partRows: 250_000 }), duck, { retry, bulkPageRows: 100_000, poll: { firstPollMs: 5, maxPollMs: 20, timeoutMs: 10_000 } });
    // A throttled answer and a dropped connection on the way are retried.
    sf.failNext('limit', /POST .*\/jobs\/query$/);
    sf.failNext('drop', /GET .*\/jobs\/query\/[^/]+$/);
    // The session expires between two result pages: the source logs in again and goes on.
    sf.failNext('expire', /GET .*\/results$/);
    sf.failNext('expire', /GET .*\/results$/);
    const baseline = process.memoryUsage().rss;
    const samples: number[] = [];
    let heapPeak = 0;
    const timer = setInterval(() => {
      const m = process.memoryUsage();
      samples.push(m.rss);
      heapPeak = Math.max(heapPeak, m.heapUsed);
    }, 50);
    const t0 = Date.now();
    const r = await src.extract({ window: full, outDir: join(dir, 'full'), partRows: 250_000, partBytes: '128MB', countSource: true });
    clearInterval(timer);
    const peak = Math.max(baseline, ...samples);
    const half = Math.floor(samples.length / 2);
    const firstHalf = Math.max(...samples.slice(0, half));
    const secondHalf = Math.max(...samples.slice(half));
    const peakMb = Math.round(peak / 2 ** 20);
    console.log(`salesforce 1M bulk first load: ${Date.now() - t0} ms, rss baseline ${Math.round(baseline / 2 ** 20)} MB, peak ${peakMb} MB (first half ${Math.round(firstHalf / 2 ** 20)} MB, second half ${Math.round(secondHalf / 2 ** 20)} MB), JS heap peak ${Math.round(heapPeak / 2 ** 20)} MB, ${r.files.length} parts`);
    expect(r.files).toHaveLength(4);
    expect(r.sourceRowCount).toBe(1_000_000);
    expect(r.window).toMatchObject({ mode: 'timestamp', column: 'SystemModstamp', from: null, to: '2026-01-12T13:46:39.000Z' });
    expect(sf.gzipResponses).toBe(10);
    expect(sf.logins).toBe(3);
    expect(sf.requests.filter((q) => q.path.includes('/results')).map((q) => new URL(q.path, sf.url).searchParams.get('locator'))).toEqual([null, null, null, '100000', '200000', '300000', '400000', '500000', '600000', '700000', '800000', '900000']);
    // Flat: JS never holds a page or a part (the heap stays small while ~120 MB of CSV pass), and
    // the process stays within DuckDB's 256 MB limit (staging, spilling beyond) plus the JS side,
    // the double included.
    expect(heapPeak).toBeLessThan(150 * 2 ** 20);
    expect(peak - baseline).toBeLessThan(450 * 2 ** 20);
    expect(r.schema.map((c) => `${c.name} ${c.type}`)).toEqual([
      'Id VARCHAR', 'IsDeleted BOOLEAN', 'Name VARCHAR', 'AnnualRevenue DECIMAL(18,2)', 'NumberOfEmployees INTEGER', 'IsActive__c BOOLEAN',
      'BillingCity VARCHAR', 'CreatedDate TIMESTAMPTZ', 'LastModifiedDate TIMESTAMPTZ', 'SystemModstamp TIMESTAMPTZ',
    ]);
    const files = `[${r.files.map((f) => `'${f}'`).join(',')}]`;
    const agg = await duckQuery<{ n: bigint; ids: bigint; rev: string; no_emp: bigint; zurich: bigint }>(
      ':memory:',
      `select count(*) n, count(distinct Id) ids, CAST(sum(AnnualRevenue) AS VARCHAR) rev, count(*) filter (where NumberOfEmployees is null) no_emp,
              count(*) filter (where BillingCity = 'Zürich, "Altstadt"') zurich from read_parquet(${files})`,
    );
    expect(agg[0]).toMatchObject({ n: 1_000_000n, ids: 1_000_000n, no_emp: 90_910n, zurich: 333_334n });
    const one = await duckQuery(':memory:', `select Id, Name, CAST(AnnualRevenue AS VARCHAR) rev, IsActive__c, CAST(SystemModstamp AS VARCHAR) ts from read_parquet(${files}) where Name = 'Account 12345'`);
    expect(one).toEqual([{ Id: sf.idOf(12345), Name: 'Account 12345', rev: '12345.45', IsActive__c: false, ts: '2026-01-01 03:25:45+00' }]);
  }, 120_000);

  it('an incremental read through REST queryAll: updates and deletes since the watermark, with lag', async () => {
    const small = await SalesforceDouble.start(5000, { clientId: 'client-1', secret: 'secret-1' });
    try {
      const e = { ...env, SF_URL: small.url };
      small.restPageSize = 300;
      const at = Date.parse('2026-02-01T00:00:00Z');
      small.update([10, 20, 30], at, { Name: 'renamed' });
      small.remove([40, 41], at + 1000);
      const logs: string[] = [];
      const src = new SalesforceSource(conn, e, pipeline({ changeDetection: { mode: 'timestamp', lag: '1m' } }), duck, { retry, log: (level, m) => logs.push(`${level} ${m}`) });
      small.failNext('503', /queryAll/);
      small.apiUsed = 85_000;
      const r = await src.extract({
        window: { mode: 'timestamp', lagMs: 60_000, saved: '2026-01-01T01:00:00.000Z', runMode: 'incremental' },
        outDir: join(dir, 'inc'),
        partRows: 1000,
        partBytes: '128MB',
        countSource: true,
      });
      // Rows 3541..4999 (SystemModstamp after 00:59:00, the watermark minus lag), the 3 updated and the 2 deleted.
      // Live rows up to the bound (row-count validation compares them with the target).
      expect(r.sourceRowCount).toBe(4998);
      expect(r.files.length).toBe(2);
      // The 503 on the first queryAll (the upper-bound capture) was retried.
      expect(small.requests.filter((q) => q.path.includes('ORDER%20BY')).length).toBe(2);
      expect(r.window).toMatchObject({ from: '2026-01-01T00:59:00.000Z', to: '2026-02-01T00:00:01.000Z', next: '2026-02-01T00:00:01.000Z' });
      expect(r.warnings).toBeUndefined();
      expect(logs.filter((l) => l.startsWith('warn')).map((l) => l.replace(/\d+ ms/, 'N ms'))).toEqual([
        'warn Salesforce queryAll failed (attempt 1, HTTP 503), retrying in N ms: Service unavailable',
        expect.stringMatching(/^warn source CRM \(pipeline acc\): Salesforce API usage 850\d\d\/100000 requests \(Sforce-Limit-Info\)$/),
      ]);
      const files = `[${r.files.map((f) => `'${f}'`).join(',')}]`;
      const ops = await duckQuery(':memory:', `select Name, IsDeleted, _tm_source_op op from read_parquet(${files}) where Name = 'renamed' or IsDeleted order by Id`);
      expect(ops).toEqual([
        { Name: 'renamed', IsDeleted: false, op: 'update' },
        { Name: 'renamed', IsDeleted: false, op: 'update' },
        { Name: 'renamed', IsDeleted: false, op: 'update' },
        { Name: 'Account 40', IsDeleted: true, op: 'delete' },
        { Name: 'Account 41', IsDeleted: true, op: 'delete' },
      ]);
      // Paged by nextRecordsUrl, and the window is in the SOQL.
      const paths = small.requests.map((q) => decodeURIComponent(q.path));
      expect(paths.filter((x) => /\/queryAll\/01g/.test(x)).length).toBe(4);
      expect(paths).toContain(
        '/services/data/v62.0/queryAll?q=SELECT Id, IsDeleted, Name, AnnualRevenue, NumberOfEmployees, IsActive__c, BillingCity, CreatedDate, LastModifiedDate, SystemModstamp FROM Account WHERE SystemModstamp > 2026-01-01T00:59:00Z AND SystemModstamp <= 2026-02-01T00:00:01Z',
      );
    } finally {
      await small.stop();
    }
  });

  it('a watermark older than the delete log: SnapshotGap and a full re-read, never a silent loss', async () => {
    const small = await SalesforceDouble.start(3000, { clientId: 'client-1', secret: 'secret-1' });
    try {
      small.remove([5], Date.parse('2026-01-10T00:00:00Z'));
      small.purge(Date.parse('2026-01-20T00:00:00Z'));
      small.update([7], Date.parse('2026-01-25T00:00:00Z'), { Name: 'late' });
      const src = new SalesforceSource(conn, { ...env, SF_URL: small.url }, pipeline(), duck, { retry, poll: { firstPollMs: 5, maxPollMs: 20, timeoutMs: 10_000 } });
      const r = await src.extract({ window: { mode: 'timestamp', lagMs: 0, saved: '2026-01-01T00:30:00.000Z', runMode: 'incremental' }, outDir: join(dir, 'gap'), partRows: 1000, partBytes: '128MB', countSource: true });
      expect(r.warnings?.[0]?.event).toBe('SnapshotGap');
      expect(r.warnings?.[0]?.message).toMatch(/delete log of Account starts at 2026-01-20T00:00:00.000\+0000, after the watermark 2026-01-01T00:30:00.000Z/);
      // from: null makes it a full read for the transform (absent keys retire); no op column.
      expect(r.window).toMatchObject({ from: null, to: '2026-01-25T00:00:00.000Z' });
      expect(r.schema.some((c) => c.name === '_tm_source_op')).toBe(false);
      expect(r.sourceRowCount).toBe(2999);
      expect(small.requests.some((q) => q.path.includes('/jobs/query'))).toBe(true);
    } finally {
      await small.stop();
    }
  });

  it('partitions a first load by CreatedDate ranges (epoch seconds) that together read every row once', async () => {
    const small = await SalesforceDouble.start(4000, { clientId: 'client-1', secret: 'secret-1' });
    try {
      const e = { ...env, SF_URL: small.url };
      const p = pipeline({ partitions: { count: 3, column: 'CreatedDate' } });
      const src = new SalesforceSource(conn, e, p, duck, { retry, poll: { firstPollMs: 5, maxPollMs: 20, timeoutMs: 10_000 } });
      const stats = await src.keyStats({ window: full, column: 'CreatedDate' });
      expect(stats).toMatchObject({ min: String(Date.parse('2026-01-01T00:00:00Z') / 1000), max: String(Date.parse('2026-01-01T01:06:39Z') / 1000), rows: 4000 });
      const { splitKeyRange } = await import('../../shared/extract/partitions.js');
      let total = 0;
      const ids = new Set<string>();
      for (const [i, range] of splitKeyRange('CreatedDate', stats.min!, stats.max!, 3).entries()) {
        const r = await src.extract({ window: full, outDir: join(dir, `part${i}`), partRows: 1000, partBytes: '128MB', countSource: true, range });
        total += r.sourceRowCount!;
        for (const row of await duckQuery<{ Id: string }>(':memory:', `select Id from read_parquet([${r.files.map((f) => `'${f}'`).join(',')}])`)) ids.add(row.Id);
      }
      expect(total).toBe(4000);
      expect(ids.size).toBe(4000);
      await expect(src.keyStats({ window: full, column: 'Id' })).rejects.toThrow(/Salesforce partitions split a datetime field: set source.partitions.column: CreatedDate/);
    } finally {
      await small.stop();
    }
  });

  it('fails with the server message naming the field, without retrying', async () => {
    const sf2 = await SalesforceDouble.start(100, { clientId: 'client-1', secret: 'secret-1' });
    const e2 = { ...env, SF_URL: sf2.url };
    try {
      const src = new SalesforceSource(conn, e2, pipeline({ fields: ['Id', 'Nmae'] }), duck, { retry });
      await expect(src.extract({ window: full, outDir: join(dir, 'bad'), partRows: 1000, partBytes: '1MB', countSource: false })).rejects.toThrow(
        /source.fields: Account has no field Nmae/,
      );
      const soql = new SalesforceSource(conn, e2, pipeline({ object: undefined, soql: 'SELECT Id, Name, Owner.Nmae FROM Account' }), duck, { retry });
      const before = sf2.requests.length;
      const err = await soql.extract({ window: full, outDir: join(dir, 'bad2'), partRows: 1000, partBytes: '1MB', countSource: false }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TerminalError);
      expect((err as Error).message).toMatch(/Salesforce bulk query job create failed: INVALID_FIELD: .*No such column 'Owner.Nmae' on entity 'Account'/s);
      expect(sf2.requests.slice(before).filter((q) => q.path.includes('/jobs/query')).length).toBe(1);
      // Throttling that outlasts the pipeline's attempts is transient (the host retries the run),
      // never terminal.
      sf2.failNext('limit', /describe/, 4);
      const throttled = await new SalesforceSource(conn, e2, pipeline(), duck, { retry }).extract({ window: full, outDir: join(dir, 'bad4'), partRows: 1000, partBytes: '1MB', countSource: false }).catch((e: unknown) => e);
      expect(throttled).not.toBeInstanceOf(TerminalError);
      expect((throttled as Error).message).toMatch(/Salesforce describe Account still failing after 4 attempts: TotalRequests Limit exceeded/);
      const wrong = new SalesforceSource(conn, { ...e2, SF_SECRET: 'nope' }, pipeline(), duck, { retry });
      await expect(wrong.extract({ window: full, outDir: join(dir, 'bad3'), partRows: 1000, partBytes: '1MB', countSource: false })).rejects.toThrow(/login failed: invalid_client: invalid client credentials/);
    } finally {
      await sf2.stop();
    }
  });
});

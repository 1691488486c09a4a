import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AzuriteHandle } from '../../shared/local/azurite.js';
import { openLocalStack, runOnce, type LocalStack, type RunSummary } from '../../shared/local/stack.js';
import { startLocalUi, type LocalUi } from '../../shared/local/ui.js';
import type { UiOverview, UiPipelineDetail, UiRunDetail } from '../../shared/ui/view-model.js';
import { acquireLease, readLease } from '../../shared/state/leases.js';
import { getRun, newRunRecord } from '../../shared/state/runs.js';
import { TABLES } from '../../shared/storage/layout.js';
import { withAzurite } from '../support/azurite.js';
import { duckExec, makeProject } from '../support/project.js';

/** Debian's `chromium` package; .ci/run installs it. Nothing is downloaded by the test. */
const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) {
  console.warn(`run-history browser test skipped: no Chromium at ${CHROMIUM} (install the Debian package: apt-get install -y chromium)`);
}

const ACCOUNTS = `name: accounts
description: CRM accounts as a type 2 dimension
schedule: "0 0 * * * *"
freshness: 2h
source:
  connection: SRC
  table: crm.accounts
  changeDetection: { mode: full }
key: [id]
transform:
  sql: select id, trim(name) as name, lower(email) as email, city from extract
target:
  warehouse: WH
  table: dw.dim_account
validation:
  rowCount: exact
  checksumColumns: [id, email]
`;

// Never run: the page must show it as never succeeded, with no schedule.
const CONTACTS = `name: contacts
source:
  connection: SRC
  table: crm.contacts
key: [id]
target:
  warehouse: WH
  table: dw.dim_contact
`;

// Its source table does not exist: every run fails, so the page shows a failed, late pipeline.
const BROKEN = `name: broken
freshness: 1h
source:
  connection: SRC
  table: crm.missing
key: [id]
target:
  warehouse: WH
  table: dw.dim_missing
`;

// A rule that fails on every run, with holdOnFailure: the pipeline is held after its first run.
const HELD = `name: held
source:
  connection: SRC
  table: crm.accounts
key: [id]
target:
  warehouse: WH
  table: dw.dim_held
validation:
  holdOnFailure: true
  rules: [{ name: never_empty, sql: "select count(*) from {{current}}", expect: 0 }]
`;

async function getJson<T>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as T };
}

describe('the run-history page after two runs', () => {
  let az: AzuriteHandle;
  let stack: LocalStack;
  let ui: LocalUi;
  let dir: string;
  let first: RunSummary;
  let second: RunSummary;
  let broken: RunSummary;
  let held: RunSummary;

  beforeAll(async () => {
    az = await withAzurite();
    dir = makeProject({ pipelines: { accounts: ACCOUNTS, contacts: CONTACTS, broken: BROKEN, held: HELD } });
    const src = join(dir, 'source.duckdb');
    await duckExec(
      src,
      'create schema crm',
      'create table crm.accounts (id integer, name varchar, email varchar, city varchar)',
      `insert into crm.accounts values (1, 'Ann', 'ann@x.com', 'Oslo'), (2, 'Bob', 'bob@x.com', 'Rome'), (3, 'Cy', 'cy@x.com', 'Lima')`,
      'create table crm.contacts (id integer, name varchar)',
    );
    stack = await openLocalStack({ projectDir: dir, connectionString: az.connectionString });
    first = await runOnce(stack, { pipeline: 'accounts' });
    await duckExec(
      src,
      `update crm.accounts set city = 'Bergen' where id = 1`,
      'delete from crm.accounts where id = 3',
      `insert into crm.accounts values (4, 'Dee', 'dee@x.com', 'Kyiv'), (5, 'Eve', 'eve@x.com', 'Pune')`,
    );
    second = await runOnce(stack, { pipeline: 'accounts' });
    broken = await runOnce(stack, { pipeline: 'broken' });
    held = await runOnce(stack, { pipeline: 'held' });
    // Port 0: never the shared 7071 or Azurite's default ports.
    ui = await startLocalUi(stack, { port: 0 });
  });

  afterAll(async () => {
    await ui?.close();
    await stack?.close();
    await az?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the two runs succeeded with the expected counts (the data the page shows)', () => {
    expect(first.status).toBe('succeeded');
    expect(second.status).toBe('succeeded');
    expect(first.counts).toMatchObject({ inserted: 3, updated: 0, deleted: 0, unchanged: 0 });
    expect(second.counts).toMatchObject({ inserted: 2, updated: 1, deleted: 1, unchanged: 1 });
    expect(broken.status).toBe('failed');
    expect(broken.error).toMatch(/missing/);
    expect(held.status).toBe('validation_failed');
  });

  it('serves the page and its JSON data over HTTP, with 400/404 for bad input', async () => {
    const page = await fetch(ui.pageUrl);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'sha256-[A-Za-z0-9+/=]+'/);
    const html = await page.text();
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\/(?!github\.com\/leeoniya)/);

    const overview = await getJson<UiOverview>(`${ui.baseUrl}/api/ui/data`);
    expect(overview.status).toBe(200);
    const byName = new Map(overview.body.pipelines.map((p) => [p.name, p]));
    expect([...byName.keys()].sort()).toEqual(['accounts', 'broken', 'contacts', 'held']);
    const acc = byName.get('accounts')!;
    expect(acc.lastRun).toMatchObject({ runId: second.runId, status: 'succeeded' });
    expect(acc.checkpoint).toMatchObject({ lastRunId: second.runId, watermark: null });
    expect(acc.freshness).toMatchObject({ state: 'fresh', thresholdMs: 7_200_000, thresholdSource: 'config' });
    expect(Date.parse(acc.nextRunAt!) % 3_600_000).toBe(0);
    expect(acc.runCount).toBe(2);
    expect(byName.get('broken')).toMatchObject({
      lastRun: { runId: broken.runId, status: 'failed', error: broken.error },
      freshness: { state: 'never', thresholdMs: 3_600_000 },
      checkpoint: { lastRunId: null },
    });
    const con = byName.get('contacts')!;
    expect(con).toMatchObject({ lastRun: null, nextRunAt: null, runCount: 0, freshness: { state: 'never', ageMs: null } });

    const detail = await getJson<UiPipelineDetail>(`${ui.baseUrl}/api/ui/pipelines/accounts`);
    expect(detail.body.runs.map((r) => [r.runId, r.counts.inserted, r.counts.updated, r.counts.deleted, r.counts.unchanged])).toEqual([
      [first.runId, 3, 0, 0, 0],
      [second.runId, 2, 1, 1, 1],
    ]);
    expect(detail.body.runs[1]!.validations.map((v) => [v.check, v.passed])).toEqual([
      ['checksum', true],
      ['row_count', true],
    ]);
    expect(Object.keys(detail.body.runs[1]!.timings)).toEqual(expect.arrayContaining(['extract', 'transform', 'merge', 'validate']));

    const run = await getJson<UiRunDetail>(`${ui.baseUrl}/api/ui/pipelines/accounts/runs/${first.runId}`);
    expect(run.body.run).toMatchObject({ runId: first.runId, status: 'succeeded', counts: { inserted: 3 } });

    expect((await getJson<{ error: string }>(`${ui.baseUrl}/api/ui/pipelines/nope`)).status).toBe(404);
    const badLimit = await getJson<{ error: string }>(`${ui.baseUrl}/api/ui/pipelines/accounts?limit=0`);
    expect(badLimit.status).toBe(400);
    expect(badLimit.body.error).toMatch(/limit must be a whole number from 1 to 500/);
    expect((await getJson(`${ui.baseUrl}/api/ui/pipelines/accounts/runs/not-a-run`)).status).toBe(400);
    expect((await getJson(`${ui.baseUrl}/api/ui/pipelines/Bad%20Name`)).status).toBe(400);

    // The page's actions: cancel and ack validate their input before touching anything.
    const write = async (path: string, body: string) => {
      const res = await fetch(`${ui.baseUrl}/api/${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-tidemark-token': ui.token }, body });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    expect((await write('pipelines/nope/cancel', '{}')).status).toBe(404);
    expect((await write('pipelines/accounts/cancel', '{"runId":"x"}')).status).toBe(400);
    expect((await write('pipelines/accounts/ack', '{"extra":1}')).status).toBe(400);
    expect((await write('pipelines/accounts/ack', 'not json')).status).toBe(400);
    const stale = await write('pipelines/accounts/cancel', JSON.stringify({ runId: first.runId }));
    expect(stale).toEqual({ status: 409, body: { error: `run ${first.runId} of accounts is no longer in flight` } });
    expect(await write('pipelines/accounts/cancel', '{}')).toEqual({ status: 200, body: { pipeline: 'accounts', kind: 'none' } });
    expect(await write('pipelines/accounts/ack', '{}')).toEqual({ status: 200, body: { pipeline: 'accounts', acknowledged: [] } });
  });

  describe('in a real headless Chromium', () => {
    let browser: BrowserContext;
    let page: Page;
    let profile: string;
    const problems: string[] = [];

    beforeAll(async () => {
      if (!hasChromium) return;
      profile = mkdtempSync(join(tmpdir(), 'tidemark-chromium-'));
      browser = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        viewport: { width: 1480, height: 1000 },
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
      // The page must not reach outside the local server: any other request fails the test.
      await browser.route('**/*', (route) => {
        if (route.request().url().startsWith(ui.baseUrl)) return route.continue();
        problems.push(`external request ${route.request().url()}`);
        return route.abort();
      });
      page = browser.pages()[0] ?? (await browser.newPage());
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
      });
    });

    afterAll(async () => {
      await browser?.close();
      if (profile) rmSync(profile, { recursive: true, force: true });
    });

    it.skipIf(!hasChromium)('shows every pipeline, the charts carry the runs, and a re-run appears', async () => {
      await page.goto(ui.pageUrl);
      const accRow = page.locator('tr[data-pipeline="accounts"]');
      await accRow.waitFor();
      await expect.poll(() => accRow.innerText()).toContain('succeeded');
      // TIDEMARK_UI_SCREENSHOTS=docs refreshes the README's screenshots.
      const shots = process.env.TIDEMARK_UI_SCREENSHOTS;
      if (shots) await page.screenshot({ path: join(shots, 'ui-overview.png'), fullPage: true });
      expect(await accRow.innerText()).toContain(second.runId);
      expect(await accRow.locator('[data-freshness]').getAttribute('data-freshness')).toBe('fresh');
      expect(await accRow.innerText()).toContain('0 0 * * * *');
      expect(await accRow.innerText()).toContain('full extract (no watermark)');
      const conRow = page.locator('tr[data-pipeline="contacts"]');
      expect(await conRow.innerText()).toContain('no runs yet');
      expect(await conRow.locator('[data-freshness]').getAttribute('data-freshness')).toBe('never');
      const brokenRow = page.locator('tr[data-pipeline="broken"]');
      expect(await brokenRow.innerText()).toContain('failed');
      // A threshold and no success: shown in red like a late pipeline.
      expect(await brokenRow.locator('.fresh-stale').count()).toBe(1);
      expect(await accRow.locator('.fresh-stale').count()).toBe(0);
      await brokenRow.getByRole('link', { name: 'broken' }).click();
      await expect.poll(() => page.locator(`#runs tr[data-run="${broken.runId}"]`).getAttribute('data-status')).toBe('failed');
      expect(await page.locator(`#runs tr[data-run="${broken.runId}"] .error-text`).innerText()).toBe(broken.error);
      await page.getByRole('link', { name: '← all pipelines' }).click();
      await accRow.waitFor();

      await accRow.getByRole('link', { name: 'accounts' }).click();
      await page.locator('#chart-rows canvas').waitFor();
      await page.locator('#chart-durations canvas').waitFor();
      const chartData = () =>
        page.evaluate(() => {
          const charts = (window as unknown as { tidemarkCharts: Record<string, { plot: { data: Array<Array<number | null>> }; labels: string[] }> }).tidemarkCharts;
          return {
            rowLabels: charts['chart-rows']!.labels,
            rows: charts['chart-rows']!.plot.data.slice(1),
            stageLabels: charts['chart-durations']!.labels,
            stages: charts['chart-durations']!.plot.data.slice(1),
            x: charts['chart-rows']!.plot.data[0]!,
          };
        });
      const before = await chartData();
      expect(before.rowLabels).toEqual(['inserted', 'updated', 'deleted', 'quarantined', 'unchanged (right axis)']);
      expect(before.rows).toEqual([
        [3, 2],
        [0, 1],
        [0, 1],
        [0, 0],
        [0, 1],
      ]);
      expect(before.stageLabels).toEqual(['extract', 'transform', 'merge', 'checkpoint', 'validate']);
      // Every stage that ran has a duration on the chart (seconds, ≥ 0).
      for (const i of [0, 1, 2, 4]) for (const v of before.stages[i]!) expect(v).toBeGreaterThanOrEqual(0);
      expect(before.x).toHaveLength(2);
      expect(before.x[1]!).toBeGreaterThan(before.x[0]!);
      // The DOM carries the same series for anyone scraping the page.
      expect(JSON.parse((await page.locator('#chart-rows').getAttribute('data-series'))!).slice(1)).toEqual(before.rows);
      expect(await page.locator('#runs tr[data-run]').count()).toBe(2);
      expect(await page.locator(`#runs tr[data-run="${second.runId}"]`).innerText()).toMatch(/2\/2 passed/);

      await page.locator('#rerun').click();
      await page.locator('#rerun-message a').waitFor();
      const newRunId = (await page.locator('#rerun-message a').innerText()).trim();
      expect(newRunId).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{4}$/);
      expect(newRunId > second.runId).toBe(true);
      const newRow = page.locator(`#runs tr[data-run="${newRunId}"]`);
      await newRow.waitFor();
      // The local host loop drives the run; the page refreshes until it is done.
      await expect.poll(() => newRow.getAttribute('data-status'), { timeout: 60_000, interval: 500 }).toBe('succeeded');
      await expect.poll(async () => (await chartData()).x.length, { timeout: 10_000 }).toBe(3);
      const after = await chartData();
      // No source change since the second run: four unchanged rows, nothing else.
      expect(after.rows.map((s) => s[2])).toEqual([0, 0, 0, 0, 4]);
      // Unchanged rows have their own scale: the changes' axis stays sized to the changes (≤ 3).
      const scales = await page.evaluate(() => {
        const plot = (window as unknown as { tidemarkCharts: Record<string, { plot: { scales: Record<string, { max?: number }>; series: Array<{ scale?: string }> } }> }).tidemarkCharts['chart-rows']!.plot;
        return { y: plot.scales.y!.max, unchanged: plot.scales.unchanged!.max, seriesScales: plot.series.slice(1).map((x) => x.scale) };
      });
      expect(scales.seriesScales).toEqual(['y', 'y', 'y', 'y', 'unchanged']);
      expect(scales.y).toBeLessThan(4);
      expect(scales.unchanged).toBeGreaterThanOrEqual(4);

      if (shots) await page.screenshot({ path: join(shots, 'ui.png'), fullPage: true });

      await page.locator(`#runs tr[data-run="${second.runId}"] a`).first().click();
      await page.locator('#validations').waitFor();
      expect(await page.locator('#run-id').innerText()).toBe(second.runId);
      if (shots) await page.screenshot({ path: join(shots, 'ui-run.png'), fullPage: true });
      expect(await page.locator('#validations tr[data-check="row_count"]').innerText()).toMatch(/passed\s+4\s+4/);
      expect(problems).toEqual([]);
    });

    it.skipIf(!hasChromium)('fits 1400 px, shows a hold with its way out, and a stuck run with its owner, age and a cancel that works', async () => {
      await page.setViewportSize({ width: 1400, height: 900 });
      const fits = () => page.evaluate(() => {
        const box = document.querySelector('#runs-box .scroll')!;
        return { scroll: box.scrollWidth, client: box.clientWidth, page: document.documentElement.scrollWidth, view: window.innerWidth };
      });
      for (const name of ['accounts', 'broken']) {
        await page.goto(`${ui.pageUrl}#/pipelines/${name}`);
        await page.locator('#runs tr[data-run]').first().waitFor();
        const w = await fits();
        expect(w.scroll, `${name}: the runs table scrolls sideways at 1400 px`).toBeLessThanOrEqual(w.client);
        expect(w.page).toBeLessThanOrEqual(w.view);
      }

      // Held: the hold is shown with the failed run, Re-run now is disabled, and Acknowledge lifts it.
      await page.goto(`${ui.pageUrl}#/pipelines/held`);
      await page.locator('#hold').waitFor();
      expect(await page.locator('#hold').innerText()).toContain(held.runId);
      expect(await page.locator('#rerun').isDisabled()).toBe(true);
      await page.locator('#ack').click();
      await page.locator('#hold').waitFor({ state: 'detached' });
      await expect.poll(() => page.locator('#rerun').isDisabled()).toBe(false);
      const acked = (await getJson<UiPipelineDetail>(`${ui.baseUrl}/api/ui/pipelines/held`)).body;
      expect(acked.hold).toBeNull();

      // A stuck run: a record left running and a lease that expired 10 minutes ago, owned by a
      // process on another host (nothing drives it: no message is queued for it).
      const runId = '20260101T000000Z-dead';
      const t0 = Date.now() - 20 * 60_000;
      await stack.ctx.tables.insert(TABLES.runs, {
        ...newRunRecord({ pipeline: 'contacts', runId, trigger: 'schedule', mode: 'incremental', now: new Date(t0) }),
        status: 'running',
        stage: 'validate',
      });
      await acquireLease(stack.ctx.tables, {
        pipeline: 'contacts',
        runId,
        now: new Date(t0),
        ttlMs: 10 * 60_000,
        owner: { ownerHost: 'build-agent-7', ownerPid: 4242 },
        isActive: async () => true,
        onStale: async () => undefined,
      });
      await page.goto(`${ui.pageUrl}#/pipelines/contacts`);
      await page.locator('#lease').waitFor();
      const lease = await page.locator('#lease').innerText();
      expect(lease).toContain(runId);
      expect(lease).toMatch(/owner build-agent-7 pid 4242 · for 20 min/);
      expect(lease).toContain('lease expired');
      expect(await page.locator(`#runs tr[data-run="${runId}"] .lease-owner`).innerText()).toMatch(/build-agent-7 pid 4242 · 20 min · lease expired/);

      // The cancel route keeps the local server's rules: no token, a foreign origin, text/plain → 403, nothing ends.
      const post = (headers: Record<string, string>) => fetch(`${ui.baseUrl}/api/pipelines/contacts/cancel`, { method: 'POST', headers, body: JSON.stringify({ runId }) });
      expect((await post({ 'content-type': 'application/json' })).status).toBe(403);
      expect((await post({ 'content-type': 'application/json', 'x-tidemark-token': ui.token, origin: 'http://evil.example' })).status).toBe(403);
      expect((await post({ 'content-type': 'text/plain', 'x-tidemark-token': ui.token })).status).toBe(403);
      expect((await getRun(stack.ctx.tables, 'contacts', runId)).status).toBe('running');

      await page.locator('#cancel').click();
      await page.locator('#lease').waitFor({ state: 'detached' });
      const row = page.locator(`#runs tr[data-run="${runId}"]`);
      await expect.poll(() => row.getAttribute('data-status')).toBe('cancelled');
      expect((await getRun(stack.ctx.tables, 'contacts', runId)).status).toBe('cancelled');
      expect(await readLease(stack.ctx.tables, 'contacts')).toBeUndefined();
      // The cancelled badge has its own style (not the unstyled default grey).
      const styles = await page.evaluate(() => {
        const probe = (cls: string) => {
          const el = document.createElement('span');
          el.className = `badge ${cls}`;
          document.body.append(el);
          const st = getComputedStyle(el);
          const out = `${st.backgroundColor} ${st.borderStyle}`;
          el.remove();
          return out;
        };
        return { cancelled: probe('cancelled'), plain: probe('no-such-status') };
      });
      expect(styles.cancelled).not.toBe(styles.plain);

      // The icon the browser asks for at the root.
      const icon = await fetch(`${ui.baseUrl}/favicon.ico`);
      expect(icon.status).toBe(200);
      expect(icon.headers.get('content-type')).toBe('image/x-icon');
      expect([...new Uint8Array(await icon.arrayBuffer()).slice(0, 4)]).toEqual([0, 0, 1, 0]);
      expect(problems).toEqual([]);
    });
  });
});

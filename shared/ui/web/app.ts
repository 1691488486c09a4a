/**
 * The run-history page. Bundled with uPlot and its CSS into one inline script by
 * shared/ui/build-web.mjs, so that the page needs no other request than its JSON data and
 * works without external network. Data is written with textContent only (never innerHTML),
 * since run errors and validation details come from user SQL and sources.
 */
import uPlot from 'uplot';
import './style.css';
import {
  UI_STAGES,
  type UiOverview,
  type UiPipeline,
  type UiPipelineDetail,
  type UiRun,
  type UiRunDetail,
  type UiStage,
} from '../view-model.js';

const REFRESH_MS = 3000;

/** The page is served at <base>/ui; the data routes live next to it. */
const apiBase = location.pathname.replace(/\/ui\/?$/, '');
/** In Azure the page is opened with ?code=<function key>; every data call carries it on. */
const functionKey = new URLSearchParams(location.search).get('code');
/**
 * Under `tidemark dev` / `tidemark ui` the server puts a per-start token into the page's HTML
 * (shared/local/http-server.ts); writes carry it, so no other site can drive the local server.
 */
const localToken = document.querySelector<HTMLMetaElement>('meta[name="tidemark-token"]')?.content;

interface ChartHandle {
  plot: uPlot;
  labels: string[];
}

/** The live chart objects, exposed so that tests and curious users can read what is drawn. */
const charts: Record<string, ChartHandle> = {};
(window as unknown as { tidemarkCharts: typeof charts }).tidemarkCharts = charts;

async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const headers = new Headers(init.headers);
  if (functionKey) headers.set('x-functions-key', functionKey);
  if (localToken) headers.set('x-tidemark-token', localToken);
  const res = await fetch(`${apiBase}/${path}`, { ...init, headers, cache: 'no-store' });
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    body = { error: text };
  }
  if (!res.ok) {
    const msg = (body as { error?: string }).error ?? res.statusText;
    throw new Error(`${res.status}: ${msg}`);
  }
  return body as T;
}

/* ---------- small DOM helpers ---------- */

type Child = Node | string | null | undefined | false;

function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') el.className = v;
    else el.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(typeof c === 'string' ? document.createTextNode(c) : c);
  return el;
}

function kids(...children: Child[]): Array<Node | string> {
  return children.filter((c): c is Node | string => c !== null && c !== undefined && c !== false);
}

function link(href: string, text: string, attrs: Record<string, string> = {}): HTMLAnchorElement {
  return h('a', { href, ...attrs }, text);
}

function badge(text: string, kind = text): HTMLElement {
  return h('span', { class: `badge ${kind}` }, text);
}

function num(n: number | undefined | null): string {
  return n === undefined || n === null ? '' : n.toLocaleString('en-US');
}

function utc(iso: string | null): string {
  if (!iso) return '—';
  return iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC');
}

function span(ms: number | null): string {
  if (ms === null) return '—';
  const s = Math.round(ms / 1000);
  if (Math.abs(ms) < 1000) return `${Math.round(ms)} ms`;
  if (s < 90) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 90) return `${m} min`;
  const hrs = Math.round(m / 60);
  if (hrs < 48) return `${hrs} h`;
  return `${Math.round(hrs / 24)} d`;
}

function pipelineHref(name: string): string {
  return `#/pipelines/${encodeURIComponent(name)}`;
}

function runHref(name: string, runId: string): string {
  return `#/pipelines/${encodeURIComponent(name)}/runs/${encodeURIComponent(runId)}`;
}

function freshnessCell(p: UiPipeline): HTMLElement {
  const f = p.freshness;
  const age = f.ageMs === null ? 'never succeeded' : `${span(f.ageMs)} ago`;
  const limit = f.thresholdMs === null ? 'no threshold' : `limit ${span(f.thresholdMs)}${f.thresholdSource === 'schedule' ? ' (2× schedule)' : ''}`;
  return h(
    'span',
    { 'data-freshness': f.state, class: f.state === 'stale' || (f.state === 'never' && f.thresholdMs !== null) ? 'fresh-stale' : '' },
    // With a threshold, never having succeeded is as bad as being late.
    badge(f.state, f.state === 'never' && f.thresholdMs !== null ? 'stale' : f.state),
    ' ',
    age,
    h('div', { class: 'muted' }, limit),
  );
}

/** Full-mode pipelines commit no watermark: say so rather than showing an empty cell. */
function watermarkText(p: UiPipeline): string {
  if (p.checkpoint.watermark !== null) return `watermark ${p.checkpoint.watermark}`;
  if (p.checkpoint.lastRunId === null) return 'never committed';
  return p.changeDetection === 'full' ? 'full extract (no watermark)' : 'no watermark';
}

function validationSummary(r: UiRun): HTMLElement {
  if (r.validations.length === 0) return h('span', { class: 'muted' }, '—');
  const failed = r.validations.filter((v) => !v.passed);
  if (failed.length === 0) return h('span', {}, badge(`${r.validations.length}/${r.validations.length} passed`, 'passed'));
  return h(
    'span',
    {},
    badge(`${failed.length} failed`, 'failed'),
    ' ',
    h('span', { class: 'failing' }, failed.map((v) => v.check).join(', ')),
  );
}

/* ---------- views ---------- */

const main = (): HTMLElement => document.getElementById('app')!;
const updatedEl = (): HTMLElement => document.getElementById('updated')!;

function setUpdated(iso: string): void {
  updatedEl().textContent = `data as of ${utc(iso)} · refreshes every ${REFRESH_MS / 1000} s`;
}

function renderOverview(data: UiOverview): void {
  const rows = data.pipelines.map((p) =>
    h(
      'tr',
      { 'data-pipeline': p.name },
      h('td', {}, link(pipelineHref(p.name), p.name), p.description ? h('div', { class: 'muted' }, p.description) : null),
      h('td', {}, p.lastRun ? badge(p.lastRun.status) : h('span', { class: 'muted' }, 'no runs yet'), p.lastRun ? h('div', { class: 'muted mono' }, link(runHref(p.name, p.lastRun.runId), p.lastRun.runId)) : null),
      h('td', {}, freshnessCell(p)),
      h('td', {}, h('span', { class: 'mono' }, watermarkText(p)), h('div', { class: 'muted mono' }, p.checkpoint.lastRunId ? `run ${p.checkpoint.lastRunId}` : '')),
      h('td', {}, p.nextRunAt ? utc(p.nextRunAt) : h('span', { class: 'muted' }, 'not scheduled'), p.schedule ? h('div', { class: 'muted mono' }, p.schedule) : null),
      h('td', { class: 'num' }, num(p.runCount)),
    ),
  );
  main().replaceChildren(
    ...kids(
    h('h1', {}, 'Pipelines'),
    h(
      'table',
      { id: 'pipelines' },
      h('thead', {}, h('tr', {}, ...['pipeline', 'last run', 'freshness', 'checkpoint', 'next run'].map((t) => h('th', {}, t)), h('th', { class: 'num' }, 'runs'))),
      h('tbody', {}, ...rows),
    ),
    data.pipelines.length === 0 ? h('p', { class: 'muted' }, 'No pipelines in this project: add pipelines/<name>.yaml.') : null,
    ),
  );
  setUpdated(data.generatedAt);
}

interface SeriesDef {
  label: string;
  stroke: string;
  /** A series on its own y scale, drawn against the right-hand axis. */
  scale?: string;
}

/**
 * Unchanged rows are usually most of a run (100 000 unchanged next to 40 updated): on a shared
 * axis every change would lie flat on zero. They get their own scale and right-hand axis, dashed.
 */
const UNCHANGED_SCALE = 'unchanged';
const ROW_SERIES: Array<SeriesDef & { key: keyof UiRun['counts'] }> = [
  { key: 'inserted', label: 'inserted', stroke: '#17803d' },
  { key: 'updated', label: 'updated', stroke: '#1f6fd1' },
  { key: 'deleted', label: 'deleted', stroke: '#c4262e' },
  { key: 'quarantined', label: 'quarantined', stroke: '#b26a00' },
  { key: 'unchanged', label: 'unchanged (right axis)', stroke: '#8a94a3', scale: UNCHANGED_SCALE },
];
const STAGE_COLORS: Record<UiStage, string> = {
  extract: '#6f42c1',
  transform: '#1f6fd1',
  merge: '#17803d',
  checkpoint: '#8a94a3',
  validate: '#b26a00',
};

/** uPlot wants columns: x (run start, unix seconds) then one array per series. */
function rowsData(runs: UiRun[]): uPlot.AlignedData {
  return [runs.map((r) => Date.parse(r.createdAt) / 1000), ...ROW_SERIES.map((s) => runs.map((r) => r.counts[s.key]))];
}

function durationData(runs: UiRun[]): uPlot.AlignedData {
  return [runs.map((r) => Date.parse(r.createdAt) / 1000), ...UI_STAGES.map((s) => runs.map((r) => (r.timings[s] === undefined ? null : r.timings[s]! / 1000)))];
}

function drawChart(id: string, title: string, defs: readonly SeriesDef[], data: uPlot.AlignedData, unit: string): HTMLElement {
  const labels = defs.map((d) => d.label);
  const box = h('div', { class: 'chart card', id });
  box.append(h('h3', {}, title));
  // Two columns above 1000 px (see style.css): half the row minus the gap, card padding and border.
  const columns = window.innerWidth > 1000 ? 2 : 1;
  const room = document.getElementById('charts')?.clientWidth || 1200;
  const width = Math.max(300, Math.floor((room - 12 * (columns - 1)) / columns) - 34);
  const fromZero: uPlot.Scale = { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] };
  const own = [...new Set(defs.flatMap((d) => (d.scale ? [d.scale] : [])))];
  const opts: uPlot.Options = {
    width,
    height: 240,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
    legend: { live: false },
    scales: { x: { time: true }, y: fromZero, ...Object.fromEntries(own.map((k) => [k, fromZero])) },
    axes: [{}, { label: unit, size: 60 }, ...own.map((k) => ({ scale: k, side: 1, label: `${k} ${unit}`, size: 60, grid: { show: false } }))],
    series: [
      { label: 'run start (UTC)' },
      ...defs.map((d) => ({
        label: d.label,
        stroke: d.stroke,
        width: 2,
        scale: d.scale ?? 'y',
        ...(d.scale ? { dash: [6, 4] } : {}),
        points: { show: true, size: 7, fill: d.stroke },
      })),
    ],
  };
  const plot = new uPlot(opts, data, box);
  charts[id] = { plot, labels };
  box.dataset.series = JSON.stringify(data);
  return box;
}

function updateChart(id: string, data: uPlot.AlignedData): boolean {
  const c = charts[id];
  const box = document.getElementById(id);
  if (!c || !box || !box.isConnected) return false;
  c.plot.setData(data);
  box.dataset.series = JSON.stringify(data);
  return true;
}

function runsTable(name: string, runs: UiRun[], lease: UiPipelineDetail['lease']): HTMLElement {
  const head = ['run · started', 'trigger', 'status', 'duration'];
  // Short headers (as `tidemark runs` prints them), the full name on hover: the table fits 1400 px.
  const nums = [
    ['extracted', 'read'],
    ['inserted', 'ins'],
    ['updated', 'upd'],
    ['deleted', 'del'],
    ['unchanged', 'same'],
    ['quarantined', 'quar'],
  ] as const;
  return h(
    'table',
    { id: 'runs' },
    h('thead', {}, h('tr', {}, ...head.map((t) => h('th', {}, t)), ...nums.map(([k, t]) => h('th', { class: 'num', title: k }, t)), h('th', {}, 'validation'), h('th', {}, 'error'))),
    h(
      'tbody',
      {},
      ...[...runs].reverse().map((r) =>
        h(
          'tr',
          { 'data-run': r.runId, 'data-status': r.status },
          h('td', { class: 'mono' }, link(runHref(name, r.runId), r.runId), h('div', { class: 'muted' }, utc(r.createdAt))),
          h('td', {}, `${r.trigger} · ${r.mode}`),
          h(
            'td',
            {},
            badge(r.status),
            r.status === 'running' || r.status === 'queued' ? h('div', { class: 'muted' }, r.stage) : null,
            lease?.runId === r.runId ? h('div', { class: `muted lease-owner${lease.expired ? ' fresh-stale' : ''}` }, `${lease.owner} · ${span(lease.ageMs)}${lease.expired ? ' · lease expired' : ''}`) : null,
          ),
          h('td', { class: 'num' }, span(r.durationMs)),
          ...nums.map(([k]) => h('td', { class: 'num', 'data-count': k }, num(r.counts[k]))),
          h('td', {}, validationSummary(r)),
          h('td', { class: 'error-text' }, r.error ?? ''),
        ),
      ),
    ),
  );
}

function summaryGrid(p: UiPipeline): HTMLElement {
  const item = (label: string, value: Child, attrs: Record<string, string> = {}) => h('div', { class: 'card', ...attrs }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, value));
  return h(
    'div',
    { class: 'grid' },
    item('last run', p.lastRun ? badge(p.lastRun.status) : 'no runs yet'),
    item('freshness', freshnessCell(p)),
    item('checkpoint', h('span', { class: 'mono' }, watermarkText(p)), { id: 'checkpoint' }),
    item('last committed run', p.checkpoint.lastRunId ? link(runHref(p.name, p.checkpoint.lastRunId), p.checkpoint.lastRunId, { class: 'mono' }) : 'never'),
    item('next scheduled run', p.nextRunAt ? utc(p.nextRunAt) : 'not scheduled'),
    item('target', h('span', { class: 'mono' }, `${p.target} · ${p.changeDetection}`)),
  );
}

let detailKey = '';

/** A write the page makes (JSON, with the local token): the result or the error goes into `message`. */
function act(button: HTMLButtonElement, message: HTMLElement, busy: string, path: string, body: unknown, done: (r: Record<string, unknown>) => Child[]): void {
  button.disabled = true;
  message.className = 'message';
  message.textContent = busy;
  api<Record<string, unknown>>(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    .then((r) => {
      message.replaceChildren(...kids(...done(r)));
    })
    .catch((err: unknown) => {
      message.className = 'message error';
      message.textContent = (err as Error).message;
    })
    .finally(() => {
      // Enabled again, then the refresh decides (a held pipeline disables Re-run now).
      button.disabled = false;
      return refresh();
    });
}

/** validation.holdOnFailure held the pipeline: say which runs, and offer the way out. */
function holdCard(p: UiPipeline, hold: NonNullable<UiPipelineDetail['hold']>): HTMLElement {
  const message = h('span', { class: 'message', id: 'ack-message' });
  const button = h('button', { id: 'ack', type: 'button' }, 'Acknowledge and allow runs');
  button.addEventListener('click', () =>
    act(button, message, 'acknowledging…', `pipelines/${encodeURIComponent(p.name)}/ack`, {}, (r) => [`acknowledged ${((r.acknowledged as string[] | undefined) ?? []).join(', ') || 'nothing'}; Re-run now is available again`]),
  );
  return h(
    'div',
    { class: 'card notice held', id: 'hold' },
    h('div', {}, badge('held', 'failed'), ' ', h('strong', {}, `${p.name} is held: `), hold.message),
    h('div', { class: 'muted' }, 'Look at the failed runs below first. To undo one instead, roll it back: ', h('span', { class: 'mono' }, `tidemark rollback ${p.name} --to-run <run>`)),
    h('div', { class: 'actions' }, button, ...hold.runIds.map((id) => link(runHref(p.name, id), id, { class: 'mono' })), message),
  );
}

/** The run in flight: who drives it, since when, when its lease lapses, and a way to end it. */
function leaseCard(p: UiPipeline, l: NonNullable<UiPipelineDetail['lease']>): HTMLElement {
  const message = h('span', { class: 'message', id: 'cancel-message' });
  const button = h('button', { id: 'cancel', type: 'button', class: 'danger' }, 'Cancel run');
  button.addEventListener('click', () =>
    act(button, message, 'cancelling…', `pipelines/${encodeURIComponent(p.name)}/cancel`, { runId: l.runId }, (r) => [
      r.kind === 'completed' ? `run ${String(r.runId)} had already committed its merge; it was completed` : r.kind === 'cancelled' ? `run ${String(r.runId)} cancelled; nothing was applied` : 'no run was in flight',
    ]),
  );
  return h(
    'div',
    { class: `card notice${l.expired ? ' held' : ''}`, id: 'lease', 'data-run': l.runId },
    h('div', {}, 'In flight: run ', link(runHref(p.name, l.runId), l.runId, { class: 'mono' }), ` · owner ${l.owner} · for ${span(l.ageMs)}`),
    h('div', { class: 'muted' }, l.expired ? `lease expired at ${utc(l.expiresAt)}: the run is stuck; the next start takes over and fails it` : `lease held until ${utc(l.expiresAt)} (renewed while the run makes progress)`),
    h('div', { class: 'actions' }, button, message),
  );
}

function renderPipeline(d: UiPipelineDetail): void {
  const p = d.pipeline;
  const held = d.hold !== null;
  const key = `pipeline:${p.name}`;
  const quarantined = d.runs.reduce((a, r) => a + r.counts.quarantined, 0);
  const header = h(
    'div',
    { id: 'detail-header' },
    h('p', {}, link('#/', '← all pipelines')),
    h('h1', {}, p.name),
    p.description ? h('p', { class: 'muted' }, p.description) : null,
    summaryGrid(p),
    d.hold ? holdCard(p, d.hold) : null,
    d.lease ? leaseCard(p, d.lease) : null,
  );
  const tableBox = h(
    'div',
    { id: 'runs-box' },
    h('h2', {}, `Runs (newest ${d.runs.length} of ${p.runCount}) · ${num(quarantined)} rows quarantined in these runs`),
    h('div', { class: 'scroll' }, runsTable(p.name, d.runs, d.lease)),
  );
  const heldTitle = held ? 'held: acknowledge the failed validation above first' : '';
  if (detailKey === key && updateChart('chart-rows', rowsData(d.runs)) && updateChart('chart-durations', durationData(d.runs))) {
    document.getElementById('detail-header')!.replaceWith(header);
    document.getElementById('runs-box')!.replaceWith(tableBox);
    const rerun = document.getElementById('rerun') as HTMLButtonElement | null;
    if (rerun) {
      rerun.disabled = held;
      rerun.title = heldTitle;
    }
    setUpdated(d.generatedAt);
    return;
  }
  detailKey = key;
  const message = h('span', { class: 'message', id: 'rerun-message' });
  const button = h('button', { id: 'rerun', type: 'button' }, 'Re-run now');
  button.addEventListener('click', () =>
    act(button, message, 'starting…', `pipelines/${encodeURIComponent(p.name)}/runs`, { mode: 'incremental' }, (r) => [
      'started run ',
      link(runHref(p.name, String(r.runId)), String(r.runId), { class: 'mono' }),
      '; it shows below as it progresses',
    ]),
  );
  // Held: starting would only be refused; the hold card above says why and offers the way out.
  button.disabled = held;
  button.title = heldTitle;
  main().replaceChildren(header, h('div', { class: 'actions' }, button, message), h('h2', {}, 'Runs over time'), h('div', { class: 'charts', id: 'charts' }));
  const chartsBox = document.getElementById('charts')!;
  chartsBox.append(
    drawChart('chart-rows', 'Rows per run (unchanged on the right axis)', ROW_SERIES, rowsData(d.runs), 'rows'),
    drawChart('chart-durations', 'Duration per stage (s)', UI_STAGES.map((s) => ({ label: s, stroke: STAGE_COLORS[s] })), durationData(d.runs), 'seconds'),
  );
  main().append(tableBox);
  setUpdated(d.generatedAt);
}

function renderRun(d: UiRunDetail): void {
  detailKey = '';
  const r = d.run;
  const countRows = (Object.keys(r.counts) as Array<keyof UiRun['counts']>).map((k) => h('tr', {}, h('td', {}, k), h('td', { class: 'num' }, num(r.counts[k]))));
  const stageRows = UI_STAGES.map((s) => h('tr', {}, h('td', {}, s), h('td', { class: 'num' }, r.timings[s] === undefined ? '—' : `${num(r.timings[s])} ms`)));
  const validationRows = r.validations.map((v) =>
    h(
      'tr',
      { 'data-check': v.check },
      h('td', {}, v.check),
      h('td', {}, badge(v.passed ? 'passed' : 'failed')),
      h('td', { class: 'num' }, String(v.expected ?? '—')),
      h('td', { class: 'num' }, String(v.actual ?? '—')),
      h('td', {}, v.detail ?? ''),
    ),
  );
  main().replaceChildren(
    ...kids(
    h('p', {}, link(pipelineHref(d.pipeline), `← ${d.pipeline}`)),
    h('h1', { class: 'mono', id: 'run-id' }, r.runId),
    h(
      'div',
      { class: 'grid' },
      ...[
        ['status', badge(r.status)],
        ['stage', r.stage],
        ['trigger · mode', `${r.trigger} · ${r.mode}`],
        ['started', utc(r.createdAt)],
        ['finished', utc(r.finishedAt)],
        ['duration', span(r.durationMs)],
      ].map(([label, value]) => h('div', { class: 'card' }, h('div', { class: 'label' }, label as string), h('div', { class: 'value' }, value as Child))),
    ),
    r.error ? h('div', { class: 'card error-text', id: 'run-error' }, r.error) : null,
    h('div', { class: 'charts' }, h('div', {}, h('h2', {}, 'Rows'), h('table', {}, h('tbody', {}, ...countRows))), h('div', {}, h('h2', {}, 'Stage timings'), h('table', {}, h('tbody', {}, ...stageRows)))),
    h('h2', {}, 'Validation'),
    r.validations.length === 0
      ? h('p', { class: 'muted' }, 'No validation results for this run (yet).')
      : h('table', { id: 'validations' }, h('thead', {}, h('tr', {}, ...['check', 'result', 'expected', 'actual', 'detail'].map((t) => h('th', {}, t)))), h('tbody', {}, ...validationRows)),
    ),
  );
  setUpdated(d.generatedAt);
}

/* ---------- routing and refresh ---------- */

type Route = { view: 'overview' } | { view: 'pipeline'; name: string } | { view: 'run'; name: string; runId: string };

function route(): Route {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'pipelines' && parts[1] && parts[2] === 'runs' && parts[3]) return { view: 'run', name: parts[1], runId: parts[3] };
  if (parts[0] === 'pipelines' && parts[1]) return { view: 'pipeline', name: parts[1] };
  return { view: 'overview' };
}

let inFlight = false;
let again = false;

async function refresh(): Promise<void> {
  if (inFlight) {
    // A click or navigation during a poll must not be lost: refresh once more afterwards.
    again = true;
    return;
  }
  inFlight = true;
  const r = route();
  try {
    if (r.view === 'overview') {
      detailKey = '';
      renderOverview(await api<UiOverview>('ui/data'));
    } else if (r.view === 'pipeline') {
      renderPipeline(await api<UiPipelineDetail>(`ui/pipelines/${encodeURIComponent(r.name)}`));
    } else {
      renderRun(await api<UiRunDetail>(`ui/pipelines/${encodeURIComponent(r.name)}/runs/${encodeURIComponent(r.runId)}`));
    }
    document.body.dataset.state = 'ready';
  } catch (err) {
    detailKey = '';
    main().replaceChildren(h('p', { class: 'error-text', id: 'load-error' }, `Could not load: ${(err as Error).message}`), h('p', {}, link('#/', '← all pipelines')));
    document.body.dataset.state = 'error';
  } finally {
    inFlight = false;
    if (again) {
      again = false;
      void refresh();
    }
  }
}

window.addEventListener('hashchange', () => {
  detailKey = '';
  void refresh();
});
setInterval(() => {
  if (!document.hidden) void refresh();
}, REFRESH_MS);
void refresh();

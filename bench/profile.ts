import { AzureBlobStore } from '../shared/storage/azure-storage.js';
import { AzureTableStore } from '../shared/state/azure-tables.js';
import { DuckSession } from '../shared/duckdb/session.js';

/**
 * `--profile`: wraps the DuckDB session and the storage clients so every statement and storage
 * call is timed; the bench prints where each scenario's time went. Off by default: the wrapper
 * costs a little and the figures should be those of the plain code.
 */
export interface ProfileEntry {
  what: string;
  ms: number;
}

let entries: ProfileEntry[] = [];

function record(what: string, started: number): void {
  entries.push({ what, ms: performance.now() - started });
}

type AnyFn = (...args: unknown[]) => unknown;

function wrap(proto: object, name: string, label: (args: unknown[]) => string): void {
  const target = proto as Record<string, AnyFn>;
  const orig = target[name];
  if (typeof orig !== 'function') return;
  target[name] = function (this: unknown, ...args: unknown[]) {
    const t = performance.now();
    const res = orig.apply(this, args);
    if (res && typeof (res as Promise<unknown>).then === 'function') {
      return (res as Promise<unknown>).finally(() => record(label(args), t));
    }
    record(label(args), t);
    return res;
  };
}

/**
 * `redact` runs on the whole statement before it is cut to a label: a temp path cut in the
 * middle would no longer match what is to be replaced.
 */
export function installProfiler(redact: (text: string) => string = (t) => t): void {
  const sqlLabel = (args: unknown[]) => `sql: ${redact(String(args[0])).replace(/\s+/g, ' ').slice(0, 110)}`;
  wrap(DuckSession.prototype, 'run', sqlLabel);
  wrap(DuckSession.prototype, 'rows', sqlLabel);
  wrap(DuckSession.prototype, 'close', () => 'duckdb: close');
  const open = DuckSession.open.bind(DuckSession);
  DuckSession.open = async (...args: Parameters<typeof DuckSession.open>) => {
    const t = performance.now();
    try {
      return await open(...args);
    } finally {
      record('duckdb: open', t);
    }
  };
  for (const m of ['uploadFile', 'downloadToFile', 'putText', 'getText', 'exists', 'deletePrefix']) {
    wrap(AzureBlobStore.prototype, m, (a) => `blob ${m} ${String(a[0])}`);
  }
  for (const m of ['get', 'insert', 'replace', 'upsert', 'list', 'delete']) {
    wrap(AzureTableStore.prototype, m, (a) => `table ${m} ${String(a[0])}`);
  }
}

export function takeProfile(): ProfileEntry[] {
  const out = entries;
  entries = [];
  return out;
}

/** Sums by label (statements that ran several times add up), largest first. */
export function summarizeProfile(list: readonly ProfileEntry[], top = 25): string {
  const sums = new Map<string, { ms: number; n: number }>();
  for (const e of list) {
    const s = sums.get(e.what) ?? { ms: 0, n: 0 };
    s.ms += e.ms;
    s.n++;
    sums.set(e.what, s);
  }
  return [...sums.entries()]
    .sort((a, b) => b[1].ms - a[1].ms)
    .slice(0, top)
    .map(([what, s]) => `${(s.ms / 1000).toFixed(2).padStart(8)} s ×${String(s.n).padEnd(3)} ${what}`)
    .join('\n');
}

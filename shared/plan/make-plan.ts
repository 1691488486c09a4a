import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSetting, type ResolvedProject } from '../config/load.js';
import { errorMessage } from '../errors.js';
import { listRuns } from '../state/runs.js';
import type { TableStore } from '../storage/ports.js';
import type { DuckSettings } from '../duckdb/session.js';
import { SalesforceClient } from '../extract/salesforce/client.js';
import type { RetryPolicy } from '../retry.js';
import { defaultIntrospector } from './introspect/factory.js';
import { salesforceStatistics } from './introspect/salesforce.js';
import type { Introspector } from './introspect/port.js';
import { buildPlan, type MigrationPlan, type PlanInputs, type RecentRun } from './model.js';
import type { TableProfile } from './profile.js';

/** A plan is interactive: a few quick retries, then the source's volumes are left unknown. */
const PLAN_RETRY: RetryPolicy = { attempts: 3, backoff: 'exponential', initialDelayMs: 500 };

/** Scenario A (initial load) of bench/results/latest.json, when the project has one. */
export function readBench(dir: string): PlanInputs['bench'] {
  const f = join(dir, 'bench', 'results', 'latest.json');
  if (!existsSync(f)) return undefined;
  try {
    const j = JSON.parse(readFileSync(f, 'utf8')) as { commit?: string; scenarios?: Array<{ id: string; workRows?: number; pipeline?: { seconds?: number } }> };
    const a = j.scenarios?.find((s) => s.id === 'A');
    if (!a?.workRows || !a.pipeline?.seconds) return undefined;
    return { rows: a.workRows, seconds: a.pipeline.seconds, ...(j.commit ? { commit: j.commit } : {}) };
  } catch {
    return undefined; // a broken results file only loses the estimate, which then says why
  }
}

export async function recentRuns(tables: TableStore, project: ResolvedProject): Promise<RecentRun[]> {
  const out: RecentRun[] = [];
  for (const name of project.pipelines.keys()) {
    for (const r of await listRuns(tables, name, 50)) {
      out.push({ pipeline: name, status: r.status, createdAt: r.createdAt, extracted: r.counts.extracted, ms: Object.values(r.timings).reduce((a, b) => a + (b ?? 0), 0) });
    }
  }
  return out;
}

/**
 * Reads source statistics once per connection (tables the pipelines name) and builds the plan.
 * A source that cannot be read leaves its volumes unknown and becomes a risk; it does not stop the plan.
 */
export async function makePlan(o: {
  project: ResolvedProject;
  env: NodeJS.ProcessEnv;
  duck: DuckSettings;
  runs: RecentRun[];
  now: Date;
  introspectorFor?: (connection: string) => Introspector;
}): Promise<MigrationPlan> {
  const profiles = new Map<string, TableProfile>();
  const unreadable: PlanInputs['unreadable'] = [];
  const statisticsNotes: NonNullable<PlanInputs['statisticsNotes']> = [];
  const byConn = new Map<string, string[]>();
  for (const p of o.project.pipelines.values()) if (p.source.table || p.source.object) byConn.set(p.source.connection, [...(byConn.get(p.source.connection) ?? []), p.name]);
  for (const [conn, names] of byConn) {
    const cfg = o.project.config.connections[conn]!;
    if (cfg.kind === 'salesforce') {
      try {
        const org = await SalesforceClient.connect(cfg, o.env, { retry: PLAN_RETRY, what: `plan (connection ${conn})` });
        const wanted = names.map((n) => o.project.pipelines.get(n)!).filter((p) => p.source.object);
        const stats = await salesforceStatistics(org, wanted.map((p) => ({ object: p.source.object!, ...(p.source.fields ? { fields: p.source.fields } : {}) })));
        wanted.forEach((p, i) => profiles.set(p.name, stats.profiles[i]!));
        for (const note of stats.notes) statisticsNotes.push({ connection: conn, note });
      } catch (err) {
        unreadable.push({ connection: conn, reason: errorMessage(err).split('\n')[0]! });
      }
      continue;
    }
    try {
      const intro =
        o.introspectorFor?.(conn) ??
        (cfg.kind === 'duckdb'
          ? defaultIntrospector({ kind: 'duckdb', location: cfg.path }, { file: cfg.path.startsWith('/') ? cfg.path : join(o.project.dir, cfg.path) }, o.duck, o.env)
          : defaultIntrospector({ kind: cfg.kind, location: cfg.setting }, { connectionString: readSetting(cfg.setting, o.env) }, o.duck, o.env));
      try {
        const tables = [...new Set(names.map((n) => o.project.pipelines.get(n)!.source.table!))];
        const found = await intro.profile(tables);
        for (const n of names) {
          const t = o.project.pipelines.get(n)!.source.table!.toLowerCase();
          const hit = found.find((f) => `${f.schema}.${f.name}`.toLowerCase() === t || f.name.toLowerCase() === t);
          if (hit) profiles.set(n, hit);
        }
      } finally {
        await intro.close();
      }
    } catch (err) {
      unreadable.push({ connection: conn, reason: errorMessage(err).split('\n')[0]! });
    }
  }
  return buildPlan({ project: o.project, profiles, unreadable, statisticsNotes, runs: o.runs, now: o.now, ...(readBench(o.project.dir) ? { bench: readBench(o.project.dir)! } : {}) });
}

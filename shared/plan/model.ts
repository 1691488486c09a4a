import { z } from 'zod';
import type { ResolvedProject } from '../config/load.js';
import type { PipelineConfig } from '../config/schema.js';
import { parseDuration } from '../config/duration.js';
import { duckTypeName } from '../merge/duckdb/dialect.js';
import { pgTypeName } from '../merge/postgres/dialect.js';
import { tsqlColumnType } from '../merge/synapse/dialect.js';
import type { LogicalType } from '../merge/plan.js';
import { logicalFromDuck } from '../merge/plan.js';
import { sfColumnPlan } from '../extract/salesforce/types.js';
import { pgColumnPlan } from '../extract/postgres-types.js';
import { modifiedAtCandidates, rangeReadIsCheap, windowScanAdvice, type TableProfile } from './profile.js';

/** The migration plan as data; JSON output is this object, and its JSON Schema comes from here. */
export const planSchema = z.strictObject({
  project: z.string().describe('The project folder the plan was made for.'),
  generatedAt: z.string().describe('When the plan was made (UTC ISO-8601).'),
  summary: z.strictObject({
    sources: z.array(z.strictObject({ name: z.string(), kind: z.string() })).describe('Connections the pipelines read from.'),
    targets: z.array(z.strictObject({ name: z.string(), kind: z.string() })).describe('Warehouses the pipelines write to.'),
    pipelines: z.number().int().describe('Number of pipelines in scope.'),
    initialRecords: z.number().nullable().describe('Rows of the initial load, from source statistics; null when no source could be read.'),
    dailyRecords: z.number().nullable().describe('Rows extracted per day by recent runs; null without runs in the last 7 days.'),
  }),
  scope: z
    .array(
      z.strictObject({
        pipeline: z.string(),
        object: z.string().describe('Source table, Salesforce object, or "query".'),
        records: z.number().nullable(),
        loadType: z.string().describe('"full" (every run) or "full then incremental".'),
        changeDetection: z.string(),
        schedule: z.string().nullable(),
        priority: z.number().int().describe('1 for pipelines nothing waits on; n for a pipeline after n-1 levels of dependsOn.'),
      }),
    )
    .describe('Every object in scope, in priority order.'),
  phases: z.strictObject({
    initialLoad: z.array(z.strictObject({ pipeline: z.string(), backup: z.boolean(), partitions: z.string().nullable() })),
    incremental: z.array(z.strictObject({ pipeline: z.string(), schedule: z.string().nullable(), expectedLatency: z.string() })),
  }),
  mapping: z.array(
    z.strictObject({
      pipeline: z.string(),
      target: z.string(),
      dialect: z.string(),
      viaTransform: z.boolean().describe('transform.sql reshapes the columns; the mapping shows the source side.'),
      columns: z.array(z.strictObject({ source: z.string(), sourceType: z.string(), targetType: z.string() })),
    }),
  ),
  validation: z.array(z.strictObject({ pipeline: z.string(), checks: z.array(z.string()) })),
  rollback: z.array(z.strictObject({ pipeline: z.string(), backup: z.string(), undo: z.string(), pointInTime: z.string() })),
  risks: z.array(z.strictObject({ pipeline: z.string().nullable(), risk: z.string() })),
  estimate: z.strictObject({
    seconds: z.number().nullable().describe('Estimated initial-load time; null without throughput figures or volumes.'),
    rowsPerSecond: z.number().nullable(),
    basis: z.string().describe('Where the throughput comes from: the latest bench results or recent runs.'),
  }),
  mermaid: z.string().describe('The dependency graph as a Mermaid flowchart.'),
});

export type MigrationPlan = z.infer<typeof planSchema>;

export function planJsonSchema(): unknown {
  return z.toJSONSchema(planSchema, { io: 'output' });
}

export interface RecentRun {
  pipeline: string;
  status: string;
  createdAt: string;
  extracted: number;
  /** Milliseconds over every stage. */
  ms: number;
}

export interface PlanInputs {
  project: ResolvedProject;
  profiles: Map<string, TableProfile>;
  /** Source kinds whose statistics could not be read, with why. */
  unreadable: Array<{ connection: string; reason: string }>;
  /** What a reader of the volumes must know about how a source's statistics were read (e.g. approximate counts). */
  statisticsNotes?: Array<{ connection: string; note: string }>;
  runs: RecentRun[];
  /** bench/results/latest.json scenario A (initial load): rows and seconds. */
  bench?: { rows: number; seconds: number; commit?: string };
  now: Date;
}

/** Source engine type → logical type, loose on purpose: the mapping is a preview, the merge decides. */
export function logicalFromSource(kind: string, type: string): LogicalType {
  if (kind === 'duckdb') return logicalFromDuck(type);
  if (kind === 'salesforce') {
    // The source's own type table decides (currency(18,2) → DECIMAL(18,2), datetime → TIMESTAMPTZ).
    const m = /^(\w+)(?:\((\d+),(\d+)\))?$/.exec(type);
    return logicalFromDuck(sfColumnPlan({ name: '', type: m?.[1] ?? type, ...(m?.[2] ? { precision: Number(m[2]), scale: Number(m[3]) } : {}) }).duckType);
  }
  // Arrays: the list type the extract writes (text[] → VARCHAR[] …), mapped as the merge maps it.
  if (kind === 'postgres' && type.endsWith('[]')) return logicalFromDuck(pgColumnPlan('c', type.toLowerCase()).duckType);
  const t = type.toLowerCase();
  const dec = /^(?:numeric|decimal)\((\d+),\s*(\d+)\)/.exec(t);
  if (dec) return { kind: 'decimal', precision: Number(dec[1]), scale: Number(dec[2]) };
  if (/^(bit|boolean)$/.test(t)) return kind === 'mssql' || t === 'boolean' ? { kind: 'boolean' } : { kind: 'text' };
  if (/^(tinyint|smallint)$/.test(t)) return { kind: 'integer', bits: 16 };
  if (/^(int|integer)$/.test(t)) return { kind: 'integer', bits: 32 };
  if (/^bigint$/.test(t)) return { kind: 'integer', bits: 64 };
  if (/^(real|float4)$/.test(t)) return { kind: 'float', bits: 32 };
  if (/^(float|double precision|float8)$/.test(t)) return { kind: 'float', bits: 64 };
  if (/^(money|numeric|decimal)$/.test(t)) return { kind: 'decimal', precision: 38, scale: 4 };
  if (/^date$/.test(t)) return { kind: 'date' };
  if (/^time/.test(t) && !/zone/.test(t)) return t.startsWith('timestamp') ? { kind: 'timestamp' } : { kind: 'time' };
  if (/^timestamp with time zone|^datetimeoffset/.test(t)) return { kind: 'timestamptz' };
  if (/^(datetime|datetime2|smalldatetime)$/.test(t)) return { kind: 'timestamp' };
  if (/^(uuid|uniqueidentifier)$/.test(t)) return { kind: 'uuid' };
  if (/^(bytea|varbinary|binary|image)/.test(t)) return { kind: 'binary' };
  if (/^jsonb?$/.test(t)) return { kind: 'json' };
  return { kind: 'text' };
}

function targetTypeName(dialect: string, t: LogicalType, isKey: boolean): string {
  if (dialect === 'postgres') return pgTypeName(t);
  if (dialect === 'synapse' || dialect === 'mssql') return tsqlColumnType(dialect, t, isKey ? 'key' : 'value');
  return duckTypeName(t);
}

/** Priority from dependsOn: 1 for roots, one more for each level below. */
export function priorities(pipelines: ReadonlyMap<string, PipelineConfig>): Map<string, number> {
  const memo = new Map<string, number>();
  const visit = (name: string, seen: Set<string>): number => {
    const m = memo.get(name);
    if (m !== undefined) return m;
    if (seen.has(name)) return 1; // a cycle is refused by config elsewhere; never loop here
    seen.add(name);
    const deps = pipelines.get(name)?.dependsOn ?? [];
    const v = deps.length ? 1 + Math.max(...deps.map((d) => visit(d, seen))) : 1;
    memo.set(name, v);
    return v;
  };
  for (const n of pipelines.keys()) visit(n, new Set());
  return memo;
}

export function mermaidGraph(pipelines: ReadonlyMap<string, PipelineConfig>): string {
  const lines = ['flowchart LR'];
  for (const p of pipelines.values()) lines.push(`  ${p.name}["${p.name}<br/>${p.source.table ?? 'query'} → ${p.target.table}"]`);
  for (const p of pipelines.values()) for (const d of p.dependsOn) lines.push(`  ${d} --> ${p.name}`);
  return lines.join('\n');
}

/** Minutes between two fires of a six-field NCRONTAB, for the common every-N-minutes shapes; null otherwise. */
export function scheduleIntervalMinutes(schedule: string | undefined): number | null {
  if (!schedule) return null;
  const f = schedule.trim().split(/\s+/);
  if (f.length !== 6) return null;
  const [, min, hour] = f;
  const step = /^(?:\*|\d+-\d+)\/(\d+)$/.exec(min!);
  if (step && hour === '*') return Number(step[1]);
  if (/^\d+$/.test(min!) && hour === '*') return 60;
  const hstep = /^(?:\*|\d+-\d+)\/(\d+)$/.exec(hour!);
  if (/^\d+$/.test(min!) && hstep) return 60 * Number(hstep[1]);
  if (/^\d+$/.test(min!) && /^\d+$/.test(hour!)) return 1440;
  return null;
}

export function buildPlan(i: PlanInputs): MigrationPlan {
  const { project } = i;
  const ps = [...project.pipelines.values()];
  const prio = priorities(project.pipelines);
  const ordered = [...ps].sort((a, b) => prio.get(a.name)! - prio.get(b.name)! || a.name.localeCompare(b.name));
  const conns = project.config.connections;
  const whs = project.config.warehouses;
  const records = (p: PipelineConfig) => i.profiles.get(p.name)?.rowCount ?? null;
  const known = ps.map(records).filter((n): n is number => n !== null);
  const weekAgo = i.now.getTime() - 7 * 86_400_000;
  const recent = i.runs.filter((r) => r.status === 'succeeded' && Date.parse(r.createdAt) >= weekAgo);
  const days = recent.length ? Math.max(1, (i.now.getTime() - Math.min(...recent.map((r) => Date.parse(r.createdAt)))) / 86_400_000) : 0;
  const risks: MigrationPlan['risks'] = i.unreadable.map((u) => ({ pipeline: null, risk: `source ${u.connection} could not be read for statistics: ${u.reason}` }));
  for (const n of i.statisticsNotes ?? []) risks.push({ pipeline: null, risk: `source ${n.connection}: ${n.note}` });
  for (const p of ordered) {
    const cd = p.source.changeDetection;
    const prof = i.profiles.get(p.name);
    const interval = scheduleIntervalMinutes(p.schedule);
    if ((cd.mode === 'timestamp' || cd.mode === 'rowversion') && p.target.deletes !== 'ignore') {
      risks.push({ pipeline: p.name, risk: `${cd.mode} mode cannot see hard deletes, yet target.deletes is ${p.target.deletes}: deleted source rows stay current until a full run` });
    } else if (cd.mode === 'timestamp' || cd.mode === 'rowversion') {
      risks.push({ pipeline: p.name, risk: `${cd.mode} mode with no delete reconciliation: hard deletes are never seen unless \`tidemark run ${p.name} --full\` runs periodically` });
    }
    const kind = conns[p.source.connection]!.kind;
    if ((cd.mode === 'timestamp' || cd.mode === 'rowversion') && cd.column && prof) {
      const advice =
        kind === 'duckdb' || kind === 'postgres' || kind === 'mssql'
          ? windowScanAdvice(prof, kind, cd.column)
          : rangeReadIsCheap(prof, cd.column)
            ? undefined
            : `no index leads with ${cd.column}: every incremental read scans ${p.source.table ?? p.source.object ?? 'the query'}`;
      if (advice) risks.push({ pipeline: p.name, risk: advice });
    }
    if (cd.mode === 'cdc' && prof?.cdc?.retentionMinutes != null && interval !== null && prof.cdc.retentionMinutes <= interval * 2) {
      risks.push({ pipeline: p.name, risk: `CDC retention (${prof.cdc.retentionMinutes} min) is not well above the schedule gap (${interval} min): one missed run forces a re-snapshot` });
    }
    if (cd.mode === 'changeTracking' && prof?.changeTracking?.retentionMinutes != null && interval !== null && prof.changeTracking.retentionMinutes <= interval * 2) {
      risks.push({ pipeline: p.name, risk: `Change Tracking retention (${prof.changeTracking.retentionMinutes} min) is not well above the schedule gap (${interval} min)` });
    }
    if (prof && prof.primaryKey.length === 0) risks.push({ pipeline: p.name, risk: `${p.source.table ?? p.source.object ?? 'the query'} has no primary key in the source: key [${p.key.join(', ')}] is trusted, not enforced` });
    if (!p.backup.enabled) risks.push({ pipeline: p.name, risk: 'backups are off: a bad initial load or full refresh can only be undone run by run' });
  }
  const initial = known.length ? known.reduce((a, b) => a + b, 0) : null;
  let rate: number | null = null;
  let basis: string;
  const measured = recent.filter((r) => r.extracted > 0 && r.ms > 0);
  if (measured.length) {
    rate = measured.reduce((a, r) => a + r.extracted, 0) / (measured.reduce((a, r) => a + r.ms, 0) / 1000);
    basis = `recent runs: ${measured.length} succeeded run(s) of the last 7 days, rows extracted over time spent in all stages`;
  } else if (i.bench) {
    rate = i.bench.rows / i.bench.seconds;
    basis = `the latest bench results (bench/results/latest.json, initial load of ${i.bench.rows.toLocaleString('en-US')} rows in ${i.bench.seconds.toFixed(1)} s${i.bench.commit ? `, commit ${i.bench.commit}` : ''}); measured on the bench machine, not yours`;
  } else basis = 'no throughput measured yet: run the pipelines once (or npm run bench) and plan again';
  return {
    project: project.dir,
    generatedAt: i.now.toISOString(),
    summary: {
      sources: [...new Set(ps.map((p) => p.source.connection))].sort().map((n) => ({ name: n, kind: conns[n]!.kind })),
      targets: [...new Set(ps.map((p) => p.target.warehouse))].sort().map((n) => ({ name: n, kind: whs[n]!.kind })),
      pipelines: ps.length,
      initialRecords: initial,
      dailyRecords: recent.length ? Math.round(recent.reduce((a, r) => a + r.extracted, 0) / days) : null,
    },
    scope: ordered.map((p) => ({
      pipeline: p.name,
      object: p.source.table ?? p.source.object ?? 'query',
      records: records(p),
      loadType: p.source.changeDetection.mode === 'full' ? 'full' : 'full then incremental',
      changeDetection: `${p.source.changeDetection.mode}${p.source.changeDetection.column ? ` (${p.source.changeDetection.column})` : ''}`,
      schedule: p.schedule ?? null,
      priority: prio.get(p.name)!,
    })),
    phases: {
      initialLoad: ordered.map((p) => ({
        pipeline: p.name,
        backup: p.backup.enabled,
        partitions: p.source.partitions ? (p.source.partitions.count ? `${p.source.partitions.count} key ranges` : `${p.source.partitions.rowsPerPartition} rows per range`) : null,
      })),
      incremental: ordered.map((p) => {
        const m = scheduleIntervalMinutes(p.schedule);
        const lag = p.source.changeDetection.lag ? parseDuration(p.source.changeDetection.lag) / 60000 : 0;
        return {
          pipeline: p.name,
          schedule: p.schedule ?? null,
          expectedLatency: m === null ? (p.schedule ? 'per the schedule' : 'on demand (no schedule)') : `up to ${m} min plus the run time${lag ? ` (reads back ${lag} min of lag)` : ''}`,
        };
      }),
    },
    mapping: ordered.map((p) => {
      const prof = i.profiles.get(p.name);
      const kind = conns[p.source.connection]!.kind;
      const dialect = whs[p.target.warehouse]!.kind;
      return {
        pipeline: p.name,
        target: p.target.table,
        dialect,
        viaTransform: p.transform.sql !== undefined,
        columns: (prof?.columns ?? []).map((c) => ({ source: c.name, sourceType: c.type, targetType: targetTypeName(dialect, logicalFromSource(kind, c.type), p.key.includes(c.name)) })),
      };
    }),
    validation: ordered.map((p) => ({
      pipeline: p.name,
      checks: [
        ...(p.validation.rowCount === 'exact' ? ['row count: source rows vs target current rows'] : []),
        ...(p.validation.checksumColumns.length ? [`checksum on ${p.validation.checksumColumns.join(', ')}`] : []),
        ...p.validation.rules.map((r) => `rule ${r.name} expects ${r.expect}`),
        ...(p.validation.sample ? [`${p.validation.sample} sampled keys compared field by field`] : []),
        ...(p.validation.extract.minRows ? [`extract has at least ${p.validation.extract.minRows} rows`] : []),
        ...p.transform.rules.map((r) => `quality rule ${r.name} (${r.onFail})`),
      ],
    })),
    rollback: ordered.map((p) => ({
      pipeline: p.name,
      backup: p.backup.enabled ? `copy of ${p.target.table} before the initial load and every full refresh, kept ${p.backup.keep} (tidemark backups / restore)` : 'off',
      undo: `tidemark rollback ${p.name}: undoes the newest runs in reverse order`,
      pointInTime: p.target.scd === 2 ? `tidemark query ${p.name} --as-of <UTC time>` : 'none (scd 1 keeps no history)',
    })),
    risks,
    estimate: { seconds: rate !== null && initial !== null ? Math.round(initial / rate) : null, rowsPerSecond: rate === null ? null : Math.round(rate), basis },
    mermaid: mermaidGraph(project.pipelines),
  };
}

import { IDENTIFIER_PATTERN } from '../config/identifiers.js';
import { proposeChangeDetection, qualifiedTableName, type Proposal, type SourceKind, type TableProfile } from './profile.js';

/** Where `init` reads from: `<kind>:<location>` (a file for duckdb, a setting name otherwise). */
export interface SourceRef {
  kind: SourceKind;
  /** duckdb: the path as written in tidemark.yaml (relative to the project); else the setting name. */
  location: string;
}

export type WarehouseKind = 'duckdb' | 'postgres' | 'mssql' | 'synapse';

export const SOURCE_CONNECTION = 'SOURCE';
export const WAREHOUSE_NAME = 'WAREHOUSE';

/** Settings the written tidemark.yaml names for a warehouse that needs a connection string. */
export const WAREHOUSE_SETTING: Record<Exclude<WarehouseKind, 'duckdb'>, string> = {
  postgres: 'WAREHOUSE_POSTGRES_URL',
  mssql: 'WAREHOUSE_MSSQL_CONNECTION',
  synapse: 'WAREHOUSE_SYNAPSE_CONNECTION',
};

export interface ProposedPipeline {
  name: string;
  table: TableProfile;
  proposal: Proposal;
  /** pipelines/<file>; a table without a key gets a file the loader skips until it is filled in. */
  file: string;
  text: string;
  needsKey: boolean;
}

export interface SkippedTable {
  table: string;
  reason: string;
}

/** Pipeline names are lowercase: `Sales.OrderLines` → `sales_orderlines` (schema dropped when unambiguous). */
export function pipelineNames(tables: readonly TableProfile[]): string[] {
  const clean = (s: string) => s.toLowerCase().replace(/[^a-z0-9_]+/g, '_').replace(/^_+|_+$/g, '');
  const bare = tables.map((t) => clean(t.name));
  const taken = new Set<string>();
  return tables.map((t, i) => {
    const dup = bare.filter((b) => b === bare[i]).length > 1;
    let n = dup && t.schema ? `${clean(t.schema)}_${bare[i]}` : bare[i]!;
    if (!/^[a-z]/.test(n)) n = `t_${n}`;
    n = n.slice(0, 63);
    for (let k = 2; taken.has(n); k++) n = `${n.slice(0, 60)}_${k}`;
    taken.add(n);
    return n;
  });
}

const STAGGER_MINUTES = 15;

/** Every 15 minutes, each pipeline starting a minute after the previous one so they do not all hit the source at once. */
export function scheduleFor(index: number): string {
  const m = index % STAGGER_MINUTES;
  return m === 0 ? '0 */15 * * * *' : `0 ${m}-59/15 * * * *`;
}

function fmtRows(n: number | null): string {
  return n === null ? 'rows unknown' : `${n.toLocaleString('en-US')} rows`;
}

export function fmtBytes(n: number | null): string {
  if (n === null) return 'size unknown';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

function flow(list: readonly string[]): string {
  return `[${list.join(', ')}]`;
}

/** Why a table cannot become a pipeline as it is (names tidemark would have to quote unsafely). */
export function unsupportedReason(t: TableProfile): string | undefined {
  const bad = [t.schema, t.name, ...t.columns.map((c) => c.name)].filter((n): n is string => n !== null && !IDENTIFIER_PATTERN.test(n));
  if (bad.length) return `names that are not plain identifiers (${bad.map((b) => JSON.stringify(b)).join(', ')}): write this pipeline by hand with a source.query that renames them`;
  if (t.columns.length === 0) return 'no columns';
  return undefined;
}

/**
 * The pipeline YAML for one table, with a comment saying why this change detection and what
 * the others would cost. Deletes: retired; where the mode's windows cannot see them (timestamp,
 * rowversion: an absent key of a window is not a delete) the comment says how they are found.
 */
export function renderPipeline(t: TableProfile, name: string, index: number, from: SourceRef): ProposedPipeline {
  const p = proposeChangeDetection(t, from.kind);
  const needsKey = t.primaryKey.length === 0;
  const seesDeletes = p.mode === 'full' || p.mode === 'cdc' || p.mode === 'changeTracking';
  const cd =
    p.mode === 'timestamp'
      ? `{ mode: timestamp, column: ${p.column}, lag: 5m }`
      : p.mode === 'rowversion'
        ? `{ mode: rowversion, column: ${p.column} }`
        : p.mode === 'cdc'
          ? `{ mode: cdc, captureInstance: ${p.captureInstance} }`
          : `{ mode: ${p.mode} }`;
  const candidates = t.columns.filter((c) => /(^id$|_id$|id$)/i.test(c.name)).map((c) => c.name).slice(0, 3);
  const lines = [
    '# yaml-language-server: $schema=../schemas/pipeline.schema.json',
    `# Written by \`tidemark init\` from ${from.kind}:${from.location}: ${qualifiedTableName(t)}, ${fmtRows(t.rowCount)}, ${fmtBytes(t.bytes)}.`,
    `# Change detection ${p.mode}${p.column ? ` on ${p.column}` : ''}: ${p.why}.`,
    `# This mode: ${p.tradeoff}.`,
    '# The alternatives, for this table:',
    ...p.alternatives.map((a) => `#   - ${a}`),
    ...p.warnings.map((w) => `# NOTE: ${w}`),
    `name: ${name}`,
    `schedule: "${scheduleFor(index)}"`,
    'source:',
    `  connection: ${SOURCE_CONNECTION}`,
    `  table: ${qualifiedTableName(t)}`,
    `  changeDetection: ${cd}`,
    needsKey
      ? `key: []   # FILL IN: ${qualifiedTableName(t)} has no primary key; list the column(s) that identify a row${candidates.length ? ` (candidates by name: ${candidates.join(', ')})` : ''}, then rename this file to ${name}.yaml`
      : `key: ${flow(t.primaryKey)}`,
    'target:',
    `  warehouse: ${WAREHOUSE_NAME}`,
    `  table: dw.${name}`,
    '  scd: 2',
    seesDeletes
      ? '  deletes: retire                # a deleted source row closes its current version'
      : `  deletes: retire                # ${p.mode} windows do not see hard deletes: a periodic \`tidemark reconcile ${name} --deletes\` (or \`run --full\`) retires them`,
    'validation:',
    '  rowCount: exact',
    ...(needsKey ? [] : [`  checksumColumns: ${flow(t.primaryKey)}`]),
    '',
  ];
  return { name, table: t, proposal: p, file: needsKey ? `${name}.yaml.needs-key` : `${name}.yaml`, text: lines.join('\n'), needsKey };
}

/** `connection`: the source's connection line when it is not a file or a setting (salesforce). */
export function renderProject(from: SourceRef, warehouse: WarehouseKind, connection?: string): string {
  const conn =
    connection ?? (from.kind === 'duckdb' ? `{ kind: duckdb, path: ${JSON.stringify(from.location)} }` : `{ kind: ${from.kind}, setting: ${from.location} }`);
  const wh = warehouse === 'duckdb' ? '{ kind: duckdb, path: .tidemark/warehouse.duckdb }' : `{ kind: ${warehouse}, setting: ${WAREHOUSE_SETTING[warehouse]} }`;
  return [
    '# yaml-language-server: $schema=./schemas/tidemark.schema.json',
    `# Written by \`tidemark init\`. Secrets stay in app settings / environment variables named here.`,
    'storage: AzureWebJobsStorage          # UseDevelopmentStorage=true or unset → Azurite, started by tidemark',
    'connections:',
    `  ${SOURCE_CONNECTION}: ${conn}`,
    'warehouses:',
    `  ${WAREHOUSE_NAME}: ${wh}`,
    'duckdb: { memoryLimit: 1GB, threads: 2 }',
    '',
  ].join('\n');
}

/** The whole proposal: project file, one pipeline per usable table, and the tables left out with why. */
export function proposeProject(tables: readonly TableProfile[], from: SourceRef, warehouse: WarehouseKind) {
  const usable: TableProfile[] = [];
  const skipped: SkippedTable[] = [];
  for (const t of tables) {
    const why = unsupportedReason(t);
    if (why) skipped.push({ table: qualifiedTableName(t), reason: why });
    else usable.push(t);
  }
  const names = pipelineNames(usable);
  const pipelines = usable.map((t, i) => renderPipeline(t, names[i]!, i, from));
  return { project: renderProject(from, warehouse), pipelines, skipped };
}

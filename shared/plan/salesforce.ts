import { readSetting } from '../config/load.js';
import { ConfigError } from '../errors.js';
import type { RetryPolicy } from '../retry.js';
import { SalesforceClient, type SfConnectionConfig, type SfObjectInfo } from '../extract/salesforce/client.js';
import { sfColumnPlan, unreadableReason, type SfDescribe, type SfField } from '../extract/salesforce/types.js';
import type { Proposal, TableProfile } from './profile.js';
import { SOURCE_CONNECTION, WAREHOUSE_NAME, fmtBytes, scheduleFor, type ProposedPipeline, type SkippedTable } from './propose.js';

/**
 * `tidemark init --from salesforce:<PREFIX>`: the connection's settings are named by a prefix,
 * never given on the command line: `<PREFIX>_INSTANCE_URL`, `<PREFIX>_CLIENT_ID`, and either
 * `<PREFIX>_CLIENT_SECRET` (clientCredentials) or `<PREFIX>_PRIVATE_KEY` with
 * `<PREFIX>_USERNAME` (jwt). The objects come from Describe Global, the fields and their types
 * from each object's describe.
 */

/** The CRM objects proposed when `--tables` names none (and every replicateable custom object). */
export const DEFAULT_SF_OBJECTS = ['Account', 'Contact', 'Opportunity', 'Lead', 'Case', 'Task', 'Event', 'User'];

/** The connection config the prefix's settings describe; a missing setting is named with the fix. */
export function salesforceConnectionFromPrefix(prefix: string, env: NodeJS.ProcessEnv): SfConnectionConfig {
  const has = (s: string) => typeof env[s] === 'string' && env[s] !== '';
  const need = (suffix: string) => {
    const name = `${prefix}_${suffix}`;
    if (!has(name)) throw new ConfigError('--from', `salesforce:${prefix}`, `setting ${name} is not set; init reads the connection from ${prefix}_INSTANCE_URL, ${prefix}_CLIENT_ID and ${prefix}_CLIENT_SECRET (or ${prefix}_PRIVATE_KEY and ${prefix}_USERNAME for jwt)`);
    return name;
  };
  const base = { kind: 'salesforce' as const, instanceUrlSetting: need('INSTANCE_URL'), clientIdSetting: need('CLIENT_ID'), apiVersion: '62.0', audience: 'https://login.salesforce.com', requestTimeout: '10m' };
  if (has(`${prefix}_CLIENT_SECRET`) || !has(`${prefix}_PRIVATE_KEY`)) return { ...base, auth: 'clientCredentials', secretSetting: need('CLIENT_SECRET') };
  return { ...base, auth: 'jwt', privateKeySetting: need('PRIVATE_KEY'), username: readSetting(need('USERNAME'), env) };
}

/** The connection line of tidemark.yaml: setting names only (a username is not a secret). */
export function renderSalesforceConnection(c: SfConnectionConfig): string {
  const auth =
    c.auth === 'jwt'
      ? `auth: jwt, clientIdSetting: ${c.clientIdSetting}, privateKeySetting: ${c.privateKeySetting}, username: ${JSON.stringify(c.username)}`
      : `auth: clientCredentials, clientIdSetting: ${c.clientIdSetting}, secretSetting: ${c.secretSetting}`;
  return `{ kind: salesforce, instanceUrlSetting: ${c.instanceUrlSetting}, ${auth}, apiVersion: '${c.apiVersion}' }`;
}

/** Objects to propose: the named ones (each must exist and be queryable), else the CRM defaults present plus custom objects. */
export function chooseObjects(all: readonly SfObjectInfo[], wanted: readonly string[] | undefined): { objects: string[]; skipped: SkippedTable[] } {
  const byName = new Map(all.map((o) => [o.name.toLowerCase(), o]));
  const skipped: SkippedTable[] = [];
  if (wanted?.length) {
    const objects: string[] = [];
    for (const w of wanted) {
      const o = byName.get(w.toLowerCase());
      if (!o) throw new ConfigError('--tables', w, `the org has no object ${w} the connection's user can see (check the API name, e.g. Account or Invoice__c)`);
      if (o.queryable === false) skipped.push({ table: o.name, reason: 'not queryable' });
      else objects.push(o.name);
    }
    return { objects, skipped };
  }
  const usable = (o: SfObjectInfo) => o.queryable !== false && o.replicateable !== false && !o.customSetting && !o.deprecatedAndHidden;
  const std = DEFAULT_SF_OBJECTS.map((n) => byName.get(n.toLowerCase())).filter((o): o is SfObjectInfo => o !== undefined && usable(o));
  const custom = all.filter((o) => o.custom && o.name.endsWith('__c') && usable(o)).sort((a, b) => a.name.localeCompare(b.name));
  return { objects: [...std, ...custom].map((o) => o.name), skipped };
}

/** Lowercase pipeline names: `Invoice__c` → `invoice_c`. */
export function sfPipelineName(object: string): string {
  const n = object.toLowerCase().replace(/[^a-z0-9_]+/g, '_').replace(/_+$/g, '').replace(/__+/g, '_');
  return /^[a-z]/.test(n) ? n.slice(0, 63) : `o_${n}`.slice(0, 63);
}

interface FieldChoice {
  read: SfField[];
  left: Array<{ field: SfField; why: string }>;
}

/** Fields the pipeline lists: what `fields: all` reads, less formula fields and IsDeleted. */
export function chooseFields(d: SfDescribe): FieldChoice {
  const read: SfField[] = [];
  const left: FieldChoice['left'] = [];
  for (const f of d.fields) {
    const why =
      unreadableReason(f) ??
      (f.calculated ? "formula field: computed when read, and its changes do not move SystemModstamp, so increments would miss them (compute it in transform.sql or read it with --full)" : undefined) ??
      (f.name === 'IsDeleted' ? 'deletes arrive as deletes (queryAll), not as a column' : undefined);
    if (why) left.push({ field: f, why });
    else read.push(f);
  }
  return { read, left };
}

/** The pipeline YAML of one object, with the describe type and DuckDB type of every field. */
export function renderSalesforcePipeline(d: SfDescribe, name: string, index: number, prefix: string, rowCount: number | null): ProposedPipeline {
  const { read, left } = chooseFields(d);
  const has = (n: string) => read.some((f) => f.name === n);
  const column = has('SystemModstamp') ? 'SystemModstamp' : has('LastModifiedDate') ? 'LastModifiedDate' : undefined;
  const hasId = has('Id');
  const proposal: Proposal = column
    ? {
        mode: 'timestamp',
        column,
        why: `${column} moves on every change, system changes and deletes included; queryAll on it also returns the deleted rows`,
        tradeoff: 'each run reads the rows changed since the last one (REST, or Bulk 2.0 above bulkThreshold) and the deletes still in the recycle bin',
        alternatives: ['full: every run reads the whole object through Bulk 2.0; right only for small objects'],
        warnings: [],
      }
    : {
        mode: 'full',
        why: `${d.name} has neither SystemModstamp nor LastModifiedDate`,
        tradeoff: 'every run reads the whole object through Bulk 2.0',
        alternatives: [],
        warnings: [`${d.name} has no change column: every run reads it whole`],
      };
  if (!hasId) proposal.warnings.push(`${d.name} has no Id field the user can read; fill in key:`);
  const type = (f: SfField) => {
    const def = f.type === 'currency' || f.type === 'percent' || f.type === 'double' ? `${f.type}(${f.precision ?? 0},${f.scale ?? 0})` : f.type;
    return `${def} → ${sfColumnPlan(f).duckType}`;
  };
  const width = Math.max(...read.map((f) => f.name.length));
  const lines = [
    '# yaml-language-server: $schema=../schemas/pipeline.schema.json',
    `# Written by \`tidemark init\` from salesforce:${prefix}: ${d.name}, ${rowCount === null ? 'rows unknown' : `${rowCount.toLocaleString('en-US')} rows`}, ${fmtBytes(null)}.`,
    `# Change detection ${proposal.mode}${column ? ` on ${column}` : ''}: ${proposal.why}.`,
    `# This mode: ${proposal.tradeoff}.`,
    ...proposal.alternatives.map((a) => `#   - ${a}`),
    ...proposal.warnings.map((w) => `# NOTE: ${w}`),
    `name: ${name}`,
    `schedule: "${scheduleFor(index)}"`,
    'source:',
    `  connection: ${SOURCE_CONNECTION}`,
    `  object: ${d.name}`,
    '  fields:                 # from describe: Salesforce type → DuckDB type',
    ...read.map((f) => `    - ${f.name.padEnd(width)}   # ${type(f)}`),
    ...(left.length ? ['  # left out:', ...left.map((l) => `  #   ${l.field.name} (${l.field.type}): ${l.why}`)] : []),
    `  changeDetection: ${column ? `{ mode: timestamp, column: ${column}, lag: 2m }` : '{ mode: full }'}`,
    ...(column ? ['  deletesGap: fullRead      # or keys: a recycle-bin gap reads the window plus every Id instead of every row'] : []),
    hasId ? 'key: [Id]' : `key: []   # FILL IN: ${d.name} has no readable Id, then rename this file to ${name}.yaml`,
    'target:',
    `  warehouse: ${WAREHOUSE_NAME}`,
    `  table: dw.${name}`,
    '  scd: 2',
    '  deletes: retire                # queryAll returns deleted rows; they close their current version',
    'validation:',
    '  rowCount: exact',
    ...(hasId ? ['  checksumColumns: [Id]'] : []),
    '',
  ];
  const table: TableProfile = {
    schema: null,
    name: d.name,
    columns: read.map((f) => ({ name: f.name, type: f.type, temporal: f.type === 'datetime' || f.type === 'date' })),
    primaryKey: hasId ? ['Id'] : [],
    rowCount,
    bytes: null,
    indexedColumns: column ? [column] : [],
  };
  return { name, table, proposal, file: hasId ? `${name}.yaml` : `${name}.yaml.needs-key`, text: lines.join('\n'), needsKey: !hasId };
}

/** Logs in with the prefix's settings and proposes one pipeline per chosen object. */
export async function proposeSalesforce(
  prefix: string,
  env: NodeJS.ProcessEnv,
  wanted: readonly string[] | undefined,
  retry: RetryPolicy = { attempts: 3, backoff: 'exponential', initialDelayMs: 500 },
): Promise<{ connection: SfConnectionConfig; pipelines: ProposedPipeline[]; skipped: SkippedTable[]; notes: string[] }> {
  const connection = salesforceConnectionFromPrefix(prefix, env);
  const client = await SalesforceClient.connect(connection, env, { retry, what: `salesforce:${prefix}` });
  const { sobjects } = await client.describeGlobal();
  const { objects, skipped } = chooseObjects(sobjects, wanted);
  const notes: string[] = [];
  if (!wanted?.length) notes.push(`proposed the CRM objects the org has (${DEFAULT_SF_OBJECTS.join(', ')}) and its custom objects; name others with --tables`);
  const pipelines: ProposedPipeline[] = [];
  for (const [i, object] of objects.entries()) {
    const d = await client.describe(object);
    const rowCount = (await client.query(`SELECT COUNT() FROM ${d.name}`, false)).totalSize;
    pipelines.push(renderSalesforcePipeline(d, sfPipelineName(d.name), i, prefix, rowCount));
  }
  return { connection, pipelines, skipped, notes };
}

import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { readSetting } from '../config/load.js';
import { warehouseSchema } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import type { DuckSettings } from '../duckdb/session.js';
import type { SourceKind } from './profile.js';
import { proposeSalesforce, renderSalesforceConnection } from './salesforce.js';
import { proposeProject, renderProject, type ProposedPipeline, type SkippedTable, type SourceRef, type WarehouseKind } from './propose.js';
import { writeSampleSource } from './sample-source.js';
import type { Introspector } from './introspect/port.js';

export const SAMPLE_SOURCE = 'data/sample.duckdb';

export interface FromSpec {
  kind: SourceKind | 'salesforce';
  /** duckdb: a file path as given; salesforce: the settings' prefix; else the name of the setting holding the connection string. */
  location: string;
}

const SETTING = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parses `<kind>:<location>`; a bad value names the three accepted forms. */
export function parseFrom(text: string): FromSpec {
  const i = text.indexOf(':');
  const kind = i < 0 ? '' : text.slice(0, i);
  const location = i < 0 ? '' : text.slice(i + 1);
  const forms =
    'duckdb:<file>, postgres:<setting> or mssql:<setting> (a setting / environment variable holding the connection string), or salesforce:<PREFIX> (settings PREFIX_INSTANCE_URL, PREFIX_CLIENT_ID, PREFIX_CLIENT_SECRET)';
  if (kind !== 'duckdb' && kind !== 'postgres' && kind !== 'mssql' && kind !== 'salesforce') throw new ConfigError('--from', '', `${JSON.stringify(text)} is not one of ${forms}`);
  if (!location) throw new ConfigError('--from', kind, `give a location after "${kind}:": ${forms}`);
  if (kind !== 'duckdb' && !SETTING.test(location)) {
    throw new ConfigError('--from', kind, `${JSON.stringify(location)} must name a setting (letters, digits, _), never the connection string itself`);
  }
  return { kind, location };
}

export interface InitOptions {
  dir: string;
  from?: FromSpec;
  tables?: string[];
  warehouse: WarehouseKind;
  force: boolean;
  env: NodeJS.ProcessEnv;
  duck: DuckSettings;
  /** The introspector for a source; the CLI passes the real ones (introspect/*.ts). */
  introspectorFor: (from: FromSpec & { kind: SourceKind }, resolved: { file?: string; connectionString?: string }) => Introspector;
  /** JSON Schemas written beside the project for editor hover (schemas/*.json). */
  schemas: Record<string, string>;
  now: () => Date;
}

export interface InitReport {
  dir: string;
  written: string[];
  pipelines: ProposedPipeline[];
  skipped: SkippedTable[];
  notes: string[];
}

/**
 * Writes tidemark.yaml, one pipeline per table and the JSON Schemas. Checks every target file
 * first and writes nothing when one exists (without force), so a refused init leaves no half
 * project behind.
 */
export async function initProject(o: InitOptions): Promise<InitReport> {
  const dir = resolve(o.dir);
  const probe = warehouseSchema.safeParse(o.warehouse === 'duckdb' ? { kind: 'duckdb', path: 'x' } : { kind: o.warehouse, setting: 'X' });
  if (!probe.success) throw new ConfigError('--warehouse', o.warehouse, `this build of tidemark has no ${o.warehouse} warehouse; use duckdb, postgres or synapse`);
  const files = new Map<string, string>();
  let from = o.from;
  let sampleFile: string | undefined;
  if (!from) {
    sampleFile = join(dir, SAMPLE_SOURCE);
    from = { kind: 'duckdb', location: SAMPLE_SOURCE };
  }
  const resolved: { file?: string; connectionString?: string } = {};
  if (from.kind === 'salesforce') return initSalesforce(o, dir, from.location);
  let ref: SourceRef;
  if (from.kind === 'duckdb') {
    const file = sampleFile ?? resolve(from.location);
    resolved.file = file;
    const rel = relative(dir, file);
    ref = { kind: 'duckdb', location: isAbsolute(rel) ? file : rel.split('\\').join('/') };
  } else {
    resolved.connectionString = readSetting(from.location, o.env);
    ref = { kind: from.kind, location: from.location };
  }

  const planned = ['tidemark.yaml', ...Object.keys(o.schemas).map((f) => `schemas/${f}`)];
  const clash = (rel: string) => existsSync(join(dir, rel));
  if (!o.force) {
    const early = planned.filter(clash);
    if (sampleFile && existsSync(sampleFile)) early.push(SAMPLE_SOURCE);
    if (early.length) throw new ConfigError(early[0]!, '', `already exists in ${dir}; nothing was written (${early.join(', ')}). Pass --force to overwrite`);
  }
  // The sample is built aside and moved in only once nothing clashes.
  const sampleDraft = sampleFile ? join(mkdtempSync(join(tmpdir(), 'tidemark-init-')), 'sample.duckdb') : undefined;
  if (sampleDraft) {
    await writeSampleSource(sampleDraft, o.duck, o.now().toISOString());
    resolved.file = sampleDraft;
  }

  const intro = o.introspectorFor({ kind: from.kind, location: from.location }, resolved);
  let proposal: ReturnType<typeof proposeProject>;
  try {
    const tables = await intro.profile(o.tables);
    if (tables.length === 0) throw new ConfigError('--from', from.kind, `no tables found in ${from.kind}:${from.location}; create them first or check the database`);
    proposal = proposeProject(tables, ref, o.warehouse);
  } finally {
    await intro.close();
  }
  files.set('tidemark.yaml', proposal.project);
  for (const p of proposal.pipelines) files.set(`pipelines/${p.file}`, p.text);
  addCommonFiles(o, dir, files);
  if (sampleFile && sampleDraft) {
    mkdirSync(join(sampleFile, '..'), { recursive: true });
    rmSync(sampleFile, { force: true });
    copyFileSync(sampleDraft, sampleFile); // a rename fails across file systems (the temp dir)
    rmSync(join(sampleDraft, '..'), { recursive: true, force: true });
  }
  writeFiles(dir, files);
  return {
    dir,
    written: [...(sampleFile ? [SAMPLE_SOURCE] : []), ...files.keys()],
    pipelines: proposal.pipelines,
    skipped: proposal.skipped,
    notes: intro.notes,
  };
}

/** The schemas and .gitignore beside the project; refuses (writing nothing) when a file is in the way without force. */
function addCommonFiles(o: InitOptions, dir: string, files: Map<string, string>): void {
  const clash = (rel: string) => existsSync(join(dir, rel));
  for (const [f, text] of Object.entries(o.schemas)) files.set(`schemas/${f}`, text);
  if (!clash('.gitignore')) files.set('.gitignore', '.tidemark/\nlocal.settings.json\nnode_modules/\n');
  if (!o.force) {
    const existing = [...files.keys()].filter((f) => f !== '.gitignore' && clash(f));
    if (existing.length) throw new ConfigError(existing[0]!, '', `already exists in ${dir}; nothing was written (${existing.join(', ')}). Pass --force to overwrite`);
  }
}

function writeFiles(dir: string, files: Map<string, string>): void {
  for (const [rel, text] of files) {
    const abs = join(dir, rel);
    mkdirSync(join(abs, '..'), { recursive: true });
    writeFileSync(abs, text);
  }
}

/** `--from salesforce:<PREFIX>`: objects from Describe Global, fields and types from describe (plan/salesforce.ts). */
async function initSalesforce(o: InitOptions, dir: string, prefix: string): Promise<InitReport> {
  const r = await proposeSalesforce(prefix, o.env, o.tables);
  if (r.pipelines.length === 0) throw new ConfigError('--from', `salesforce:${prefix}`, 'the org has no object to propose; name objects with --tables');
  const files = new Map<string, string>();
  files.set('tidemark.yaml', renderProject({ kind: 'duckdb', location: '' }, o.warehouse, renderSalesforceConnection(r.connection)));
  for (const p of r.pipelines) files.set(`pipelines/${p.file}`, p.text);
  addCommonFiles(o, dir, files);
  writeFiles(dir, files);
  return { dir, written: [...files.keys()], pipelines: r.pipelines, skipped: r.skipped, notes: r.notes };
}

import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { Cron } from 'croner';
import { parseDocument } from 'yaml';
import type { ZodError } from 'zod';
import { ConfigError, NotFoundError } from '../errors.js';
import { registerSecret } from '../telemetry/redact.js';
import { PIPELINE_NAME_PATTERN } from './identifiers.js';
import {
  pipelineSchema,
  projectSchema,
  type ConnectionConfig,
  type PipelineConfig,
  type ProjectConfig,
  type WarehouseConfig,
} from './schema.js';

export interface ResolvedProject {
  dir: string;
  config: ProjectConfig;
  pipelines: Map<string, PipelineConfig>;
  /**
   * Pipeline files that did not load, by pipeline name (the file's stem), when loaded with
   * `broken: 'collect'`: the others still run, and anything that needs one of these fails with its error.
   */
  broken?: Map<string, ConfigError>;
}

export interface LoadOptions {
  /** 'throw' (default): the first bad pipeline file fails the load. 'collect': it is set aside in `broken`. */
  broken?: 'throw' | 'collect';
}

export const PROJECT_FILE = 'tidemark.yaml';
export const PIPELINES_DIR = 'pipelines';

function formatPath(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[');
}

/** Every zod issue becomes one line naming the field, so a user fixes all of them in one pass. */
function toConfigError(file: string, err: ZodError): ConfigError {
  const issues = err.issues.map((i) => {
    let msg = i.message;
    if (i.code === 'unrecognized_keys') msg = `unknown field ${i.keys.map((k) => JSON.stringify(k)).join(', ')}`;
    return { path: formatPath(i.path), msg };
  });
  const first = issues[0]!;
  const problem =
    issues.length === 1
      ? first.msg
      : `${first.msg}${issues
          .slice(1)
          .map((i) => `; at ${i.path || '(root)'}: ${i.msg}`)
          .join('')}`;
  return new ConfigError(file, first.path, problem, { cause: err });
}

function parseYamlFile(file: string, text: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    // prettyErrors puts the offending lines and a caret after "at line L, column C:"; keep them.
    throw new ConfigError(file, '', `invalid YAML: ${e.message.trimEnd()}`, { cause: e });
  }
  return doc.toJS() ?? {};
}

export function parseProject(file: string, text: string): ProjectConfig {
  const parsed = projectSchema.safeParse(parseYamlFile(file, text));
  if (!parsed.success) throw toConfigError(file, parsed.error);
  return parsed.data;
}

export function parsePipeline(file: string, text: string): PipelineConfig {
  const parsed = pipelineSchema.safeParse(parseYamlFile(file, text));
  if (!parsed.success) throw toConfigError(file, parsed.error);
  return parsed.data;
}

/** Azure Functions timers take NCRONTAB: six fields, seconds first, evaluated in UTC. */
export function validateSchedule(file: string, schedule: string): void {
  const fields = schedule.trim().split(/\s+/);
  if (fields.length !== 6) {
    throw new ConfigError(
      file,
      'schedule',
      `NCRONTAB needs six fields (second minute hour day month day-of-week), got ${fields.length}: ${JSON.stringify(schedule)}`,
    );
  }
  try {
    new Cron(schedule, { paused: true, timezone: 'UTC' }).stop();
  } catch (cause) {
    throw new ConfigError(file, 'schedule', `invalid NCRONTAB expression ${JSON.stringify(schedule)}: ${String((cause as Error).message)}`, {
      cause,
    });
  }
}

/** Checks what a single file cannot: names that point into tidemark.yaml or at other pipelines. */
export function crossCheck(project: ProjectConfig, pipelines: Map<string, PipelineConfig>, fileOf: (name: string) => string, broken?: ReadonlyMap<string, ConfigError>): void {
  for (const p of pipelines.values()) crossCheckOne(project, pipelines, p, fileOf(p.name), broken);
}

function crossCheckOne(project: ProjectConfig, pipelines: Map<string, PipelineConfig>, p: PipelineConfig, file: string, broken?: ReadonlyMap<string, ConfigError>): void {
  if (!project.connections[p.source.connection]) {
    throw new ConfigError(
      file,
      'source.connection',
      `unknown connection ${JSON.stringify(p.source.connection)}; declare it under connections in ${PROJECT_FILE} (known: ${Object.keys(project.connections).join(', ') || 'none'})`,
    );
  }
  if (!project.warehouses[p.target.warehouse]) {
    throw new ConfigError(
      file,
      'target.warehouse',
      `unknown warehouse ${JSON.stringify(p.target.warehouse)}; declare it under warehouses in ${PROJECT_FILE} (known: ${Object.keys(project.warehouses).join(', ') || 'none'})`,
    );
  }
  p.dependsOn.forEach((d, i) => {
    const b = broken?.get(d);
    if (b) throw new ConfigError(file, `dependsOn[${i}]`, `depends on ${JSON.stringify(d)}, whose file does not load (${b.message})`);
    if (!pipelines.has(d)) throw new ConfigError(file, `dependsOn[${i}]`, `unknown pipeline ${JSON.stringify(d)}`);
    if (d === p.name) throw new ConfigError(file, `dependsOn[${i}]`, 'a pipeline cannot depend on itself');
  });
  if (p.schedule !== undefined) validateSchedule(file, p.schedule);
}

const asConfigError = (file: string, err: unknown): ConfigError =>
  err instanceof ConfigError ? err : new ConfigError(file, '', err instanceof Error ? err.message : String(err), { cause: err });

/** Loads and validates tidemark.yaml and every pipelines/*.yaml of a project folder. */
export function loadProject(dir: string, opts: LoadOptions = {}): ResolvedProject {
  const root = resolve(dir);
  const projectFile = join(root, PROJECT_FILE);
  if (!existsSync(projectFile)) {
    throw new ConfigError(PROJECT_FILE, '', `not found in ${JSON.stringify(root)}; run tidemark from a project folder or pass --project DIR`);
  }
  const config = parseProject(PROJECT_FILE, readFileSync(projectFile, 'utf8'));
  const collect = opts.broken === 'collect';
  const pipelines = new Map<string, PipelineConfig>();
  const broken = new Map<string, ConfigError>();
  const fileOf = new Map<string, string>();
  const pipelinesDir = join(root, PIPELINES_DIR);
  const files = existsSync(pipelinesDir)
    ? readdirSync(pipelinesDir).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml')).sort()
    : [];
  for (const f of files) {
    const rel = `${PIPELINES_DIR}/${f}`;
    const stem = basename(f).replace(/\.ya?ml$/, '');
    try {
      const p = parsePipeline(rel, readFileSync(join(pipelinesDir, f), 'utf8'));
      if (p.name !== stem) throw new ConfigError(rel, 'name', `must equal the file name ${JSON.stringify(stem)}`);
      pipelines.set(p.name, p);
      fileOf.set(p.name, rel);
    } catch (err) {
      if (!collect) throw err;
      broken.set(stem, asConfigError(rel, err));
    }
  }
  if (!collect) {
    crossCheck(config, pipelines, (name) => `${PIPELINES_DIR}/${name}.yaml`);
    return { dir: root, config, pipelines };
  }
  // A pipeline that depends on a broken one is broken too; repeat until nothing more falls out.
  for (let changed = true; changed; ) {
    changed = false;
    for (const p of [...pipelines.values()]) {
      try {
        crossCheckOne(config, pipelines, p, fileOf.get(p.name) ?? `${PIPELINES_DIR}/${p.name}.yaml`, broken);
      } catch (err) {
        pipelines.delete(p.name);
        broken.set(p.name, asConfigError(fileOf.get(p.name)!, err));
        changed = true;
      }
    }
  }
  return { dir: root, config, pipelines, broken };
}

export function getPipeline(project: ResolvedProject, name: string): PipelineConfig {
  // Names arrive from the CLI, HTTP routes, queue messages and blob paths: refuse anything that
  // is not a pipeline name before it is echoed into a file path hint or a storage key.
  if (!PIPELINE_NAME_PATTERN.test(name)) {
    throw new NotFoundError(`invalid pipeline name ${JSON.stringify(name)}: use lowercase letters, digits and _, starting with a letter (at most 63)`);
  }
  const p = project.pipelines.get(name);
  const broken = project.broken?.get(name);
  if (!p && broken) throw broken;
  if (!p) {
    throw new NotFoundError(
      `unknown pipeline ${JSON.stringify(name)}; known: ${[...project.pipelines.keys()].join(', ') || 'none'} (add pipelines/${name}.yaml)`,
    );
  }
  return p;
}

export function connectionOf(project: ResolvedProject, p: PipelineConfig): ConnectionConfig {
  return project.config.connections[p.source.connection]!;
}

export function warehouseOf(project: ResolvedProject, p: PipelineConfig): WarehouseConfig {
  return project.config.warehouses[p.target.warehouse]!;
}

/** Secrets live in app settings / environment variables, named by config, never in config itself. */
export function readSetting(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const v = env[name];
  if (v === undefined || v === '') {
    throw new ConfigError(
      'settings',
      name,
      `app setting ${name} is not set; add it to local.settings.json (locally) or the Function App's settings`,
    );
  }
  // Settings named by the config hold connection strings and webhook URLs: masked wherever they appear.
  registerSecret(v);
  return v;
}

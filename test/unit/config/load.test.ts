import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadProject, parsePipeline, parseProject, readSetting } from '../../../shared/config/load.js';
import { assertSupported } from '../../../shared/config/support.js';
import { ConfigError, NotSupportedError } from '../../../shared/errors.js';

const PROJECT = `connections:
  SRC: { kind: duckdb, path: src.duckdb }
  CRM_SQL: { kind: mssql, setting: CRM_SQL_CONNECTION }
warehouses:
  WH: { kind: duckdb, path: wh.duckdb }
`;

const PIPELINE = `name: accounts
schedule: "0 */15 * * * *"
source:
  connection: SRC
  table: dbo.Accounts
  changeDetection: { mode: timestamp, column: ModifiedAt, lag: 5m }
key: [AccountId]
target:
  warehouse: WH
  table: dw.dim_account
`;

function project(pipelines: Record<string, string>, projectText = PROJECT): string {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-config-'));
  writeFileSync(join(dir, 'tidemark.yaml'), projectText);
  mkdirSync(join(dir, 'pipelines'));
  for (const [f, t] of Object.entries(pipelines)) writeFileSync(join(dir, 'pipelines', f), t);
  return dir;
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('pipeline config', () => {
  it('accepts the docs/design.md example and fills defaults', () => {
    const p = parsePipeline('pipelines/accounts.yaml', PIPELINE);
    expect(p.target.scd).toBe(2);
    expect(p.target.deletes).toBe('retire');
    expect(p.target.trackedColumns).toBe('all');
    expect(p.validation.rowCount).toBe('exact');
    expect(p.source.changeDetection).toEqual({ mode: 'timestamp', column: 'ModifiedAt', lag: '5m' });
  });

  it('names the file, the field path and the problem for an unknown field', () => {
    const e = configError(() => parsePipeline('pipelines/accounts.yaml', `${PIPELINE}  colour: blue\n`));
    expect(e.file).toBe('pipelines/accounts.yaml');
    expect(e.path).toBe('target');
    expect(e.message).toContain('unknown field "colour"');
  });

  it('rejects a wrong type with the path of the field', () => {
    const e = configError(() => parsePipeline('p.yaml', PIPELINE.replace('key: [AccountId]', 'key: AccountId')));
    expect(e.path).toBe('key');
    expect(e.message).toMatch(/^p\.yaml at key: /);
  });

  it('refuses unsafe identifiers in keys, columns and tables', () => {
    const e1 = configError(() => parsePipeline('p.yaml', PIPELINE.replace('key: [AccountId]', 'key: ["x]; drop table y; --"]')));
    expect(e1.path).toBe('key[0]');
    expect(e1.message).toContain('safe identifier');
    const e2 = configError(() => parsePipeline('p.yaml', PIPELINE.replace('dw.dim_account', 'dw.dim;drop')));
    expect(e2.path).toBe('target.table');
    const e3 = configError(() => parsePipeline('p.yaml', PIPELINE.replace('column: ModifiedAt', 'column: "Modified At"')));
    expect(e3.path).toBe('source.changeDetection.column');
  });

  it('needs a column for timestamp mode and exactly one of table/query', () => {
    expect(configError(() => parsePipeline('p.yaml', PIPELINE.replace(', column: ModifiedAt', ''))).path).toBe('source.changeDetection.column');
    const both = PIPELINE.replace('  table: dbo.Accounts\n', '  table: dbo.Accounts\n  query: select 1\n');
    expect(configError(() => parsePipeline('p.yaml', both)).message).toContain('exactly one of source.table or source.query');
  });

  it('reports invalid YAML with the file', () => {
    const e = configError(() => parsePipeline('p.yaml', 'name: [unclosed'));
    expect(e.message).toMatch(/^p\.yaml: invalid YAML/);
  });
});

describe('project loading', () => {
  it('loads tidemark.yaml and pipelines/*.yaml', () => {
    const p = loadProject(project({ 'accounts.yaml': PIPELINE }));
    expect([...p.pipelines.keys()]).toEqual(['accounts']);
    expect(p.config.duckdb).toEqual({ memoryLimit: '1GB', threads: 2 });
  });

  it('refuses an unknown connection, naming what is known', () => {
    const e = configError(() => loadProject(project({ 'accounts.yaml': PIPELINE.replace('connection: SRC', 'connection: NOPE') })));
    expect(e.file).toBe('pipelines/accounts.yaml');
    expect(e.path).toBe('source.connection');
    expect(e.message).toContain('known: SRC, CRM_SQL');
  });

  it('refuses a bad NCRONTAB schedule', () => {
    const five = configError(() => loadProject(project({ 'accounts.yaml': PIPELINE.replace('"0 */15 * * * *"', '"*/15 * * * *"') })));
    expect(five.path).toBe('schedule');
    expect(five.message).toContain('six fields');
    const bad = configError(() => loadProject(project({ 'accounts.yaml': PIPELINE.replace('"0 */15 * * * *"', '"0 */15 * * * mon-xyz"') })));
    expect(bad.message).toContain('invalid NCRONTAB');
  });

  it('requires the file name to match the pipeline name', () => {
    expect(configError(() => loadProject(project({ 'other.yaml': PIPELINE }))).message).toContain('must equal the file name "other"');
  });

  it('says where tidemark.yaml is missing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-empty-'));
    expect(configError(() => loadProject(dir)).message).toContain('tidemark.yaml: not found');
  });

  it('rejects a secret-looking connection without a setting name', () => {
    const e = configError(() => parseProject('tidemark.yaml', 'connections:\n  X: { kind: mssql, connectionString: "Server=x;Password=y" }\n'));
    expect(e.path).toBe('connections.X.setting');
    expect(e.message).toContain('unknown field "connectionString"');
  });

  it('reads secrets from named settings only, and says which is missing', () => {
    expect(readSetting('A', { A: 'v' })).toBe('v');
    expect(() => readSetting('CRM_SQL_CONNECTION', {})).toThrow(/app setting CRM_SQL_CONNECTION is not set/);
  });

  it('refuses at run time what the schema accepts but this release does not run', () => {
    const p = loadProject(
      project({
        'accounts.yaml': PIPELINE.replace('target:', 'buckets: 2\ntarget:'),
        'accounts2.yaml': PIPELINE.replace('name: accounts', 'name: accounts2').replace('target:', 'dependsOn: [accounts]\ntarget:'),
      }),
    );
    expect(() => assertSupported(p, p.pipelines.get('accounts')!)).toThrow(NotSupportedError);
    expect(() => assertSupported(p, p.pipelines.get('accounts')!)).toThrow(/not supported yet: buckets/);
    // dependsOn runs since the operations change (shared/engine/dependencies.ts).
    expect(() => assertSupported(p, p.pipelines.get('accounts2')!)).not.toThrow();
  });
});

/* salesforce source (issue 18) */
describe('salesforce sources at run start', () => {
  it('refuses table / query on a salesforce connection and object / soql elsewhere, naming the fix', () => {
    const sfProject = `${PROJECT}`.replace('warehouses:', '  CRM: { kind: salesforce, instanceUrlSetting: SF_URL, clientIdSetting: SF_ID, secretSetting: SF_SECRET }\nwarehouses:');
    const pipe = (name: string, source: string) => `name: ${name}\nsource: ${source}\nkey: [Id]\ntarget: { warehouse: WH, table: dw.${name} }\n`;
    const p = loadProject(
      project(
        {
          'sf_ok.yaml': pipe('sf_ok', '{ connection: CRM, object: Account, fields: [Id, Name], changeDetection: { mode: timestamp, lag: 2m } }'),
          'sf_table.yaml': pipe('sf_table', '{ connection: CRM, table: Account }'),
          'db_object.yaml': pipe('db_object', '{ connection: SRC, object: Account }'),
        },
        sfProject,
      ),
    );
    expect(() => assertSupported(p, p.pipelines.get('sf_ok')!)).not.toThrow();
    expect(() => assertSupported(p, p.pipelines.get('sf_table')!)).toThrow(/CRM is a salesforce connection: read source.object \(with fields\) or source.soql/);
    expect(() => assertSupported(p, p.pipelines.get('db_object')!)).toThrow(/SRC is duckdb: use source.table or source.query/);
  });
});
/* end salesforce source */

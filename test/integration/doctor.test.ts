import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { exitCodeFor } from '../../cli/common.js';
import { doctorCommand } from '../../cli/commands/doctor.js';
import { loadProject } from '../../shared/config/load.js';
import { DOCTOR_PROBE, doctorExitCode, runDoctor, type DoctorCheck } from '../../shared/engine/doctor.js';
import { connectionStringStorage, createStorageClients } from '../../shared/storage/clients.js';
import { CONTAINERS } from '../../shared/storage/layout.js';
import { freePort, type AzuriteHandle } from '../../shared/local/azurite.js';
import { withAzurite } from '../support/azurite.js';
import { startPostgres, type PostgresHandle } from '../support/postgres.js';
import { duckExec, makeProject } from '../support/project.js';

const TIDEMARK = `storage: AzureWebJobsStorage
connections:
  SRC: { kind: duckdb, path: source.duckdb }
  PG: { kind: postgres, setting: PG_SOURCE }
  CRM: { kind: mssql, setting: CRM_SQL }
warehouses:
  WH: { kind: duckdb, path: out/warehouse.duckdb }
  PGW: { kind: postgres, setting: PG_DW }
`;
const pipe = (name: string, table: string, extra = '') => `name: ${name}
source: { connection: SRC, table: ${table} }
key: [id]
target: { warehouse: WH, table: dw.${name} }
${extra}`;

describe('tidemark doctor against Azurite, DuckDB, PostgreSQL and an unreachable SQL Server', () => {
  let az: AzuriteHandle;
  let pg: PostgresHandle;
  let dir: string;
  let checks: DoctorCheck[];
  const find = (name: string) => checks.find((c) => c.name === name);

  beforeAll(async () => {
    [az, pg] = await Promise.all([withAzurite(), startPostgres()]);
    dir = makeProject({
      tidemark: TIDEMARK,
      pipelines: {
        good: pipe('good', 'crm.accounts', 'notifications:\n  webhooks: [{ setting: SLACK_HOOK }]\n'),
        typo: pipe('typo', 'crm.acounts'),
      },
    });
    await duckExec(join(dir, 'source.duckdb'), 'create schema crm', 'create table crm.accounts (id integer)');
    const closed = await freePort(); // nothing listens here: a real refused connection
    checks = await runDoctor(loadProject(dir), {
      env: {
        AzureWebJobsStorage: az.connectionString,
        PG_SOURCE: pg.url,
        CRM_SQL: `Server=127.0.0.1,${closed};Database=crm;User Id=u;Password=p;Encrypt=false`,
      },
      timeoutMs: 5000,
    });
  });
  afterAll(async () => {
    await az?.stop();
    await pg?.stop();
  });

  it('reports reachable storage, with the layout that is not created yet as a warning', () => {
    expect(find('AzureWebJobsStorage')).toMatchObject({ area: 'storage', status: 'ok' });
    expect(find('AzureWebJobsStorage')!.detail).not.toContain('AccountKey');
    expect(find('AzureWebJobsStorage')!.detail).toMatch(/^reached http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1 with a connection string \(AzureWebJobsStorage, local emulator\)$/);
    // The connection-string kind is named; roles are not checked (Azurite has no RBAC).
    expect(find('credential')).toEqual({ area: 'storage', name: 'credential', status: 'ok', detail: 'connection string to the local emulator (AzureWebJobsStorage)' });
    expect(checks.filter((c) => c.name.startsWith('role '))).toEqual([]);
    expect(find('layout')).toMatchObject({ status: 'warn' });
    expect(find('layout')!.detail).toContain('container raw');
  });

  it('with identity settings, proves each role by a read and a write the app does there — the probes run for real on Azurite and leave nothing behind', async () => {
    // Azurite has no Entra ID here: the identity-kind checks run on its clients (a key behind
    // them, so every role is there); the refusals of a missing role are in test/unit/engine/doctor-storage.test.ts.
    const clients = createStorageClients(connectionStringStorage('AzureWebJobsStorage', az.connectionString), {});
    const identity = await runDoctor(loadProject(dir), {
      env: { AzureWebJobsStorage__accountName: 'tidemarkst01', AzureWebJobsStorage__credential: 'managedidentity' },
      storageClients: () => clients,
      timeoutMs: 5000,
    });
    const storage = identity.filter((c) => c.area === 'storage');
    expect(storage.find((c) => c.name === 'credential')?.detail).toContain('with the system-assigned managed identity');
    expect(storage.filter((c) => c.name.startsWith('role ')).map((c) => [c.name, c.status])).toEqual([
      ['role Storage Blob Data Owner', 'ok'],
      ['role Storage Queue Data Contributor', 'ok'],
      ['role Storage Table Data Contributor', 'ok'],
    ]);
    const blobs: string[] = [];
    for await (const b of clients.blob.getContainerClient(CONTAINERS.state).listBlobsFlat({ prefix: DOCTOR_PROBE.blobPrefix })) blobs.push(b.name);
    expect(blobs).toEqual([]);
    expect((await clients.queue.getQueueClient(DOCTOR_PROBE.queue).peekMessages({ numberOfMessages: 32 })).peekedMessageItems).toEqual([]);
    const rows: unknown[] = [];
    for await (const r of clients.tableClient(DOCTOR_PROBE.table).listEntities()) rows.push(r);
    expect(rows).toEqual([]);
    // The probe created the state container; the layout check does not call it missing.
    expect(storage.find((c) => c.name === 'layout')?.detail).not.toContain('container state');
  });

  it('names each missing setting and who needs it', () => {
    expect(find('PG_DW')).toMatchObject({ area: 'settings', status: 'fail' });
    expect(find('PG_DW')!.detail).toContain('warehouses.PGW needs it');
    expect(find('SLACK_HOOK')!.detail).toContain('pipelines/good.yaml notifications needs it');
    expect(find('PG_SOURCE')).toMatchObject({ status: 'ok' });
    expect(find('APPLICATIONINSIGHTS_CONNECTION_STRING')).toMatchObject({ status: 'warn' });
  });

  it('opens the DuckDB source and names the pipeline whose table does not exist', () => {
    expect(find('SRC → good')).toMatchObject({ status: 'ok' });
    expect(find('SRC → typo')).toMatchObject({ status: 'fail' });
    expect(find('SRC → typo')!.detail).toMatch(/^pipelines\/typo\.yaml source crm\.acounts: .*acounts/);
  });

  it('connects to PostgreSQL for real and reports the refused SQL Server connection', () => {
    expect(checks.find((c) => c.area === 'source' && c.name === 'PG')).toMatchObject({ status: 'ok' });
    const crm = checks.find((c) => c.area === 'source' && c.name === 'CRM')!;
    expect(crm.status).toBe('fail');
    expect(crm.detail).toMatch(/^mssql connection through CRM_SQL failed: /);
    expect(checks.find((c) => c.area === 'warehouse' && c.name === 'PGW')!.detail).toBe('not checked: app setting PG_DW is not set');
    expect(checks.find((c) => c.area === 'warehouse' && c.name === 'WH')).toMatchObject({ status: 'ok' });
    expect(doctorExitCode(checks)).toBe(1);
  });

  it('the command exits 0 when everything passes and 2 on a config error', async () => {
    const okDir = makeProject({ pipelines: { good: pipe('good', 'crm.accounts') } });
    await duckExec(join(okDir, 'source.duckdb'), 'create schema crm', 'create table crm.accounts (id integer)');
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const saved = process.env.AzureWebJobsStorage;
    process.env.AzureWebJobsStorage = az.connectionString;
    try {
      expect(await doctorCommand.run(['--project', okDir, '--json'])).toBe(0);
      const printed = JSON.parse(String(out.mock.calls.map((c) => c[0]).join('')));
      expect(printed.ok).toBe(true);
      writeFileSync(join(okDir, 'tidemark.yaml'), 'storage: [unclosed\n');
      const err = await doctorCommand.run(['--project', okDir]).catch((e: unknown) => e);
      expect(exitCodeFor(err)).toBe(2);
      expect(String((err as Error).message)).toContain('tidemark.yaml: invalid YAML');
    } finally {
      out.mockRestore();
      process.env.AzureWebJobsStorage = saved;
    }
  });

  it('reads local.settings.json Values (env wins), says where each setting came from, and reports a broken pipeline file without stopping the rest', async () => {
    const dir2 = makeProject({
      tidemark: `storage: AzureWebJobsStorage
connections:
  SRC: { kind: duckdb, path: source.duckdb }
  PG: { kind: postgres, setting: PG_SOURCE }
warehouses:
  WH: { kind: duckdb, path: out/warehouse.duckdb }
`,
      pipelines: {
        good: pipe('good', 'crm.accounts'),
        // A typo: "table" is indented one column too little.
        typo: 'name: typo\nsource: { connection: SRC, table: crm.accounts }\nkey: [id]\ntarget:\n  warehouse: WH\n table: dw.typo\n',
        after: pipe('after', 'crm.accounts', 'dependsOn: [typo]\n'),
      },
    });
    await duckExec(join(dir2, 'source.duckdb'), 'create schema crm', 'create table crm.accounts (id integer)');
    writeFileSync(
      join(dir2, 'local.settings.json'),
      JSON.stringify({ IsEncrypted: false, Values: { AzureWebJobsStorage: az.connectionString, PG_SOURCE: 'postgres://nobody@127.0.0.1:1/none' } }),
    );
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const saved = { ...process.env };
    delete process.env.AzureWebJobsStorage;
    process.env.PG_SOURCE = pg.url; // the environment wins over the file, as with func start
    try {
      expect(await doctorCommand.run(['--project', dir2, '--json'])).toBe(1);
      const printed = JSON.parse(String(out.mock.calls.map((c) => c[0]).join(''))) as { checks: DoctorCheck[] };
      const by = (area: string, name: string) => printed.checks.find((c) => c.area === area && c.name === name)!;
      expect(by('storage', 'AzureWebJobsStorage')).toMatchObject({ status: 'ok' });
      expect(by('storage', 'AzureWebJobsStorage').detail).toContain('(AzureWebJobsStorage set in local.settings.json)');
      expect(by('settings', 'PG_SOURCE')).toMatchObject({ status: 'ok', detail: 'set in the environment (used by connections.PG)' });
      expect(by('source', 'PG')).toMatchObject({ status: 'ok' });
      const typo = by('pipelines', 'typo');
      expect(typo.status).toBe('fail');
      // The parser's snippet is kept: the line and the caret under the bad column.
      expect(typo.detail).toContain('pipelines/typo.yaml: invalid YAML: All mapping items must start at the same column at line 6, column 1:\n\n  warehouse: WH\n table: dw.typo\n^');
      expect(by('pipelines', 'after').detail).toContain('pipelines/after.yaml at dependsOn[0]: depends on "typo", whose file does not load');
      expect(by('source', 'SRC → good')).toMatchObject({ status: 'ok' });
    } finally {
      out.mockRestore();
      process.env = saved;
    }
  });
});

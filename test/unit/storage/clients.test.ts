import { ClientSecretCredential, DefaultAzureCredential, ManagedIdentityCredential } from '@azure/identity';
import { TableClient, TableServiceClient } from '@azure/data-tables';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../shared/errors.js';
import { createContext } from '../../../shared/engine/context.js';
import { defaultSourceFor, defaultWarehouseFor } from '../../../shared/engine/factories.js';
import { loadProject } from '../../../shared/config/load.js';
import type { AzureBlobStore, AzureQueuePort } from '../../../shared/storage/azure-storage.js';
import type { AzureTableStore } from '../../../shared/state/azure-tables.js';
import { redact } from '../../../shared/telemetry/redact.js';
import { createStorageClients, describeStorage, resolveStorageConnection } from '../../../shared/storage/clients.js';
import { AZURITE_ACCOUNT } from '../../../shared/storage/connection.js';
import { makeProject } from '../../support/project.js';

const S = 'AzureWebJobsStorage';
const build = (env: NodeJS.ProcessEnv) => createStorageClients(resolveStorageConnection(S, env), env);
const urls = (c: ReturnType<typeof build>) => ({ blob: c.blob.url, queue: c.queue.url, table: c.table.url });

describe('the storage factory: every storage client of the engine from one kind of setting', () => {
  it('UseDevelopmentStorage=true → Azurite over http with its shared key', () => {
    const c = build({ [S]: 'UseDevelopmentStorage=true' });
    expect(c.connection).toMatchObject({ kind: 'connectionString', local: true });
    expect(c.blob).toBeInstanceOf(BlobServiceClient);
    expect(c.queue).toBeInstanceOf(QueueServiceClient);
    expect(c.table).toBeInstanceOf(TableServiceClient);
    expect(urls(c)).toEqual({
      blob: `http://127.0.0.1:10000/${AZURITE_ACCOUNT}`,
      queue: `http://127.0.0.1:10001/${AZURITE_ACCOUNT}`,
      table: `http://127.0.0.1:10002/${AZURITE_ACCOUNT}`,
    });
    expect(c.blob.credential).toBeInstanceOf(StorageSharedKeyCredential);
    expect(c.credential).toBeUndefined();
    const t = c.tableClient('runs');
    expect(t).toBeInstanceOf(TableClient);
    expect([t.url, t.tableName]).toEqual([`http://127.0.0.1:10002/${AZURITE_ACCOUNT}`, 'runs']);
  });

  it('a connection string with an account key → https endpoints of that account, the shared key; the key is masked from then on', () => {
    const key = Buffer.from('storage-key-marker-5d1e').toString('base64');
    const c = build({ [S]: `DefaultEndpointsProtocol=https;AccountName=prodacct01;AccountKey=${key};EndpointSuffix=core.windows.net` });
    expect(c.connection).toMatchObject({ kind: 'connectionString', local: false });
    expect(urls(c)).toEqual({
      blob: 'https://prodacct01.blob.core.windows.net/',
      queue: 'https://prodacct01.queue.core.windows.net',
      table: 'https://prodacct01.table.core.windows.net',
    });
    expect(c.blob.credential).toBeInstanceOf(StorageSharedKeyCredential);
    expect((c.blob.credential as StorageSharedKeyCredential).accountName).toBe('prodacct01');
    expect(c.tableClient('runs').url).toBe('https://prodacct01.table.core.windows.net');
    expect(describeStorage(c.connection)).toBe('account prodacct01 with a connection string (AzureWebJobsStorage, shared key)');
    // An SDK error that echoes the key (or the whole string) carries a mask instead.
    expect(redact(`request failed, key ${key}`)).toBe('request failed, key ***');
  });

  it('a connection string wins over identity settings of the same name (the Functions rule: the exact match is used)', () => {
    const c = build({ [S]: 'UseDevelopmentStorage=true', [`${S}__accountName`]: 'prodacct' });
    expect(c.connection.kind).toBe('connectionString');
  });

  it('__accountName → the public-cloud endpoints with DefaultAzureCredential (az login on a laptop)', () => {
    const c = build({ [`${S}__accountName`]: 'tidemarkst01' });
    expect(c.connection).toEqual({
      kind: 'identity',
      setting: S,
      blobUrl: 'https://tidemarkst01.blob.core.windows.net',
      queueUrl: 'https://tidemarkst01.queue.core.windows.net',
      tableUrl: 'https://tidemarkst01.table.core.windows.net',
      credential: 'default',
    });
    expect(c.credential).toBeInstanceOf(DefaultAzureCredential);
    // `credential` is protected on the SDK clients; read here only to check what they were given.
    expect((c.blob as unknown as { credential: unknown }).credential).toBe(c.credential);
    expect((c.queue as unknown as { credential: unknown }).credential).toBe(c.credential);
    // The blob SDK keeps a trailing slash on a bare service URL; queue and table do not.
    expect(urls(c)).toEqual({
      blob: 'https://tidemarkst01.blob.core.windows.net/',
      queue: 'https://tidemarkst01.queue.core.windows.net',
      table: 'https://tidemarkst01.table.core.windows.net',
    });
    const t = c.tableClient('checkpoints');
    expect([t.url, t.tableName]).toEqual(['https://tidemarkst01.table.core.windows.net', 'checkpoints']);
    expect(describeStorage(c.connection)).toBe('https://tidemarkst01.blob.core.windows.net with DefaultAzureCredential (environment, workload or managed identity, az login)');
  });

  it('the three service URIs (what infra/main.bicep sets: sovereign clouds, custom DNS) with __credential=managedidentity and a user-assigned __clientId', () => {
    const env = {
      [`${S}__blobServiceUri`]: 'https://acct.blob.core.chinacloudapi.cn/',
      [`${S}__queueServiceUri`]: 'https://acct.queue.core.chinacloudapi.cn/',
      [`${S}__tableServiceUri`]: 'https://acct.table.core.chinacloudapi.cn/',
      [`${S}__credential`]: 'managedidentity',
      [`${S}__clientId`]: '00000000-1111-2222-3333-444444444444',
    };
    const c = build(env);
    expect(c.credential).toBeInstanceOf(ManagedIdentityCredential);
    expect((c.credential as unknown as { clientId?: string }).clientId).toBe('00000000-1111-2222-3333-444444444444');
    expect(urls(c)).toEqual({
      blob: 'https://acct.blob.core.chinacloudapi.cn/',
      queue: 'https://acct.queue.core.chinacloudapi.cn',
      table: 'https://acct.table.core.chinacloudapi.cn',
    });
    expect(describeStorage(c.connection)).toContain('the user-assigned managed identity 00000000-1111-2222-3333-444444444444');
    const system = build({ ...env, [`${S}__clientId`]: '' });
    expect(system.credential).toBeInstanceOf(ManagedIdentityCredential);
    expect((system.credential as unknown as { clientId?: string }).clientId).toBeUndefined();
    expect(describeStorage(system.connection)).toContain('the system-assigned managed identity');
  });

  it('the local service-principal triple (__tenantId, __clientId, __clientSecret) → ClientSecretCredential', () => {
    const c = build({ [`${S}__accountName`]: 'acct01', [`${S}__tenantId`]: 't', [`${S}__clientId`]: 'c', [`${S}__clientSecret`]: 'shh-secret' });
    expect(c.credential).toBeInstanceOf(ClientSecretCredential);
    expect(describeStorage(c.connection)).not.toContain('shh-secret');
  });

  it('refuses incomplete or wrong identity settings with the setting to fix', () => {
    const bad: Array<[NodeJS.ProcessEnv, RegExp]> = [
      [{}, /set AzureWebJobsStorage \(a connection string.*or the identity-based AzureWebJobsStorage__accountName/],
      [{ [`${S}__blobServiceUri`]: 'https://a.blob.core.windows.net' }, /AzureWebJobsStorage__queueServiceUri is not set: tidemark uses blobs, queues and tables/],
      [{ [`${S}__accountName`]: 'acct01', [`${S}__blobServiceUri`]: 'http://a.blob.core.windows.net' }, /AzureWebJobsStorage__blobServiceUri must use https/],
      [{ [`${S}__accountName`]: 'Not_An_Account' }, /3-24 lowercase letters and digits/],
      [{ [`${S}__accountName`]: 'acct01', [`${S}__credential`]: 'connectionstring' }, /AzureWebJobsStorage__credential must be "managedidentity"/],
    ];
    for (const [env, message] of bad) {
      const err = (() => {
        try {
          resolveStorageConnection(S, env);
        } catch (e) {
          return e;
        }
      })();
      expect(err, JSON.stringify(env)).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(message);
    }
  });

  it('the engine context builds its blob, queue and table ports on the identity clients', () => {
    const project = loadProject(makeProject({ pipelines: {} }));
    const ctx = createContext({ project, env: { [`${S}__accountName`]: 'tidemarkst01' }, sourceFor: defaultSourceFor, warehouseFor: defaultWarehouseFor });
    expect((ctx.blobs as AzureBlobStore).service.url).toBe('https://tidemarkst01.blob.core.windows.net/');
    expect(((ctx.blobs as AzureBlobStore).service as unknown as { credential: unknown }).credential).toBeInstanceOf(DefaultAzureCredential);
    expect((ctx.queues as AzureQueuePort).service.url).toBe('https://tidemarkst01.queue.core.windows.net');
    expect(((ctx.queues as AzureQueuePort).service as unknown as { credential: unknown }).credential).toBeInstanceOf(DefaultAzureCredential);
    // The table port builds its per-table clients on the same endpoint and credential.
    const tables = ctx.tables as AzureTableStore;
    const table = (tables as unknown as { client(name: string): TableClient }).client('runs');
    expect([table.url, table.tableName]).toEqual(['https://tidemarkst01.table.core.windows.net', 'runs']);
    expect((tables as unknown as { service: TableServiceClient }).service.url).toBe('https://tidemarkst01.table.core.windows.net');
  });

  it('no code but the factory builds a storage client: every path (engine, blob cache, housekeeping, UI data, doctor, local host, functions/, CLI, bench) gets them from shared/storage/clients.ts', () => {
    const root = join(import.meta.dirname, '../../..');
    const files = (dir: string): string[] =>
      readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : /\.(ts|mjs)$/.test(e.name) ? [join(dir, e.name)] : []));
    const builds = /\bfromConnectionString\(|new (BlobServiceClient|QueueServiceClient|TableServiceClient|TableClient|BlobClient|ContainerClient|QueueClient|StorageSharedKeyCredential|AzureNamedKeyCredential)\(/;
    const offenders = ['shared', 'cli', 'functions', 'bench', 'test/support']
      .flatMap(files)
      .filter((f) => f !== join('shared', 'storage', 'clients.ts') && builds.test(readFileSync(join(root, f), 'utf8')));
    expect(offenders).toEqual([]);
  });
});

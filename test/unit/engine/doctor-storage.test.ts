import { RestError } from '@azure/storage-blob';
import { describe, expect, it } from 'vitest';
import { loadProject } from '../../../shared/config/load.js';
import { runDoctor, STORAGE_ROLES, type DoctorCheck } from '../../../shared/engine/doctor.js';
import { createStorageClients, type StorageClients, type StorageConnection } from '../../../shared/storage/clients.js';
import { makeProject } from '../../support/project.js';

type Service = 'blob' | 'queue' | 'table';
/** `queue`: no role at all (even a read is refused); `queue:write`: a Reader role (reads pass, writes are refused). */
type Denial = Service | `${Service}:write`;

/**
 * No Azure RBAC runs here, so the storage SDK clients are replaced by a FAKE at the SDK boundary:
 * the real clients are built (endpoints, credential), and only their list and probe calls answer
 * as Azure Storage does for an identity without the role: HTTP 403 AuthorizationPermissionMismatch.
 * The same probes run on real Azurite in test/integration/doctor.test.ts.
 */
function fakeClients(denied: readonly Denial[], names: { containers: string[]; queues: string[]; tables: string[] }) {
  const calls: string[] = [];
  const refuse = () => {
    throw new RestError('This request is not authorized to perform this operation using this permission.', { statusCode: 403, code: 'AuthorizationPermissionMismatch' });
  };
  const listing = <T>(service: Service, items: T[]) =>
    async function* () {
      calls.push(`${service} list`);
      if (denied.includes(service)) refuse();
      yield* items;
    };
  const op = (service: Service, what: string, result: unknown = {}) => async () => {
    calls.push(`${service} ${what}`);
    if (denied.includes(service) || denied.includes(`${service}:write`)) refuse();
    return result;
  };
  const factory = (c: StorageConnection, env: NodeJS.ProcessEnv): StorageClients => {
    const real = createStorageClients(c, env);
    Object.assign(real.blob, {
      listContainers: listing('blob', names.containers.map((name) => ({ name }))),
      getContainerClient: (container: string) => ({
        createIfNotExists: op('blob', `create ${container}`),
        getBlockBlobClient: (name: string) => ({ upload: op('blob', `upload ${container}/${name.replace(/[^/]+$/, '…')}`), delete: op('blob', 'delete') }),
      }),
    });
    Object.assign(real.queue, {
      listQueues: listing('queue', names.queues.map((name) => ({ name }))),
      getQueueClient: (queue: string) => ({
        createIfNotExists: op('queue', `create ${queue}`),
        sendMessage: op('queue', 'send'),
        receiveMessages: op('queue', 'receive', { receivedMessageItems: [{ messageId: 'm1', popReceipt: 'p1' }] }),
        deleteMessage: op('queue', 'delete'),
      }),
    });
    Object.assign(real.table, { listTables: listing('table', names.tables.map((name) => ({ name }))), createTable: (t: string) => op('table', `create ${t}`)() });
    Object.assign(real, { tableClient: (t: string) => ({ upsertEntity: op('table', `upsert ${t}`), deleteEntity: op('table', 'delete') }) });
    return real;
  };
  return { factory, calls };
}

const ALL = {
  containers: ['raw', 'changes', 'state', 'quarantine', 'backups'],
  queues: ['extract', 'merge', 'validate', 'extract-poison', 'merge-poison', 'validate-poison'],
  tables: ['checkpoints', 'runs', 'validations', 'leases', 'backups'],
};

async function storageChecks(env: NodeJS.ProcessEnv, denied: readonly Denial[], calls?: string[]): Promise<DoctorCheck[]> {
  const fake = fakeClients(denied, ALL);
  const factory: typeof fake.factory = (c, e) => {
    const clients = fake.factory(c, e);
    calls?.push(...fake.calls);
    fake.calls.length = 0;
    return clients;
  };
  const checks = await runDoctor(loadProject(makeProject({ pipelines: {} })), { env, storageClients: factory, timeoutMs: 2000 });
  calls?.push(...fake.calls);
  return checks.filter((c) => c.area === 'storage');
}

describe('tidemark doctor: the storage credential and the roles it needs', () => {
  const identity = { AzureWebJobsStorage__accountName: 'tidemarkst01', AzureWebJobsStorage__credential: 'managedidentity' };

  it('names the identity-based credential and passes each role when every service answers a read and a write', async () => {
    const calls: string[] = [];
    const checks = await storageChecks(identity, [], calls);
    // What each role is proved by: a listing, then what the app itself does there.
    expect(calls).toEqual([
      'blob list',
      'blob create state',
      'blob upload state/_doctor/…',
      'blob delete',
      'queue list',
      'queue create tidemark-doctor',
      'queue send',
      'queue receive',
      'queue delete',
      'table list',
      'table create tidemarkdoctor',
      'table upsert tidemarkdoctor',
      'table delete',
    ]);
    expect(checks.find((c) => c.name === 'role Storage Queue Data Contributor')?.detail).toBe(
      'listed queues, sent, received and deleted a message on tidemark-doctor on storage account tidemarkst01',
    );
    expect(checks.find((c) => c.name === 'credential')).toEqual({
      area: 'storage',
      name: 'credential',
      status: 'ok',
      detail: 'identity-based (AzureWebJobsStorage__…): https://tidemarkst01.blob.core.windows.net with the system-assigned managed identity',
    });
    for (const role of Object.values(STORAGE_ROLES)) expect(checks.find((c) => c.name === `role ${role}`)?.status, role).toBe('ok');
    expect(checks.find((c) => c.name === 'AzureWebJobsStorage')?.status).toBe('ok');
    expect(checks.some((c) => c.status === 'fail')).toBe(false);
  });

  it('a missing role fails its check, naming the role and the scope, and the others still pass', async () => {
    const checks = await storageChecks(identity, ['queue']);
    const queue = checks.find((c) => c.name === 'role Storage Queue Data Contributor')!;
    expect(queue.status).toBe('fail');
    expect(queue.detail).toContain('the identity lacks Storage Queue Data Contributor on storage account tidemarkst01');
    expect(queue.detail).toContain('a read answered 403 from https://tidemarkst01.queue.core.windows.net');
    expect(queue.detail).toContain('az role assignment create --role "Storage Queue Data Contributor"');
    expect(checks.find((c) => c.name === 'role Storage Blob Data Owner')?.status).toBe('ok');
    expect(checks.find((c) => c.name === 'role Storage Table Data Contributor')?.status).toBe('ok');
    // Storage was not fully reached: no "reached" line and no layout verdict built on a partial listing.
    expect(checks.find((c) => c.name === 'AzureWebJobsStorage')).toBeUndefined();
    expect(checks.find((c) => c.name === 'layout')).toBeUndefined();
  });

  it('a read-only role (Storage Blob / Queue / Table Data Reader) fails the check: reads pass, the write is refused', async () => {
    for (const service of ['blob', 'queue', 'table'] as const) {
      const checks = await storageChecks(identity, [`${service}:write`]);
      const role = { blob: 'Storage Blob Data Owner', queue: 'Storage Queue Data Contributor', table: 'Storage Table Data Contributor' }[service];
      const failed = checks.filter((c) => c.status === 'fail');
      expect(failed.map((c) => c.name), service).toEqual([`role ${role}`]);
      expect(failed[0]!.detail).toContain(`the identity lacks ${role} on storage account tidemarkst01 (it can read ${service} data but a write answered 403`);
    }
  });

  it('a connection string: no write probe (the key can do everything; Azurite has no roles)', async () => {
    const calls: string[] = [];
    await storageChecks({ AzureWebJobsStorage: 'UseDevelopmentStorage=true' }, [], calls);
    expect(calls).toEqual(['blob list', 'queue list', 'table list']);
  });

  it('every role missing: three failures, one per role', async () => {
    const checks = await storageChecks(identity, ['blob', 'queue', 'table']);
    expect(checks.filter((c) => c.status === 'fail').map((c) => c.name)).toEqual([
      'role Storage Blob Data Owner',
      'role Storage Queue Data Contributor',
      'role Storage Table Data Contributor',
    ]);
  });

  it('a connection string to a real account is a warning (shared key), and its key is never shown', async () => {
    const cs = 'DefaultEndpointsProtocol=https;AccountName=tidemarkst01;AccountKey=S3cr3tKeyMarker000000000000000000==;EndpointSuffix=core.windows.net';
    const checks = await storageChecks({ AzureWebJobsStorage: cs }, []);
    const cred = checks.find((c) => c.name === 'credential')!;
    expect(cred.status).toBe('warn');
    expect(cred.detail).toContain('AzureWebJobsStorage__accountName');
    expect(JSON.stringify(checks)).not.toContain('S3cr3tKeyMarker');
  });

  it('no credential at all (no az login, no managed identity): one failure for the credential, not three for the roles', async () => {
    const factory = (c: StorageConnection, env: NodeJS.ProcessEnv): StorageClients => {
      const real = createStorageClients(c, env);
      const unavailable = async function* () {
        const err = new Error('DefaultAzureCredential failed to retrieve a token from the included credentials.');
        err.name = 'CredentialUnavailableError';
        throw err;
      };
      Object.assign(real.blob, { listContainers: unavailable });
      return real;
    };
    const checks = (await runDoctor(loadProject(makeProject({ pipelines: {} })), { env: { AzureWebJobsStorage__accountName: 'tidemarkst01' }, storageClients: factory, timeoutMs: 2000 })).filter(
      (c) => c.area === 'storage',
    );
    expect(checks.map((c) => [c.name, c.status])).toEqual([['credential', 'fail']]);
    expect(checks[0]!.detail).toContain('no token for https://tidemarkst01.blob.core.windows.net with DefaultAzureCredential');
    expect(checks[0]!.detail).toContain('az login');
  });

  it('incomplete identity settings fail with the setting to fix', async () => {
    const checks = await storageChecks({ AzureWebJobsStorage__blobServiceUri: 'https://a.blob.core.windows.net' }, []);
    expect(checks).toEqual([expect.objectContaining({ name: 'AzureWebJobsStorage', status: 'fail', detail: expect.stringContaining('AzureWebJobsStorage__queueServiceUri is not set') })]);
  });
});

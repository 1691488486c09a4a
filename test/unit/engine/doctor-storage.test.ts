import { RestError } from '@azure/storage-blob';
import { describe, expect, it } from 'vitest';
import { loadProject } from '../../../shared/config/load.js';
import { runDoctor, STORAGE_ROLES, type DoctorCheck } from '../../../shared/engine/doctor.js';
import { createStorageClients, type StorageClients, type StorageConnection } from '../../../shared/storage/clients.js';
import { makeProject } from '../../support/project.js';

/**
 * No Azure RBAC runs here, so the storage SDK clients are replaced by a FAKE at the SDK boundary:
 * the real clients are built (endpoints, credential), and only their list calls answer as
 * Azure Storage does for an identity without the role: HTTP 403 AuthorizationPermissionMismatch.
 */
function fakeClients(denied: ReadonlyArray<'blob' | 'queue' | 'table'>, names: { containers: string[]; queues: string[]; tables: string[] }) {
  const calls: string[] = [];
  const listing = <T>(service: 'blob' | 'queue' | 'table', items: T[]) =>
    async function* () {
      calls.push(service);
      if (denied.includes(service)) {
        throw new RestError('This request is not authorized to perform this operation using this permission.', { statusCode: 403, code: 'AuthorizationPermissionMismatch' });
      }
      yield* items;
    };
  const factory = (c: StorageConnection, env: NodeJS.ProcessEnv): StorageClients => {
    const real = createStorageClients(c, env);
    Object.assign(real.blob, { listContainers: listing('blob', names.containers.map((name) => ({ name }))) });
    Object.assign(real.queue, { listQueues: listing('queue', names.queues.map((name) => ({ name }))) });
    Object.assign(real.table, { listTables: listing('table', names.tables.map((name) => ({ name }))) });
    return real;
  };
  return { factory, calls };
}

const ALL = {
  containers: ['raw', 'changes', 'state', 'quarantine', 'backups'],
  queues: ['extract', 'merge', 'validate', 'extract-poison', 'merge-poison', 'validate-poison'],
  tables: ['checkpoints', 'runs', 'validations', 'leases', 'backups'],
};

async function storageChecks(env: NodeJS.ProcessEnv, denied: ReadonlyArray<'blob' | 'queue' | 'table'>): Promise<DoctorCheck[]> {
  const { factory } = fakeClients(denied, ALL);
  const checks = await runDoctor(loadProject(makeProject({ pipelines: {} })), { env, storageClients: factory, timeoutMs: 2000 });
  return checks.filter((c) => c.area === 'storage');
}

describe('tidemark doctor: the storage credential and the roles it needs', () => {
  const identity = { AzureWebJobsStorage__accountName: 'tidemarkst01', AzureWebJobsStorage__credential: 'managedidentity' };

  it('names the identity-based credential and passes each role when every service answers', async () => {
    const checks = await storageChecks(identity, []);
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
    expect(queue.detail).toContain('https://tidemarkst01.queue.core.windows.net answered 403');
    expect(queue.detail).toContain('az role assignment create --role "Storage Queue Data Contributor"');
    expect(checks.find((c) => c.name === 'role Storage Blob Data Owner')?.status).toBe('ok');
    expect(checks.find((c) => c.name === 'role Storage Table Data Contributor')?.status).toBe('ok');
    // Storage was not fully reached: no "reached" line and no layout verdict built on a partial listing.
    expect(checks.find((c) => c.name === 'AzureWebJobsStorage')).toBeUndefined();
    expect(checks.find((c) => c.name === 'layout')).toBeUndefined();
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

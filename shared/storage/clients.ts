import { ClientSecretCredential, DefaultAzureCredential, ManagedIdentityCredential, type TokenCredential } from '@azure/identity';
import { TableClient, TableServiceClient } from '@azure/data-tables';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import { ConfigError } from '../errors.js';
import { registerSecret } from '../telemetry/redact.js';
import { expandConnectionString, isLocalConnection } from './connection.js';

/**
 * How tidemark reaches its storage account: a connection string (Azurite, or an account whose
 * keys are allowed), or the Functions identity-based connection settings under the same name
 * (`<setting>__accountName`, or `__blobServiceUri` / `__queueServiceUri` / `__tableServiceUri`,
 * with `__credential` / `__clientId`), so the engine reads exactly what the host and the
 * triggers read.
 */
export type StorageConnection =
  | { kind: 'connectionString'; setting: string; connectionString: string; local: boolean }
  | {
      kind: 'identity';
      setting: string;
      blobUrl: string;
      queueUrl: string;
      tableUrl: string;
      /** managedIdentity: `__credential=managedidentity`; clientSecret: the local service-principal triple; default: DefaultAzureCredential. */
      credential: 'managedIdentity' | 'clientSecret' | 'default';
      clientId?: string;
      tenantId?: string;
    };

export interface StorageClients {
  connection: StorageConnection;
  blob: BlobServiceClient;
  queue: QueueServiceClient;
  table: TableServiceClient;
  /** A client for one table, with the same endpoint and credential. */
  tableClient(name: string): TableClient;
  /** The identity credential; undefined for a connection string. */
  credential?: TokenCredential;
}

const SERVICES = ['blob', 'queue', 'table'] as const;

function httpsUrl(setting: string, value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch (err) {
    throw new ConfigError('settings', setting, `${setting} must be a URL like https://<account>.blob.core.windows.net, got ${JSON.stringify(value)}`, { cause: err });
  }
  if (u.protocol !== 'https:') throw new ConfigError('settings', setting, `${setting} must use https (an identity token is never sent over http), got ${u.protocol}`);
  return value.replace(/\/+$/, '');
}

/** A connection string given directly (tests, the local stack's Azurite). */
export function connectionStringStorage(setting: string, connectionString: string): StorageConnection {
  const cs = expandConnectionString(connectionString);
  const local = isLocalConnection(cs);
  // A real account's key or SAS is masked wherever an SDK error might echo it (Azurite's key is public).
  if (!local) registerSecret(connectionString);
  return { kind: 'connectionString', setting, connectionString: cs, local };
}

/** Reads the storage settings named `setting` (tidemark.yaml `storage:`, default AzureWebJobsStorage). */
export function resolveStorageConnection(setting: string, env: NodeJS.ProcessEnv): StorageConnection {
  const plain = env[setting];
  if (plain !== undefined && plain !== '') return connectionStringStorage(setting, plain);
  const get = (suffix: string) => {
    const v = env[`${setting}__${suffix}`];
    return v === undefined || v === '' ? undefined : v;
  };
  const account = get('accountName');
  const uris = Object.fromEntries(SERVICES.map((s) => [s, get(`${s}ServiceUri`)])) as Record<(typeof SERVICES)[number], string | undefined>;
  if (!account && !SERVICES.some((s) => uris[s])) {
    throw new ConfigError(
      'settings',
      setting,
      `storage is not configured: set ${setting} (a connection string; UseDevelopmentStorage=true for Azurite) or the identity-based ${setting}__accountName (or ${setting}__blobServiceUri, __queueServiceUri and __tableServiceUri)`,
    );
  }
  if (account !== undefined && !/^[a-z0-9]{3,24}$/.test(account)) {
    throw new ConfigError('settings', `${setting}__accountName`, `${setting}__accountName must be a storage account name (3-24 lowercase letters and digits), got ${JSON.stringify(account)}`);
  }
  const url = (s: (typeof SERVICES)[number]): string => {
    const explicit = uris[s];
    if (explicit) return httpsUrl(`${setting}__${s}ServiceUri`, explicit);
    if (account) return `https://${account}.${s}.core.windows.net`;
    // The engine uses all three services; the host alone would accept blob + queue, tidemark cannot.
    throw new ConfigError(
      'settings',
      `${setting}__${s}ServiceUri`,
      `${setting}__${s}ServiceUri is not set: tidemark uses blobs, queues and tables, so set all three service URIs, or ${setting}__accountName`,
    );
  };
  const credentialSetting = get('credential');
  const clientId = get('clientId');
  const tenantId = get('tenantId');
  const base = { kind: 'identity' as const, setting, blobUrl: url('blob'), queueUrl: url('queue'), tableUrl: url('table') };
  if (credentialSetting !== undefined) {
    if (credentialSetting.toLowerCase() !== 'managedidentity') {
      throw new ConfigError('settings', `${setting}__credential`, `${setting}__credential must be "managedidentity" (or unset for DefaultAzureCredential), got ${JSON.stringify(credentialSetting)}`);
    }
    return { ...base, credential: 'managedIdentity', ...(clientId ? { clientId } : {}) };
  }
  // Local development with a service principal, as the Functions host reads it (never in Azure).
  registerSecret(get('clientSecret'));
  if (clientId && tenantId && get('clientSecret')) return { ...base, credential: 'clientSecret', clientId, tenantId };
  return { ...base, credential: 'default' };
}

function credentialFor(c: Extract<StorageConnection, { kind: 'identity' }>, env: NodeJS.ProcessEnv): TokenCredential {
  switch (c.credential) {
    case 'managedIdentity':
      return c.clientId ? new ManagedIdentityCredential({ clientId: c.clientId }) : new ManagedIdentityCredential();
    case 'clientSecret':
      return new ClientSecretCredential(c.tenantId!, c.clientId!, env[`${c.setting}__clientSecret`]!);
    case 'default':
      return new DefaultAzureCredential();
  }
}

/** The one place every storage client of the engine, the local host and doctor is built. */
export function createStorageClients(c: StorageConnection, env: NodeJS.ProcessEnv): StorageClients {
  if (c.kind === 'connectionString') {
    const cs = c.connectionString;
    const allowInsecureConnection = /^DefaultEndpointsProtocol=http;|TableEndpoint=http:/i.test(cs);
    return {
      connection: c,
      blob: BlobServiceClient.fromConnectionString(cs),
      queue: QueueServiceClient.fromConnectionString(cs),
      table: TableServiceClient.fromConnectionString(cs, { allowInsecureConnection }),
      tableClient: (name) => TableClient.fromConnectionString(cs, name, { allowInsecureConnection }),
    };
  }
  const credential = credentialFor(c, env);
  return {
    connection: c,
    credential,
    blob: new BlobServiceClient(c.blobUrl, credential),
    queue: new QueueServiceClient(c.queueUrl, credential),
    table: new TableServiceClient(c.tableUrl, credential),
    tableClient: (name) => new TableClient(c.tableUrl, name, credential),
  };
}

/** For messages: where storage is and how tidemark authenticates, never a key. */
export function describeStorage(c: StorageConnection): string {
  if (c.kind === 'connectionString') {
    const where = /BlobEndpoint=([^;]+)/i.exec(c.connectionString)?.[1] ?? `account ${/AccountName=([^;]+)/i.exec(c.connectionString)?.[1] ?? '?'}`;
    return `${where} with a connection string (${c.setting}${c.local ? ', local emulator' : ', shared key'})`;
  }
  const how =
    c.credential === 'managedIdentity'
      ? c.clientId
        ? `the user-assigned managed identity ${c.clientId}`
        : 'the system-assigned managed identity'
      : c.credential === 'clientSecret'
        ? `the service principal ${c.clientId} (${c.setting}__clientSecret)`
        : 'DefaultAzureCredential (environment, workload or managed identity, az login)';
  return `${c.blobUrl} with ${how}`;
}

/**
 * Storage connection strings. `UseDevelopmentStorage=true` is expanded to Azurite's well-known
 * development account so every SDK client (blob, queue, table) gets explicit endpoints.
 */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
// Azurite's published development key: public by design, not a secret.
export const AZURITE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuritePorts {
  blob: number;
  queue: number;
  table: number;
  host?: string;
}

export function azuriteConnectionString(p: AzuritePorts): string {
  const h = p.host ?? '127.0.0.1';
  return [
    'DefaultEndpointsProtocol=http',
    `AccountName=${AZURITE_ACCOUNT}`,
    `AccountKey=${AZURITE_KEY}`,
    `BlobEndpoint=http://${h}:${p.blob}/${AZURITE_ACCOUNT}`,
    `QueueEndpoint=http://${h}:${p.queue}/${AZURITE_ACCOUNT}`,
    `TableEndpoint=http://${h}:${p.table}/${AZURITE_ACCOUNT}`,
  ].join(';');
}

export function expandConnectionString(cs: string): string {
  if (/^\s*UseDevelopmentStorage=true\s*;?\s*$/i.test(cs)) {
    return azuriteConnectionString({ blob: 10000, queue: 10001, table: 10002 });
  }
  return cs;
}

export function isLocalConnection(cs: string): boolean {
  return /UseDevelopmentStorage=true|127\.0\.0\.1|localhost/i.test(cs);
}

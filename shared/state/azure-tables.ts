import { RestError, odata, type TableClient, type TableServiceClient } from '@azure/data-tables';
import { ConflictError } from '../errors.js';
import type { StorageClients } from '../storage/clients.js';
import type { StoredEntity, TableEntity, TableStore } from '../storage/ports.js';

function status(err: unknown): number | undefined {
  return err instanceof RestError ? err.statusCode : (err as { statusCode?: number })?.statusCode;
}

/**
 * Table Storage columns are flat primitives; nested objects (counts, timings) are stored as JSON
 * strings in fields suffixed `Json` and decoded on read.
 */
function encode(entity: TableEntity): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(entity)) {
    if (v === undefined) continue;
    if (v !== null && typeof v === 'object' && !(v instanceof Date)) out[`${k}Json`] = JSON.stringify(v);
    else out[k] = v;
  }
  return out;
}

function decode<T>(raw: Record<string, unknown>): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (k === 'etag' || k === 'odata.etag' || k === 'timestamp') continue;
    if (k.endsWith('Json') && typeof v === 'string') out[k.slice(0, -4)] = JSON.parse(v);
    else out[k] = v;
  }
  return out as T;
}

export class AzureTableStore implements TableStore {
  private readonly clients = new Map<string, TableClient>();
  private readonly service: TableServiceClient;
  private readonly makeClient: (table: string) => TableClient;

  /** The table clients of shared/storage/clients.ts: the one place storage clients are built (connection string or identity). */
  constructor(from: Pick<StorageClients, 'table' | 'tableClient'>) {
    this.service = from.table;
    this.makeClient = from.tableClient;
  }

  private client(table: string): TableClient {
    let c = this.clients.get(table);
    if (!c) {
      c = this.makeClient(table);
      this.clients.set(table, c);
    }
    return c;
  }

  async ensureTables(names: readonly string[]): Promise<void> {
    await Promise.all(names.map((n) => this.service.createTable(n)));
  }

  async get<T extends TableEntity>(table: string, partitionKey: string, rowKey: string): Promise<StoredEntity<T> | undefined> {
    try {
      const e = await this.client(table).getEntity<Record<string, unknown>>(partitionKey, rowKey);
      return { entity: decode<T>(e), etag: e.etag };
    } catch (err) {
      if (status(err) === 404) return undefined;
      throw err;
    }
  }

  async insert(table: string, entity: TableEntity): Promise<{ etag: string }> {
    try {
      const r = await this.client(table).createEntity(encode(entity) as TableEntity);
      return { etag: r.etag ?? '' };
    } catch (err) {
      if (status(err) === 409) throw new ConflictError(`${table}/${entity.partitionKey}/${entity.rowKey} exists`, { cause: err });
      throw err;
    }
  }

  async replace(table: string, entity: TableEntity, etag: string): Promise<{ etag: string }> {
    try {
      const r = await this.client(table).updateEntity(encode(entity) as TableEntity, 'Replace', { etag });
      return { etag: r.etag ?? '' };
    } catch (err) {
      if (status(err) === 412 || status(err) === 404) {
        throw new ConflictError(`${table}/${entity.partitionKey}/${entity.rowKey} changed concurrently`, { cause: err });
      }
      throw err;
    }
  }

  async upsert(table: string, entity: TableEntity): Promise<{ etag: string }> {
    const r = await this.client(table).upsertEntity(encode(entity) as TableEntity, 'Replace');
    return { etag: r.etag ?? '' };
  }

  async list<T extends TableEntity>(table: string, partitionKey: string): Promise<T[]> {
    const out: T[] = [];
    const iter = this.client(table).listEntities<Record<string, unknown>>({
      queryOptions: { filter: odata`PartitionKey eq ${partitionKey}` },
    });
    for await (const e of iter) out.push(decode<T>(e));
    return out;
  }

  async delete(table: string, partitionKey: string, rowKey: string, etag?: string): Promise<void> {
    try {
      await this.client(table).deleteEntity(partitionKey, rowKey, etag ? { etag } : undefined);
    } catch (err) {
      if (status(err) === 404) return;
      if (status(err) === 412) throw new ConflictError(`${table}/${partitionKey}/${rowKey} changed concurrently`, { cause: err });
      throw err;
    }
  }
}

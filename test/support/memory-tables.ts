import { ConflictError } from '../../shared/errors.js';
import type { StoredEntity, TableEntity, TableStore } from '../../shared/storage/ports.js';

/**
 * Table Storage semantics in memory (insert conflicts, ETag-checked replace and delete), for
 * unit tests of the state logic. Integration tests use Azurite; this only keeps the pure
 * concurrency rules testable without it.
 */
export class MemoryTables implements TableStore {
  private readonly rows = new Map<string, { entity: TableEntity; etag: string }>();
  private n = 0;

  private k(t: string, pk: string, rk: string) {
    return `${t}\u0000${pk}\u0000${rk}`;
  }
  private tag() {
    return `W/"${++this.n}"`;
  }
  async ensureTables(): Promise<void> {}
  async get<T extends TableEntity>(t: string, pk: string, rk: string): Promise<StoredEntity<T> | undefined> {
    const r = this.rows.get(this.k(t, pk, rk));
    return r ? { entity: structuredClone(r.entity) as T, etag: r.etag } : undefined;
  }
  async insert(t: string, e: TableEntity): Promise<{ etag: string }> {
    const key = this.k(t, e.partitionKey, e.rowKey);
    if (this.rows.has(key)) throw new ConflictError(`${key} exists`);
    const etag = this.tag();
    this.rows.set(key, { entity: structuredClone(e), etag });
    return { etag };
  }
  async replace(t: string, e: TableEntity, etag: string): Promise<{ etag: string }> {
    const key = this.k(t, e.partitionKey, e.rowKey);
    const r = this.rows.get(key);
    if (!r || r.etag !== etag) throw new ConflictError(`${key} changed concurrently`);
    const next = this.tag();
    this.rows.set(key, { entity: structuredClone(e), etag: next });
    return { etag: next };
  }
  async upsert(t: string, e: TableEntity): Promise<{ etag: string }> {
    const etag = this.tag();
    this.rows.set(this.k(t, e.partitionKey, e.rowKey), { entity: structuredClone(e), etag });
    return { etag };
  }
  async list<T extends TableEntity>(t: string, pk: string): Promise<T[]> {
    return [...this.rows.entries()].filter(([k]) => k.startsWith(`${t}\u0000${pk}\u0000`)).map(([, r]) => structuredClone(r.entity) as T);
  }
  async delete(t: string, pk: string, rk: string, etag?: string): Promise<void> {
    const key = this.k(t, pk, rk);
    const r = this.rows.get(key);
    if (!r) return;
    if (etag && r.etag !== etag) throw new ConflictError(`${key} changed concurrently`);
    this.rows.delete(key);
  }
}

import type { StoredEntity, TableEntity, TableStore } from '../storage/ports.js';

/**
 * The last version of a row this process read or wrote (entity and ETag), per table store, so
 * that the next ETag-guarded write of it can be attempted without reading it again (issue #19:
 * a no-change run read its run record before every one of its eleven writes).
 *
 * It is only ever a guess at the row's current version, never a source of truth: a write made
 * against it is conditional on its ETag, so if anything wrote the row since (another worker, a
 * cancel, a duplicate delivery, this process before a crash), the write fails with 412 and the
 * caller reads the row and decides again, exactly as it does when a fresh read went stale
 * before its write. A decision that writes nothing (a refused transition, a lease that is not
 * ours) must not be taken on a remembered version: callers re-read before they take it.
 *
 * Kept per TableStore instance (one process's storage; a simulated new process gets a new one)
 * and bounded: a long-lived Functions host forgets the oldest rows first.
 */
const LIMIT = 256;
const byStore = new WeakMap<TableStore, Map<string, StoredEntity<TableEntity>>>();

const keyOf = (table: string, partitionKey: string, rowKey: string) => `${table}\u0000${partitionKey}\u0000${rowKey}`;

/** The version of the row this process saw last, if any (a copy: callers may mutate it). */
export function recall<T extends TableEntity>(tables: TableStore, table: string, partitionKey: string, rowKey: string): StoredEntity<T> | undefined {
  const v = byStore.get(tables)?.get(keyOf(table, partitionKey, rowKey));
  return v ? { entity: structuredClone(v.entity) as T, etag: v.etag } : undefined;
}

/** Remembers a version just read or written; an empty ETag (a store that returned none) is not remembered. */
export function remember(tables: TableStore, table: string, stored: StoredEntity<TableEntity>): void {
  const key = keyOf(table, stored.entity.partitionKey, stored.entity.rowKey);
  let m = byStore.get(tables);
  if (!m) {
    m = new Map();
    byStore.set(tables, m);
  }
  m.delete(key);
  if (!stored.etag) return;
  m.set(key, { entity: structuredClone(stored.entity), etag: stored.etag });
  if (m.size > LIMIT) m.delete(m.keys().next().value!);
}

/** Forgets a row (deleted, or found changed). */
export function forget(tables: TableStore, table: string, partitionKey: string, rowKey: string): void {
  byStore.get(tables)?.delete(keyOf(table, partitionKey, rowKey));
}

/**
 * Small I/O ports. The engine only talks to storage through these, so the same code runs on
 * Azure Storage, on Azurite, and under fault-injecting wrappers in the reliability tests.
 */
export interface BlobItem {
  name: string;
  etag: string;
  size: number;
}

export interface BlobStore {
  ensureContainers(names: readonly string[]): Promise<void>;
  /** Streams a local file up in blocks; never buffers the whole file. `md5` is of the bytes sent. */
  uploadFile(container: string, name: string, localPath: string): Promise<{ etag: string; bytes: number; md5: string }>;
  /** Streams a blob to a local file. */
  downloadToFile(container: string, name: string, localPath: string): Promise<void>;
  putText(container: string, name: string, text: string): Promise<{ etag: string }>;
  /** undefined when the blob does not exist. */
  getText(container: string, name: string): Promise<string | undefined>;
  exists(container: string, name: string): Promise<boolean>;
  list(container: string, prefix: string): AsyncIterable<BlobItem>;
  deletePrefix(container: string, prefix: string): Promise<number>;
}

export interface QueuePort {
  ensureQueues(names: readonly string[]): Promise<void>;
  send(queue: string, body: unknown, options?: { visibilityTimeoutSeconds?: number }): Promise<void>;
}

export interface TableEntity {
  partitionKey: string;
  rowKey: string;
  [field: string]: unknown;
}

export interface StoredEntity<T extends TableEntity = TableEntity> {
  entity: T;
  etag: string;
}

export interface TableStore {
  ensureTables(names: readonly string[]): Promise<void>;
  get<T extends TableEntity>(table: string, partitionKey: string, rowKey: string): Promise<StoredEntity<T> | undefined>;
  /** Fails with ConflictError when the entity exists. */
  insert(table: string, entity: TableEntity): Promise<{ etag: string }>;
  /** Replaces when the etag still matches; ConflictError otherwise (optimistic concurrency). */
  replace(table: string, entity: TableEntity, etag: string): Promise<{ etag: string }>;
  upsert(table: string, entity: TableEntity): Promise<{ etag: string }>;
  list<T extends TableEntity>(table: string, partitionKey: string): Promise<T[]>;
  delete(table: string, partitionKey: string, rowKey: string, etag?: string): Promise<void>;
}

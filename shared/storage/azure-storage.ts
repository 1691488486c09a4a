import { RestError, type BlobServiceClient } from '@azure/storage-blob';
import type { QueueServiceClient } from '@azure/storage-queue';
import { BlockSlots, uploadFileInBlocks } from './block-upload.js';
import type { BlobItem, BlobStore, QueuePort } from './ports.js';

const BLOCK_SIZE = 8 * 1024 * 1024;

/**
 * Blocks in flight for the whole process (every store, every file: a transform's changes and
 * snapshot uploads, an extract's parts, other runs of the same host), so uploads hold at most
 * 8 × 8 MiB in memory and never starve the DuckDB work they overlap of cores and memory.
 */
const PROCESS_BLOCK_SLOTS = new BlockSlots(8);

export interface BlockUploadOptions {
  blockSize: number;
  slots: BlockSlots;
}

function isNotFound(err: unknown): boolean {
  return err instanceof RestError ? err.statusCode === 404 : (err as { statusCode?: number })?.statusCode === 404;
}

export class AzureBlobStore implements BlobStore {
  readonly service: BlobServiceClient;

  private readonly upload: BlockUploadOptions;

  /** A service client from shared/storage/clients.ts: the one place storage clients are built (connection string or identity). */
  constructor(service: BlobServiceClient, upload: Partial<BlockUploadOptions> = {}) {
    this.service = service;
    this.upload = { blockSize: upload.blockSize ?? BLOCK_SIZE, slots: upload.slots ?? PROCESS_BLOCK_SLOTS };
  }

  private blob(container: string, name: string) {
    return this.service.getContainerClient(container).getBlockBlobClient(name);
  }

  async ensureContainers(names: readonly string[]): Promise<void> {
    await Promise.all(names.map((n) => this.service.getContainerClient(n).createIfNotExists()));
  }

  /** Streams the file up in blocks, a bounded number in flight (block-upload.ts); one read of the file, md5 included. */
  async uploadFile(container: string, name: string, localPath: string): Promise<{ etag: string; bytes: number; md5: string }> {
    return uploadFileInBlocks(this.blob(container, name), localPath, { ...this.upload, contentType: 'application/vnd.apache.parquet' });
  }

  async downloadToFile(container: string, name: string, localPath: string): Promise<void> {
    await this.blob(container, name).downloadToFile(localPath);
  }

  async putText(container: string, name: string, text: string): Promise<{ etag: string }> {
    const body = Buffer.from(text, 'utf8');
    const res = await this.blob(container, name).upload(body, body.length, {
      blobHTTPHeaders: { blobContentType: 'application/json' },
    });
    return { etag: res.etag ?? '' };
  }

  async getText(container: string, name: string): Promise<string | undefined> {
    try {
      const buf = await this.blob(container, name).downloadToBuffer();
      return buf.toString('utf8');
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async exists(container: string, name: string): Promise<boolean> {
    return this.blob(container, name).exists();
  }

  async *list(container: string, prefix: string): AsyncIterable<BlobItem> {
    try {
      for await (const b of this.service.getContainerClient(container).listBlobsFlat({ prefix })) {
        yield { name: b.name, etag: b.properties.etag ?? '', size: b.properties.contentLength ?? 0 };
      }
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
  }

  async deletePrefix(container: string, prefix: string): Promise<number> {
    let n = 0;
    for await (const b of this.list(container, prefix)) {
      await this.service.getContainerClient(container).deleteBlob(b.name, { deleteSnapshots: 'include' }).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
      n++;
    }
    return n;
  }
}

export class AzureQueuePort implements QueuePort {
  readonly service: QueueServiceClient;

  /** A service client from shared/storage/clients.ts. */
  constructor(service: QueueServiceClient) {
    this.service = service;
  }

  async ensureQueues(names: readonly string[]): Promise<void> {
    await Promise.all(names.map((n) => this.service.getQueueClient(n).createIfNotExists()));
  }

  /** Base64 JSON: what the Functions queue trigger expects with messageEncoding "base64". */
  async send(queue: string, body: unknown, options?: { visibilityTimeoutSeconds?: number }): Promise<void> {
    const text = Buffer.from(JSON.stringify(body), 'utf8').toString('base64');
    await this.service.getQueueClient(queue).sendMessage(text, {
      visibilityTimeout: options?.visibilityTimeoutSeconds,
    });
  }
}

export function decodeQueueMessage(text: string): unknown {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) return JSON.parse(trimmed);
  return JSON.parse(Buffer.from(trimmed, 'base64').toString('utf8'));
}

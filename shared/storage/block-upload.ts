import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';

/**
 * The calls of a block blob an upload makes; `BlockBlobClient` of @azure/storage-blob has this
 * shape, and a test passes a recording fake.
 */
export interface BlockTarget {
  upload(body: Buffer, contentLength: number, options: { blobHTTPHeaders: BlobHeaders }): Promise<{ etag?: string }>;
  stageBlock(blockId: string, body: Buffer, contentLength: number): Promise<unknown>;
  commitBlockList(blocks: string[], options: { blobHTTPHeaders: BlobHeaders }): Promise<{ etag?: string }>;
}

export interface BlobHeaders {
  blobContentType: string;
  blobContentMD5: Uint8Array;
}

/** "Put Block": a block blob holds at most 50 000 committed blocks. */
export const MAX_BLOCKS = 50_000;

/**
 * Slots for blocks in flight, taken in arrival order and shared by every upload that holds the
 * same instance: a block's bytes are read into memory only once it has a slot, so the memory
 * of all uploads together is at most `size` blocks, however many files go up at once.
 */
export class BlockSlots {
  private free: number;
  private readonly waiting: Array<() => void> = [];
  /** The most slots ever taken at once (for tests and logs). */
  peak = 0;

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`block slots must be a positive integer, got ${size}`);
    this.free = size;
  }

  async acquire(): Promise<void> {
    if (this.free > 0) this.free -= 1;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.peak = Math.max(this.peak, this.size - this.free);
  }

  release(): void {
    const next = this.waiting.shift();
    // The slot passes straight to the next waiter, so `free` stays as it is.
    if (next) next();
    else this.free += 1;
  }
}

async function readExactly(fh: FileHandle, position: number, length: number, path: string): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) throw new Error(`${path} became shorter while it was uploaded (${position + done} of ${position + length} bytes read)`);
    done += bytesRead;
  }
  return buf;
}

/**
 * Uploads a local file to a block blob, reading it once: a file of at most one block goes up in
 * a single Put Blob; a bigger one as blocks, each read when a slot is free and staged while the
 * next ones are read, then one Put Block List. The md5 is taken from the bytes as they are read
 * (in file order) and stored as the blob's Content-MD5. A failed block stops the reading; the
 * blocks already in flight settle before the error is thrown, and nothing is committed (staged
 * blocks that are never committed are discarded by the service).
 */
export async function uploadFileInBlocks(
  target: BlockTarget,
  path: string,
  o: { blockSize: number; slots: BlockSlots; contentType: string },
): Promise<{ etag: string; bytes: number; md5: string }> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const hash = createHash('md5');
    if (size <= o.blockSize) {
      await o.slots.acquire();
      try {
        const body = await readExactly(fh, 0, size, path);
        const md5 = hash.update(body).digest();
        const res = await target.upload(body, size, { blobHTTPHeaders: { blobContentType: o.contentType, blobContentMD5: md5 } });
        return { etag: res.etag ?? '', bytes: size, md5: md5.toString('hex') };
      } finally {
        o.slots.release();
      }
    }
    // Past 50 000 blocks of the configured size (400 GB at 8 MiB), the blocks grow instead.
    const blockSize = Math.max(o.blockSize, Math.ceil(size / MAX_BLOCKS));
    const count = Math.ceil(size / blockSize);
    // Every id of a blob has the same length ("Put Block"), base64 of a fixed-width number.
    const ids = Array.from({ length: count }, (_, i) => Buffer.from(`tm-${String(i).padStart(6, '0')}`).toString('base64'));
    const inFlight = new Set<Promise<void>>();
    let failure: { error: unknown } | undefined;
    for (let i = 0; i < count && !failure; i++) {
      await o.slots.acquire();
      if (failure) {
        o.slots.release();
        break;
      }
      let body: Buffer;
      try {
        body = await readExactly(fh, i * blockSize, Math.min(blockSize, size - i * blockSize), path);
      } catch (error) {
        o.slots.release();
        failure = { error };
        break;
      }
      hash.update(body);
      const staged: Promise<void> = target.stageBlock(ids[i]!, body, body.length).then(
        () => undefined,
        (error: unknown) => {
          failure ??= { error };
        },
      );
      const tracked = staged.finally(() => {
        o.slots.release();
        inFlight.delete(tracked);
      });
      inFlight.add(tracked);
    }
    await Promise.all(inFlight);
    if (failure) throw failure.error;
    const md5 = hash.digest();
    const res = await target.commitBlockList(ids, { blobHTTPHeaders: { blobContentType: o.contentType, blobContentMD5: md5 } });
    return { etag: res.etag ?? '', bytes: size, md5: md5.toString('hex') };
  } finally {
    await fh.close();
  }
}

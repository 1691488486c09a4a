import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlockBlobClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AzuriteHandle } from '../../../shared/local/azurite.js';
import { AzureBlobStore } from '../../../shared/storage/azure-storage.js';
import { BlockSlots } from '../../../shared/storage/block-upload.js';
import { withAzurite } from '../../support/azurite.js';
import { storageOf } from '../../support/storage-clients.js';

// The real client against Azurite: the Put Block calls are counted (and slowed a little, so
// that they overlap) by wrapping BlockBlobClient.stageBlock; the requests still reach Azurite.
describe('AzureBlobStore.uploadFile on Azurite: blocks, bounded in flight, the bytes and md5 intact', () => {
  let az: AzuriteHandle;
  const dir = mkdtempSync(join(tmpdir(), 'tm-upload-'));
  beforeAll(async () => {
    az = await withAzurite();
  }, 60_000);
  afterAll(async () => {
    vi.restoreAllMocks();
    await az?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stages the blocks of two files at once under one bound, commits each, and stores what was read', async () => {
    const slots = new BlockSlots(3);
    const store = new AzureBlobStore(storageOf(az.connectionString).clients.blob, { blockSize: 64 * 1024, slots });
    await store.ensureContainers(['changes']);
    let inFlight = 0;
    let peak = 0;
    let staged = 0;
    const original = BlockBlobClient.prototype.stageBlock;
    const spy = vi.spyOn(BlockBlobClient.prototype, 'stageBlock').mockImplementation(async function (this: BlockBlobClient, ...args) {
      inFlight++;
      staged++;
      peak = Math.max(peak, inFlight);
      try {
        await new Promise((r) => setTimeout(r, 20));
        return await original.apply(this, args);
      } finally {
        inFlight--;
      }
    });
    const files = [
      ['a/changes.parquet', 10 * 64 * 1024 + 5],
      ['b/snapshot.parquet', 6 * 64 * 1024],
      ['c/small.parquet', 1000],
    ] as const;
    const data = files.map(([name, n]) => {
      const d = randomBytes(n);
      writeFileSync(join(dir, name.replace('/', '-')), d);
      return d;
    });
    const results = await Promise.all(files.map(([name]) => store.uploadFile('changes', name, join(dir, name.replace('/', '-')))));
    spy.mockRestore();
    // 11 + 6 blocks; the small file is one Put Blob.
    expect(staged).toBe(17);
    expect(peak).toBeLessThanOrEqual(3);
    expect(peak).toBeGreaterThanOrEqual(2);
    for (const [i, [name]] of files.entries()) {
      const md5 = createHash('md5').update(data[i]!).digest('hex');
      expect(results[i]).toMatchObject({ bytes: data[i]!.length, md5 });
      const back = join(dir, `back-${i}`);
      await store.downloadToFile('changes', name, back);
      expect(readFileSync(back).equals(data[i]!)).toBe(true);
      const props = await store.service.getContainerClient('changes').getBlockBlobClient(name).getProperties();
      expect(Buffer.from(props.contentMD5!).toString('hex')).toBe(md5);
      expect(props.contentType).toBe('application/vnd.apache.parquet');
    }
  }, 60_000);
});

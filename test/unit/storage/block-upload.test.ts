import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BlockSlots, uploadFileInBlocks, type BlobHeaders, type BlockTarget } from '../../../shared/storage/block-upload.js';

/**
 * FAKE BLOB CLIENT: records the exact calls an upload makes and holds each Put Block open until
 * the test lets it go, so the number of blocks in flight is observed, not timed. The real client
 * against Azurite is in test/integration/storage/block-upload.test.ts.
 */
class RecordingBlob implements BlockTarget {
  readonly calls: string[] = [];
  readonly staged = new Map<string, Buffer>();
  committed: { ids: string[]; headers: BlobHeaders } | undefined;
  inFlight = 0;
  peak = 0;
  private readonly open: Array<() => void> = [];

  constructor(
    private readonly shared: { inFlight: number; peak: number } = { inFlight: 0, peak: 0 },
    private readonly failBlock?: number,
  ) {}

  async upload(body: Buffer, length: number, o: { blobHTTPHeaders: BlobHeaders }) {
    this.calls.push(`put ${length}`);
    this.committed = { ids: [], headers: o.blobHTTPHeaders };
    this.staged.set('whole', Buffer.from(body));
    return { etag: '"e1"' };
  }

  async stageBlock(id: string, body: Buffer, length: number) {
    const n = this.calls.filter((c) => c.startsWith('block')).length;
    this.calls.push(`block ${Buffer.from(id, 'base64').toString()} ${length}`);
    this.inFlight++;
    this.shared.inFlight++;
    this.peak = Math.max(this.peak, this.inFlight);
    this.shared.peak = Math.max(this.shared.peak, this.shared.inFlight);
    await new Promise<void>((resolve) => this.open.push(resolve));
    this.inFlight--;
    this.shared.inFlight--;
    if (n === this.failBlock) throw Object.assign(new Error('The specified block is invalid (simulated)'), { statusCode: 400 });
    this.staged.set(id, Buffer.from(body));
    return {};
  }

  async commitBlockList(ids: string[], o: { blobHTTPHeaders: BlobHeaders }) {
    this.calls.push(`commit ${ids.length}`);
    this.committed = { ids, headers: o.blobHTTPHeaders };
    return { etag: '"e2"' };
  }

  /** Lets the oldest open Put Block finish; false when none is open. */
  finishOne(): boolean {
    const next = this.open.shift();
    next?.();
    return next !== undefined;
  }

  bytes(): Buffer {
    return this.committed!.ids.length ? Buffer.concat(this.committed!.ids.map((id) => this.staged.get(id)!)) : this.staged.get('whole')!;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'tm-blocks-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, bytes: number): { path: string; data: Buffer } => {
  const data = randomBytes(bytes);
  const path = join(dir, name);
  writeFileSync(path, data);
  return { path, data };
};
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Drives uploads: lets the oldest open block finish once `bound` blocks are in flight (the
 * uploads are waiting for a slot), or once nothing moved for 50 ms (the last blocks of a file).
 */
async function drive<T>(blobs: RecordingBlob[], bound: number, upload: Promise<T>): Promise<T> {
  let settled = false;
  const done = upload.finally(() => (settled = true));
  done.catch(() => undefined);
  let last = -1;
  let still = 0;
  while (!settled) {
    await sleep(1);
    const inFlight = blobs.reduce((a, b) => a + b.inFlight, 0);
    const calls = blobs.reduce((a, b) => a + b.calls.length, 0);
    still = calls === last ? still + 1 : 0;
    last = calls;
    if (inFlight >= bound || still >= 50) {
      const oldest = blobs.find((b) => b.inFlight > 0);
      oldest?.finishOne();
      still = 0;
    }
  }
  return done;
}

describe('block uploads: one read of the file, a bounded number of blocks in flight', () => {
  it('a file bigger than a block goes up as blocks, never more than the slots in flight, then one commit in file order', async () => {
    const { path, data } = file('big.bin', 10 * 1000 + 7);
    const blob = new RecordingBlob();
    const slots = new BlockSlots(3);
    const res = await drive([blob], 3, uploadFileInBlocks(blob, path, { blockSize: 1000, slots, contentType: 'application/vnd.apache.parquet' }));
    expect(blob.calls).toEqual([...Array.from({ length: 10 }, (_, i) => `block tm-${String(i).padStart(6, '0')} 1000`), 'block tm-000010 7', 'commit 11']);
    // Overlapped (three at once), and never more than three.
    expect(blob.peak).toBe(3);
    expect(slots.peak).toBe(3);
    expect(blob.bytes().equals(data)).toBe(true);
    expect(res).toEqual({ etag: '"e2"', bytes: data.length, md5: md5(data) });
    expect(Buffer.from(blob.committed!.headers.blobContentMD5).toString('hex')).toBe(md5(data));
    expect(blob.committed!.headers.blobContentType).toBe('application/vnd.apache.parquet');
  });

  it('a file of at most one block, and an empty one, go up in a single Put Blob', async () => {
    for (const [name, n] of [['one.bin', 1000], ['empty.bin', 0]] as const) {
      const { path, data } = file(name, n);
      const blob = new RecordingBlob();
      const res = await uploadFileInBlocks(blob, path, { blockSize: 1000, slots: new BlockSlots(2), contentType: 'x' });
      expect(blob.calls).toEqual([`put ${n}`]);
      expect(blob.bytes().equals(data)).toBe(true);
      expect(res.md5).toBe(md5(data));
    }
  });

  it('two uploads at once share the slots: together never more blocks in flight than the bound', async () => {
    const a = file('a.bin', 8000);
    const b = file('b.bin', 6500);
    const shared = { inFlight: 0, peak: 0 };
    const ba = new RecordingBlob(shared);
    const bb = new RecordingBlob(shared);
    const slots = new BlockSlots(4);
    const o = { blockSize: 1000, slots, contentType: 'x' };
    const [ra, rb] = await drive([ba, bb], 4, Promise.all([uploadFileInBlocks(ba, a.path, o), uploadFileInBlocks(bb, b.path, o)]));
    expect(shared.peak).toBe(4);
    // Both made progress side by side: the slots go in arrival order, not to one file first.
    expect(Math.min(ba.peak, bb.peak)).toBeGreaterThanOrEqual(1);
    expect([ra.md5, rb.md5]).toEqual([md5(a.data), md5(b.data)]);
    expect(ba.calls.at(-1)).toBe('commit 8');
    expect(bb.calls.at(-1)).toBe('commit 7');
  });

  it('a failed block stops the reading, lets the blocks in flight settle, commits nothing and frees every slot', async () => {
    const { path } = file('fails.bin', 20 * 1000);
    const blob = new RecordingBlob(undefined, 2);
    const slots = new BlockSlots(3);
    await expect(drive([blob], 3, uploadFileInBlocks(blob, path, { blockSize: 1000, slots, contentType: 'x' }))).rejects.toThrow('The specified block is invalid');
    expect(blob.calls.some((c) => c.startsWith('commit'))).toBe(false);
    // Block 2 failed when it finished; at most the slots' worth had been started by then.
    expect(blob.calls.length).toBeLessThanOrEqual(2 + 1 + 3);
    expect(blob.inFlight).toBe(0);
    // Every slot came back: three can be taken again at once.
    await Promise.all([slots.acquire(), slots.acquire(), slots.acquire()]);
  });

  it('refuses slots that are not a positive integer', () => {
    expect(() => new BlockSlots(0)).toThrow('block slots must be a positive integer, got 0');
  });
});

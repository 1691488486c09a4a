import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BlobCache, blobCacheOf } from '../../../shared/storage/blob-cache.js';

const root = mkdtempSync(join(tmpdir(), 'tidemark-cache-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function file(name: string, bytes: number): string {
  const p = join(root, name);
  writeFileSync(p, Buffer.alloc(bytes, name.charCodeAt(0)));
  return p;
}

const MD5 = 'a'.repeat(32);
const MD5B = 'b'.repeat(32);

describe('the local cache of immutable blobs', () => {
  it('hits only for the same name and md5, and keeps its copy when the scratch file goes', async () => {
    const c = new BlobCache(join(root, 'c1'), 10_000);
    const f = file('x.parquet', 100);
    await c.adopt('state', 'p/snapshots/r1.parquet', MD5, f);
    rmSync(f);
    const hit = await c.lookup('state', 'p/snapshots/r1.parquet', MD5);
    expect(hit && readFileSync(hit).length).toBe(100);
    expect(await c.lookup('state', 'p/snapshots/r1.parquet', MD5B)).toBeUndefined();
    expect(await c.lookup('state', 'p/snapshots/r2.parquet', MD5)).toBeUndefined();
    await c.evict('state', 'p/snapshots/r1.parquet');
    expect(await c.lookup('state', 'p/snapshots/r1.parquet', MD5)).toBeUndefined();
  });

  it('retain drops what a snapshot no longer names, under the prefix only', async () => {
    const c = new BlobCache(join(root, 'c2'), 10_000);
    await c.adopt('state', 'p/snapshots/a.parquet', MD5, file('a', 10));
    await c.adopt('state', 'p/snapshots/b.parquet', MD5, file('b', 10));
    await c.adopt('state', 'q/snapshots/a.parquet', MD5, file('q', 10));
    await c.retain('state', 'p/snapshots/', new Set(['p/snapshots/b.parquet']));
    expect(await c.lookup('state', 'p/snapshots/a.parquet', MD5)).toBeUndefined();
    expect(await c.lookup('state', 'p/snapshots/b.parquet', MD5)).toBeDefined();
    expect(await c.lookup('state', 'q/snapshots/a.parquet', MD5)).toBeDefined();
  });

  it('stays within its bound, dropping the least recently used first', async () => {
    const c = new BlobCache(join(root, 'c3'), 250);
    await c.adopt('raw', 'p/r/old.parquet', MD5, file('o', 100));
    const old = await c.lookup('raw', 'p/r/old.parquet', MD5);
    utimesSync(old!, new Date(2020, 0, 1), new Date(2020, 0, 1));
    await c.adopt('raw', 'p/r/mid.parquet', MD5, file('m', 100));
    await c.adopt('raw', 'p/r/new.parquet', MD5, file('n', 100));
    expect(await c.lookup('raw', 'p/r/old.parquet', MD5)).toBeUndefined();
    expect(await c.lookup('raw', 'p/r/mid.parquet', MD5)).toBeDefined();
    expect(await c.lookup('raw', 'p/r/new.parquet', MD5)).toBeDefined();
    // A file bigger than the whole bound is not kept at all.
    await c.adopt('raw', 'p/r/huge.parquet', MD5, file('h', 1000));
    expect(await c.lookup('raw', 'p/r/huge.parquet', MD5)).toBeUndefined();
  });

  it('TIDEMARK_BLOB_CACHE_MB=0 turns it off; a bad value names the setting', async () => {
    const off = blobCacheOf(join(root, 'w'), { TIDEMARK_BLOB_CACHE_MB: '0' });
    await off.adopt('raw', 'p/r/a.parquet', MD5, file('z', 10));
    expect(await off.lookup('raw', 'p/r/a.parquet', MD5)).toBeUndefined();
    expect(() => blobCacheOf(join(root, 'w'), { TIDEMARK_BLOB_CACHE_MB: 'lots' })).toThrow(/TIDEMARK_BLOB_CACHE_MB must be a number of megabytes/);
  });
});

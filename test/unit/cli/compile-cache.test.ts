import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cacheName, readCache, writeCache } from '../../../cli/compile-cache.js';

describe('the CLI code cache', () => {
  const made: string[] = [];
  const folder = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'tm-cc-'));
    made.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of made.splice(0)) {
      chmodSync(d, 0o700);
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('is named per bundle build and command; anything that is not a command name shares one cache', () => {
    const a = cacheName('/x/tidemark.cjs', { size: 10, mtimeMs: 1000.4 }, 'run');
    expect(a.file).toMatch(/^tidemark\.cjs\.[0-9a-f]{8}\.[0-9a-f]{8}\.[0-9a-f]{8}\.run\.v8cache$/);
    expect(a.file.startsWith(a.build) && a.build.startsWith(a.prefix)).toBe(true);
    expect(cacheName('/x/tidemark.cjs', { size: 10, mtimeMs: 1000.9 }, 'run')).toEqual(a);
    expect(cacheName('/x/tidemark.cjs', { size: 11, mtimeMs: 1000 }, 'run').build).not.toBe(a.build);
    expect(cacheName('/x/tidemark.cjs', { size: 10, mtimeMs: 2000 }, 'run').build).not.toBe(a.build);
    expect(cacheName('/y/tidemark.cjs', { size: 10, mtimeMs: 1000 }, 'run').prefix).not.toBe(a.prefix);
    const status = cacheName('/x/tidemark.cjs', { size: 10, mtimeMs: 1000 }, 'status').file;
    expect(status).toBe(a.file.replace(/run\.v8cache$/, 'status.v8cache'));
    for (const odd of ['--help', '', '../../etc', 'Run', 'a'.repeat(30)]) expect(cacheName('/x/tidemark.cjs', { size: 10, mtimeMs: 1000 }, odd).file).toBe(a.file.replace(/run\.v8cache$/, 'other.v8cache'));
  });

  it('is written beside the bundle with no temp file left, and replaces the caches of an older build there', () => {
    const beside = folder();
    const temp = join(folder(), 'cache');
    const old = cacheName(join(beside, 'tidemark.cjs'), { size: 1, mtimeMs: 1 }, 'run');
    writeCache({ beside, temp }, old, Buffer.from('old'));
    const other = cacheName(join(beside, 'tidemark.cjs'), { size: 1, mtimeMs: 1 }, 'status');
    writeCache({ beside, temp }, other, Buffer.from('other'));
    writeFileSync(join(beside, 'unrelated.v8cache'), 'x');
    // Another copy of the bundle sharing the folder (the temp folder) keeps its cache.
    const copy = cacheName(join(beside, 'elsewhere', 'tidemark.cjs'), { size: 1, mtimeMs: 1 }, 'run');
    writeFileSync(join(beside, copy.file), 'copy');
    const now = cacheName(join(beside, 'tidemark.cjs'), { size: 2, mtimeMs: 1 }, 'run');
    writeCache({ beside, temp }, now, Buffer.from('new'));
    expect(readdirSync(beside).sort()).toEqual([now.file, copy.file, 'unrelated.v8cache'].sort());
    expect(readCache({ beside, temp }, now)?.toString()).toBe('new');
    expect(readCache({ beside, temp }, old)).toBeUndefined();
    expect(existsSync(temp)).toBe(false);
  });

  it('goes to a private temp folder when the bundle folder cannot be written', () => {
    // A read-only folder would not stop root (CI runs as root); a path under a regular file
    // cannot be written by anyone.
    const file = join(folder(), 'not-a-folder');
    writeFileSync(file, '');
    const temp = join(folder(), 'cache');
    const name = cacheName(join(file, 'tidemark.cjs'), { size: 1, mtimeMs: 1 }, 'run');
    writeCache({ beside: file, temp }, name, Buffer.from('data'));
    expect(readdirSync(temp)).toEqual([name.file]);
    expect(readCache({ beside: file, temp }, name)?.toString()).toBe('data');
  });

  it('reads nothing from a temp folder others may write to', () => {
    const beside = folder();
    const temp = join(folder(), 'cache');
    mkdirSync(temp, { mode: 0o700 });
    const name = cacheName(join(beside, 'tidemark.cjs'), { size: 1, mtimeMs: 1 }, 'run');
    writeFileSync(join(temp, name.file), 'planted');
    expect(readCache({ beside, temp }, name)?.toString()).toBe('planted');
    chmodSync(temp, 0o777);
    expect(readCache({ beside, temp }, name)).toBeUndefined();
  });

  it('never throws when neither folder can be written', () => {
    const file = join(folder(), 'not-a-folder');
    writeFileSync(file, '');
    const name = cacheName(join(file, 'tidemark.cjs'), { size: 1, mtimeMs: 1 }, 'run');
    expect(() => writeCache({ beside: file, temp: join(file, 'cache') }, name, Buffer.from('x'))).not.toThrow();
    expect(readCache({ beside: file, temp: join(file, 'cache') }, name)).toBeUndefined();
  });
});

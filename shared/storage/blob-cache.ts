import { copyFile, link, mkdir, readdir, rename, rm, rmdir, stat, utimes } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { md5File } from './files.js';
import type { BlobStore } from './ports.js';

/**
 * Local copies of immutable blobs (raw parts, changes files, snapshot layers) in the worker's
 * folder, so that a later stage on the same instance reads the file an earlier stage wrote
 * instead of downloading it again. Every blob stays the source of truth: a stage on another
 * instance, or after a restart, downloads as before.
 *
 * An entry is named by the blob's md5, which the reader takes from a manifest, so a hit is
 * the same bytes or no hit at all; nothing is trusted on the file's name alone.
 */
export class BlobCache {
  constructor(
    readonly dir: string,
    /** 0 turns the cache off. */
    readonly maxBytes: number,
  ) {}

  private entry(container: string, name: string, md5: string): string {
    return join(this.dir, container, `${name}~${md5}`);
  }

  /** Keeps a file that was just uploaded as `container/name`. Hard-linked when it can be: no copy. */
  async adopt(container: string, name: string, md5: string, file: string): Promise<void> {
    if (this.maxBytes <= 0) return;
    const size = (await stat(file)).size;
    if (size > this.maxBytes) return;
    const target = this.entry(container, name, md5);
    await mkdir(dirname(target), { recursive: true });
    const tmp = `${target}.${process.pid}.tmp`;
    await rm(tmp, { force: true });
    try {
      await link(file, tmp);
    } catch {
      await copyFile(file, tmp);
    }
    await rename(tmp, target);
    await this.trim(target);
  }

  /** The local path of `container/name` with this md5, if this instance has it. */
  async lookup(container: string, name: string, md5: string): Promise<string | undefined> {
    if (this.maxBytes <= 0) return undefined;
    const path = this.entry(container, name, md5);
    try {
      const now = new Date();
      await utimes(path, now, now);
      return path;
    } catch {
      return undefined;
    }
  }

  /**
   * A local file with the blob's bytes: the cached copy, or a download into `dest` checked
   * against the md5 (a mismatch is `onMismatch`'s error). `keep` adopts a download.
   */
  async fetch(
    blobs: BlobStore,
    args: { container: string; name: string; md5: string; dest: string; keep?: boolean; onMismatch: (actual: string) => Error },
  ): Promise<{ path: string; hit: boolean }> {
    const cached = await this.lookup(args.container, args.name, args.md5);
    if (cached) return { path: cached, hit: true };
    await blobs.downloadToFile(args.container, args.name, args.dest);
    const actual = await md5File(args.dest);
    if (actual !== args.md5) throw args.onMismatch(actual);
    if (args.keep) await this.adopt(args.container, args.name, args.md5, args.dest);
    return { path: args.dest, hit: false };
  }

  /** Drops every cached version of `container/name`. */
  async evict(container: string, name: string): Promise<void> {
    const dir = dirname(join(this.dir, container, name));
    const prefix = `${basename(name)}~`;
    for (const f of await readdir(dir).catch(() => [] as string[])) if (f.startsWith(prefix)) await rm(join(dir, f), { force: true });
    // A run's folder (raw/{pipeline}/{runId}/) is not needed once its last file went.
    await rmdir(dir).catch(() => undefined);
  }

  /** Drops cached blobs under `container/prefix` whose name is not in `keep`. */
  async retain(container: string, prefix: string, keep: ReadonlySet<string>): Promise<void> {
    for (const e of await this.entries(join(this.dir, container, prefix))) {
      const rel = e.path.slice(join(this.dir, container).length + 1).split('\\').join('/');
      const name = rel.slice(0, rel.lastIndexOf('~'));
      if (!keep.has(name)) await rm(e.path, { force: true });
    }
  }

  private async entries(root: string): Promise<Array<{ path: string; size: number; mtimeMs: number }>> {
    const out: Array<{ path: string; size: number; mtimeMs: number }> = [];
    const walk = async (d: string): Promise<void> => {
      for (const ent of await readdir(d, { withFileTypes: true }).catch(() => [])) {
        const p = join(d, ent.name);
        if (ent.isDirectory()) await walk(p);
        else if (ent.name.includes('~') && !ent.name.endsWith('.tmp')) {
          const st = await stat(p).catch(() => undefined);
          if (st) out.push({ path: p, size: st.size, mtimeMs: st.mtimeMs });
        }
      }
    };
    await walk(root);
    return out;
  }

  /** Least recently used entries go first until the cache fits; the one just added stays. */
  private async trim(keep: string): Promise<void> {
    const all = (await this.entries(this.dir)).sort((a, b) => a.mtimeMs - b.mtimeMs);
    let total = all.reduce((a, e) => a + e.size, 0);
    for (const e of all) {
      if (total <= this.maxBytes) return;
      if (e.path === keep) continue;
      await rm(e.path, { force: true });
      total -= e.size;
    }
  }
}

const caches = new Map<string, BlobCache>();

/**
 * The cache of a work folder. TIDEMARK_BLOB_CACHE_MB bounds it (default 4096; 0 turns it
 * off, e.g. on a plan whose temp storage is small).
 */
export function blobCacheOf(workDir: string, env: NodeJS.ProcessEnv): BlobCache {
  const mb = Number(env.TIDEMARK_BLOB_CACHE_MB ?? 4096);
  if (!Number.isFinite(mb) || mb < 0) {
    throw new Error(`TIDEMARK_BLOB_CACHE_MB must be a number of megabytes (0 turns the cache off), got ${env.TIDEMARK_BLOB_CACHE_MB}`);
  }
  const key = `${workDir}\u0000${mb}`;
  let c = caches.get(key);
  if (!c) caches.set(key, (c = new BlobCache(join(workDir, '_cache'), mb * 2 ** 20)));
  return c;
}

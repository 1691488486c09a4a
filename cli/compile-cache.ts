import { mkdirSync, readFileSync, readdirSync, renameSync, statSync, unlinkSync, writeFileSync, type Stats } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Script } from 'node:vm';

/**
 * Runs the CLI bundle through V8's code cache (cli/launch.ts, built to dist/cli/main.js, is the
 * `tidemark` executable). Compiling the 4.7 MB bundle was most of what was left of a command's
 * start-up (issue #19, scenario E), and Node 20 has no module.enableCompileCache. The first
 * successful run of each command writes the cache at exit, so it also holds the functions that
 * command compiled lazily; later runs of the command deserialise them instead of compiling.
 *
 * The cache only ever saves time: any error reading or writing it is ignored, and
 * TIDEMARK_NO_COMPILE_CACHE=1 or --enable-source-maps (stack traces are mapped only for modules
 * Node's own loader compiled) load the bundle with a plain require().
 */

/** The CommonJS bundle of cli/main.ts, beside the launcher. */
export const BUNDLE_FILE = 'tidemark.cjs';
const CACHE_SUFFIX = '.v8cache';

/** FNV-1a, 32 bits: it names a cache file, nothing more (V8 itself checks that a cache fits its source and version). */
function shortHash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

export interface CacheName {
  /** Shared by every cache of this copy of the bundle (its path). */
  prefix: string;
  /** Shared by every cache of this build of it; the caches of an older build are deleted when a new one is written. */
  build: string;
  file: string;
}

/**
 * A rebuilt bundle (size, mtime), another Node, V8 or architecture, or another copy of the bundle
 * (they share the temp folder) never reads a cache made for something else. Node's options are
 * in the name too: V8 rejects a cache made under other flags (--max-old-space-size, say), so runs
 * with and without one keep a cache each instead of rewriting one every time. One cache per
 * command, because each compiles different functions lazily: the cache `tidemark --help` writes
 * must not be the one `tidemark run` accepts without its own code in it.
 */
export function cacheName(bundle: string, stat: Pick<Stats, 'size' | 'mtimeMs'>, command: string): CacheName {
  const prefix = `${basename(bundle)}.${shortHash(bundle)}.`;
  const build = `${prefix}${shortHash(`${stat.size}|${Math.trunc(stat.mtimeMs)}`)}.`;
  const runtime = shortHash([process.version, process.versions.v8, process.arch, process.execArgv.join(' '), process.env.NODE_OPTIONS ?? ''].join('|'));
  return { prefix, build, file: `${build}${runtime}.${/^[a-z][a-z-]{0,19}$/.test(command) ? command : 'other'}${CACHE_SUFFIX}` };
}

/**
 * Where a cache may live: beside the bundle, else a per-user folder in the temp folder, which is
 * used only while it is ours and no one else may write to it (a planted cache is code V8 runs).
 */
export function cacheDirs(bundle: string): { beside: string; temp: string } {
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  return { beside: dirname(bundle), temp: join(tmpdir(), uid === undefined ? 'tidemark-compile-cache' : `tidemark-compile-cache-${uid}`) };
}

function privateDir(dir: string, create: boolean): boolean {
  try {
    if (create) mkdirSync(dir, { recursive: true, mode: 0o700 });
    const s = statSync(dir);
    if (!s.isDirectory()) return false;
    if (typeof process.getuid !== 'function') return true;
    return s.uid === process.getuid() && (s.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

export function readCache(dirs: { beside: string; temp: string }, name: CacheName): Buffer | undefined {
  try {
    return readFileSync(join(dirs.beside, name.file));
  } catch {
    // Not there, or not readable: the temp folder may hold it.
  }
  if (!privateDir(dirs.temp, false)) return undefined;
  try {
    return readFileSync(join(dirs.temp, name.file));
  } catch {
    return undefined;
  }
}

/** Temp file + rename, so a CLI starting at the same moment reads the old cache or the new one, never half of one. */
function writeAtomically(dir: string, name: CacheName, data: Buffer): boolean {
  const tmp = join(dir, `${name.file}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, join(dir, name.file));
  } catch {
    try {
      unlinkSync(tmp);
    } catch {
      // Never written.
    }
    return false;
  }
  try {
    for (const f of readdirSync(dir)) {
      if (f.startsWith(name.prefix) && f.endsWith(CACHE_SUFFIX) && !f.startsWith(name.build)) unlinkSync(join(dir, f));
    }
  } catch {
    // Another process deleted it first, or the folder is not listable: left for the next write.
  }
  return true;
}

export function writeCache(dirs: { beside: string; temp: string }, name: CacheName, data: Buffer): void {
  if (writeAtomically(dirs.beside, name, data)) return;
  if (privateDir(dirs.temp, true)) writeAtomically(dirs.temp, name, data);
}

/** Runs the CommonJS bundle `file` as Node runs a CommonJS main module, through the code cache when it can. */
export function launch(file: string, argv: readonly string[] = process.argv, env: NodeJS.ProcessEnv = process.env): void {
  const require = createRequire(file);
  if (env.TIDEMARK_NO_COMPILE_CACHE === '1' || process.sourceMapsEnabled) {
    require(file);
    return;
  }
  let source: string;
  let stat: Stats;
  try {
    stat = statSync(file);
    // Latin-1 is UTF-8 for the ASCII-only file cli/build-bundle.mjs writes, and decodes several times faster.
    source = readFileSync(file, 'latin1');
  } catch {
    // Node's loader reports a missing or unreadable bundle as it always has.
    require(file);
    return;
  }
  if (source.startsWith('#!')) source = `//${source.slice(2)}`;
  const dirs = cacheDirs(file);
  const name = cacheName(file, stat, argv[2] ?? '');
  const cachedData = readCache(dirs, name);
  const script = new Script(Module.wrap(source), {
    filename: file,
    // No importModuleDynamically: Node 20 calls it experimental (a warning on stderr) and loses
    // it when the code comes from the cache. cli/build-bundle.mjs keeps import() out of the bundle.
    cachedData,
  });
  if (!cachedData || script.cachedDataRejected) {
    // At exit, so the cache also holds what the command compiled lazily; only after a success, so
    // a command that stopped at its first error does not leave a cache without its main path.
    process.once('exit', (code) => {
      if (code !== 0) return;
      try {
        writeCache(dirs, name, script.createCachedData());
      } catch {
        // The next run compiles again.
      }
    });
  }
  const mod = new Module(file);
  mod.filename = file;
  mod.paths = require.resolve.paths('tidemark') ?? [];
  const wrapper = script.runInThisContext() as (exports: unknown, req: NodeJS.Require, module: Module, filename: string, dirname: string) => void;
  wrapper.call(mod.exports, mod.exports, require, mod, file, dirname(file));
}

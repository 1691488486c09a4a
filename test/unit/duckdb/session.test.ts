import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  DuckSession,
  MEMORY_POOL_CAP,
  closeIdleDuckInstances,
  duckLiteral,
  idleDuckInstances,
  openDuckFiles,
  retainDuckFiles,
  setInstanceResetForTests,
  type DuckSettings,
} from '../../../shared/duckdb/session.js';

let dir: string;
let duck: DuckSettings;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tm-duck-session-'));
  duck = { memoryLimit: '256MB', threads: 1, tempDir: join(dir, 'spill') };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => closeIdleDuckInstances());

async function makeFile(name: string): Promise<string> {
  const file = join(dir, name);
  const i = await DuckDBInstance.create(file);
  const c = await i.connect();
  await c.run('CREATE TABLE t AS SELECT 1 AS x');
  c.closeSync();
  i.closeSync();
  return file;
}

/** Another process writing the file: DuckDB's file lock is per process, so only a child tells. */
function otherProcessWrites(file: string): boolean {
  const script = `import { DuckDBInstance } from '@duckdb/node-api';
const i = await DuckDBInstance.create(${JSON.stringify(file)});
const c = await i.connect();
await c.run('INSERT INTO t VALUES (2)');
c.closeSync(); i.closeSync();`;
  try {
    execFileSync(process.execPath, ['--input-type=module', '-e', script], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

describe('in-memory instance pool', () => {
  it('hands a released instance to the next session with nothing of the previous one left', async () => {
    const src = await makeFile('src.duckdb');
    const a = await DuckSession.open(':memory:', duck);
    const fresh = await a.rows<{ name: string; value: string }>(`SELECT name, value FROM duckdb_settings() WHERE name IN ('TimeZone', 'threads', 'memory_limit', 'search_path')`);
    await a.run(`SET TimeZone = 'Asia/Tokyo'`);
    await a.run('SET threads = 2');
    await a.run(`SET GLOBAL memory_limit = '100MB'`);
    await a.run('CREATE VIEW _tm_parts AS SELECT 1 AS x');
    await a.run('CREATE TABLE staging (c0 VARCHAR)');
    await a.run('CREATE TEMP TABLE quarantined AS SELECT 1 AS x');
    await a.run('CREATE MACRO plus1(x) AS x + 1');
    await a.run('CREATE SEQUENCE seq1');
    await a.run(`CREATE TYPE mood AS ENUM ('a', 'b')`);
    await a.run('CREATE SCHEMA shop');
    await a.run('CREATE TABLE shop.customers (id INTEGER)');
    await a.run(`ATTACH ${duckLiteral(src)} AS src (READ_ONLY)`);
    await a.run('USE src');
    const first = a.instance;
    await a.close();
    expect(idleDuckInstances()).toBe(1);

    const b = await DuckSession.open(':memory:', duck);
    expect(b.instance).toBe(first);
    expect(await b.rows(`SELECT name, value FROM duckdb_settings() WHERE name IN ('TimeZone', 'threads', 'memory_limit', 'search_path')`)).toEqual(fresh);
    expect(await b.rows('SELECT database_name FROM duckdb_databases() WHERE NOT internal ORDER BY 1')).toEqual([{ database_name: '_tm_session' }, { database_name: 'memory' }]);
    expect(await b.rows(`SELECT table_name FROM duckdb_tables()`)).toEqual([]);
    expect(await b.rows(`SELECT view_name FROM duckdb_views() WHERE NOT internal`)).toEqual([]);
    expect(await b.rows(`SELECT schema_name FROM duckdb_schemas() WHERE NOT internal AND schema_name <> 'main'`)).toEqual([]);
    expect(await b.rows(`SELECT sequence_name FROM duckdb_sequences()`)).toEqual([]);
    expect(await b.rows(`SELECT type_name FROM duckdb_types() WHERE NOT internal`)).toEqual([]);
    await expect(b.run('SELECT plus1(1)')).rejects.toThrow(/plus1/);
    // The names the last session used are free again.
    await b.run('CREATE VIEW _tm_parts AS SELECT 2 AS x');
    await b.run('CREATE TABLE staging (c0 VARCHAR)');
    await b.close();
  });

  it('frees a file the session attached READ_ONLY once close resolves', async () => {
    const src = await makeFile('ro.duckdb');
    const s = await DuckSession.open(':memory:', duck);
    await s.run(`ATTACH ${duckLiteral(src)} AS src (READ_ONLY)`);
    expect(otherProcessWrites(src)).toBe(false);
    await s.close();
    expect(idleDuckInstances()).toBe(1);
    expect(otherProcessWrites(src)).toBe(true);
  });

  it('never shares an instance between concurrent sessions, and keeps at most the cap idle', async () => {
    const sessions = await Promise.all(Array.from({ length: MEMORY_POOL_CAP + 2 }, () => DuckSession.open(':memory:', duck)));
    expect(new Set(sessions.map((s) => s.instance)).size).toBe(sessions.length);
    await Promise.all(sessions.map((s) => s.close()));
    expect(idleDuckInstances()).toBe(MEMORY_POOL_CAP);
    // Taken out while in use: two at once again get two instances, both from the pool.
    const [a, b] = await Promise.all([DuckSession.open(':memory:', duck), DuckSession.open(':memory:', duck)]);
    expect(a!.instance).not.toBe(b!.instance);
    expect(idleDuckInstances()).toBe(0);
    await Promise.all([a!.close(), b!.close()]);
  });

  it('keeps instances of other settings apart', async () => {
    const a = await DuckSession.open(':memory:', duck);
    const first = a.instance;
    await a.close();
    const b = await DuckSession.open(':memory:', { ...duck, threads: 2 });
    expect(b.instance).not.toBe(first);
    expect(await b.one(`SELECT current_setting('threads') AS t`)).toEqual({ t: 2n });
    await b.close();
  });

  it('closes an instance whose reset fails instead of pooling it', async () => {
    const previous = setInstanceResetForTests(() => Promise.reject(new Error('reset failed')));
    try {
      const a = await DuckSession.open(':memory:', duck);
      const first = a.instance;
      await a.close();
      expect(idleDuckInstances()).toBe(0);
      const b = await DuckSession.open(':memory:', duck);
      expect(b.instance).not.toBe(first);
      await b.close();
    } finally {
      setInstanceResetForTests(previous);
    }
  });

  it('closes the instance of a session that grew the process (a big transform) so its memory goes back', async () => {
    const a = await DuckSession.open(':memory:', duck);
    await a.run('CREATE TEMP TABLE big AS SELECT range AS i, md5(CAST(range AS VARCHAR)) AS h FROM range(3000000)');
    await a.close();
    expect(idleDuckInstances()).toBe(0);
  });

  it('does not pool an instance whose default catalog was written to by name', async () => {
    const a = await DuckSession.open(':memory:', duck);
    await a.run('CREATE TABLE memory.main.kept AS SELECT 1 AS x');
    await a.close();
    expect(idleDuckInstances()).toBe(0);
  });
});

describe('file databases', () => {
  it('close when their last session closes, by default', async () => {
    const file = await makeFile('wh.duckdb');
    const s = await DuckSession.open(file, duck);
    await s.close();
    expect(openDuckFiles()).toBe(0);
    expect(otherProcessWrites(file)).toBe(true);
  });

  it('stay open for reuse under retainDuckFiles, and its release closes them', async () => {
    const file = await makeFile('retained.duckdb');
    const release = retainDuckFiles();
    try {
      const a = await DuckSession.open(file, duck);
      const instance = a.instance;
      await a.close();
      expect(openDuckFiles()).toBe(1);
      const b = await DuckSession.open(file, duck);
      expect(b.instance).toBe(instance);
      await b.close();
      expect(otherProcessWrites(file)).toBe(false);
    } finally {
      release();
    }
    expect(openDuckFiles()).toBe(0);
    expect(otherProcessWrites(file)).toBe(true);
  });

  it('leaves a file in use open when released, and closes it with its last session', async () => {
    const file = await makeFile('busy.duckdb');
    const release = retainDuckFiles();
    const s = await DuckSession.open(file, duck);
    release();
    release(); // twice is harmless
    expect(openDuckFiles()).toBe(1);
    await s.close();
    expect(openDuckFiles()).toBe(0);
  });
});

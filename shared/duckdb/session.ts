import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { DuckDBInstance, type DuckDBConnection, type DuckDBValue } from '@duckdb/node-api';

export interface DuckSettings {
  memoryLimit: string;
  threads: number;
  /** Spill folder: DuckDB writes intermediate results here past memoryLimit. */
  tempDir: string;
}

/** The one value shape we bind: keeps callers away from DuckDB's value classes. */
export type SqlValue = string | number | bigint | boolean | null;

export interface Statement {
  sql: string;
  parameters: readonly SqlValue[];
}

export function quoteDuck(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}

/** String literal for the few places DuckDB takes no parameter (ATTACH paths, SET values). */
export function duckLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/**
 * File databases open in this process, shared by every session on the same file: DuckDB lets one
 * process hold a file, so two workers of the local host (or a merge and a validation side by
 * side) would otherwise lock each other out. Concurrent sessions get their own connection on
 * the one instance; the last session to close closes the file, so other processes can open it
 * (unless a one-shot command retains the files, see retainDuckFiles).
 */
const openFiles = new Map<string, { instance: Promise<DuckDBInstance>; ready?: DuckDBInstance; sessions: number }>();

/** Holders of retainDuckFiles(): while any is held, a file whose last session closes stays open. */
let fileRetainers = 0;

function instanceOptions(settings: DuckSettings): Record<string, string> {
  return {
    memory_limit: settings.memoryLimit,
    threads: String(settings.threads),
    temp_directory: settings.tempDir,
    // Insertion order is not needed anywhere (dedupe orders explicitly); dropping it lets
    // DuckDB stream large COPYs without buffering.
    preserve_insertion_order: 'false',
  };
}

/**
 * Idle in-memory instances, per instance options. Creating one costs 15-35 ms, and one run opens
 * several (extract, Parquet footers, transform, checks), so a released instance is reset to its
 * fresh state and kept for the next session with the same options. A session has its instance to
 * itself: a pooled instance is taken out while in use, so concurrent sessions each get their own.
 */
const idleMemory = new Map<string, PooledInstance[]>();

export interface PooledInstance {
  instance: DuckDBInstance;
  /** What the instance was created with. */
  options: Readonly<Record<string, string>>;
  /** duckdb_settings() of the fresh instance: what a reset restores. */
  settings: ReadonlyMap<string, string>;
}

/**
 * Idle instances kept in all: enough for the stages of one run, few enough that idle instances
 * hold little. Exported for tests.
 */
export const MEMORY_POOL_CAP = 2;

/**
 * A session that grew the process by more than this closes its instance instead of pooling it:
 * DuckDB keeps the buffers of dropped tables allocated until the instance closes, and the next
 * stage (or a concurrent one) needs that memory more than a saved open.
 */
const POOL_MAX_GROWTH_BYTES = 64 * 1024 * 1024;

/** The only database a fresh `:memory:` instance has besides the internal `system` and `temp`. */
const MEMORY_DB = 'memory';

/**
 * Each in-memory session works in a catalog of its own, attached on open and detached on release:
 * whatever the session creates without naming a catalog (tables, views, macros, types, sequences,
 * schemas, also from user SQL) goes with the DETACH. Listing macros to drop them one by one would
 * need duckdb_functions(), which costs ~100 ms, more than a new instance.
 */
const SESSION_DB = '_tm_session';

function poolKey(options: Record<string, string>): string {
  return JSON.stringify(options);
}

function idleCount(): number {
  let n = 0;
  for (const list of idleMemory.values()) n += list.length;
  return n;
}

async function rowsOf<T>(conn: DuckDBConnection, sql: string): Promise<T[]> {
  return (await conn.runAndReadAll(sql)).getRowObjectsJS() as T[];
}

async function settingsOf(conn: DuckDBConnection): Promise<Map<string, string>> {
  const rows = await rowsOf<{ name: string; value: string | null }>(conn, 'SELECT name, value FROM duckdb_settings()');
  return new Map(rows.map((r) => [r.name, r.value ?? '']));
}

async function differingSettings(conn: DuckDBConnection, fresh: ReadonlyMap<string, string>): Promise<[string, string][]> {
  const now = await settingsOf(conn);
  return [...fresh].filter(([name, value]) => now.get(name) !== value);
}

/**
 * Brings a released instance back to the state of a fresh one, on a new connection (the session's
 * own is closed: its temp objects, session-scoped settings such as TimeZone and its USE went with
 * it). Throws when anything is left; the caller then closes the instance instead of pooling it.
 */
async function resetInstance(pooled: PooledInstance): Promise<void> {
  const conn = await pooled.instance.connect();
  try {
    // The session's catalog and any file it attached: a READ_ONLY attach still holds the file's
    // lock against writers in other processes.
    for (const d of await rowsOf<{ name: string }>(conn, `SELECT database_name AS name FROM duckdb_databases() WHERE NOT internal AND database_name <> '${MEMORY_DB}'`)) {
      await conn.run(`DETACH ${quoteDuck(d.name)}`);
    }
    // Only SQL that names the default catalog lands here; none of ours does, so anything found
    // is a surprise the instance is not trusted with.
    const [left] = await rowsOf<{ n: bigint }>(
      conn,
      `SELECT (SELECT count(*) FROM duckdb_tables() WHERE database_name = '${MEMORY_DB}')
        + (SELECT count(*) FROM duckdb_views() WHERE database_name = '${MEMORY_DB}' AND NOT internal)
        + (SELECT count(*) FROM duckdb_schemas() WHERE database_name = '${MEMORY_DB}' AND schema_name <> 'main' AND NOT internal)
        + (SELECT count(*) FROM duckdb_sequences() WHERE database_name = '${MEMORY_DB}')
        + (SELECT count(*) FROM duckdb_types() WHERE database_name = '${MEMORY_DB}' AND NOT internal)
        + (SELECT count(*) FROM duckdb_secrets()) AS n`,
    );
    if (left?.n !== 0n) throw new Error(`${String(left?.n)} object(s) left in the default catalog`);
    // SET without a scope is global for the options that have no session value (threads,
    // memory_limit, …): those outlive the connection and are set back here. The instance's own
    // options first, from their exact values: duckdb_settings() shows sizes rounded ('244.1 MiB'),
    // and settings derived from them (write_buffer_row_group_memory_limit) follow them back.
    if ((await differingSettings(conn, pooled.settings)).length === 0) return;
    for (const [name, value] of Object.entries(pooled.options)) await conn.run(`SET GLOBAL ${quoteDuck(name)} = ${duckLiteral(value)}`);
    for (const [name, value] of await differingSettings(conn, pooled.settings)) await conn.run(`SET GLOBAL ${quoteDuck(name)} = ${duckLiteral(value)}`);
    const still = await differingSettings(conn, pooled.settings);
    if (still.length) throw new Error(`setting(s) ${still.map(([n]) => n).join(', ')} could not be set back`);
  } finally {
    conn.closeSync();
  }
}

let resetHook: (p: PooledInstance) => Promise<void> = resetInstance;

/** Test seam: replaces the reset (e.g. with one that fails). Returns the previous one. */
export function setInstanceResetForTests(reset: (p: PooledInstance) => Promise<void>): (p: PooledInstance) => Promise<void> {
  const previous = resetHook;
  resetHook = reset;
  return previous;
}

async function openMemory(settings: DuckSettings): Promise<{ pooled: PooledInstance; conn: DuckDBConnection; key: string }> {
  const options = instanceOptions(settings);
  const key = poolKey(options);
  const idle = idleMemory.get(key)?.pop();
  if (idle) {
    try {
      return { pooled: idle, conn: await sessionConnection(idle.instance), key };
    } catch {
      idle.instance.closeSync();
    }
  }
  const instance = await DuckDBInstance.create(':memory:', options);
  try {
    const first = await instance.connect();
    const settings = await settingsOf(first).finally(() => first.closeSync());
    return { pooled: { instance, options, settings }, conn: await sessionConnection(instance), key };
  } catch (err) {
    instance.closeSync();
    throw err;
  }
}

async function sessionConnection(instance: DuckDBInstance): Promise<DuckDBConnection> {
  const conn = await instance.connect();
  try {
    await conn.run(`ATTACH ':memory:' AS ${SESSION_DB}`);
    await conn.run(`USE ${SESSION_DB}`);
    return conn;
  } catch (err) {
    conn.closeSync();
    throw err;
  }
}

/** Resets a released instance and pools it, or closes it when it cannot (or should not) be kept. */
async function releaseMemory(pooled: PooledInstance, key: string, grewBy: number): Promise<void> {
  if (grewBy > POOL_MAX_GROWTH_BYTES || idleCount() >= MEMORY_POOL_CAP) {
    pooled.instance.closeSync();
    return;
  }
  try {
    await resetHook(pooled);
  } catch {
    // Whatever the reset could not undo dies with the instance.
    pooled.instance.closeSync();
    return;
  }
  // Checked again: concurrent releases may have filled the pool meanwhile.
  if (idleCount() >= MEMORY_POOL_CAP) {
    pooled.instance.closeSync();
    return;
  }
  const list = idleMemory.get(key) ?? [];
  list.push(pooled);
  idleMemory.set(key, list);
}

/** Closes the pooled idle in-memory instances (tests; a host that wants its memory back). */
export function closeIdleDuckInstances(): void {
  for (const list of idleMemory.values()) for (const p of list.splice(0)) p.instance.closeSync();
  idleMemory.clear();
}

/** How many in-memory instances are idle in the pool (tests). */
export function idleDuckInstances(): number {
  return idleCount();
}

/**
 * For a one-shot command (`tidemark run`): until the returned function is called, a file database
 * whose last session closes stays open, so the next stage of the run reuses it instead of opening
 * the file again (the ledger read, the merge and the checks each open it). The function closes the
 * retained files; call it on every exit path. Not for a long-lived host: there other processes
 * (`tidemark sql`, `query`) must be able to open the file between runs.
 */
export function retainDuckFiles(): () => void {
  fileRetainers++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--fileRetainers > 0) return;
    for (const [key, file] of openFiles) {
      if (file.sessions > 0) continue;
      openFiles.delete(key);
      closeFile(file);
    }
  };
}

function closeFile(file: { instance: Promise<DuckDBInstance>; ready?: DuckDBInstance }): void {
  // Synchronously once open: the caller may hand the file to another process right after.
  if (file.ready) file.ready.closeSync();
  else
    void file.instance.then(
      (i) => i.closeSync(),
      () => undefined,
    );
}

/** How many file databases this process holds open (tests). */
export function openDuckFiles(): number {
  return openFiles.size;
}

export class DuckSession {
  private constructor(
    readonly instance: DuckDBInstance,
    readonly conn: DuckDBConnection,
    private readonly release: () => Promise<void> | void,
  ) {}

  static async open(path: string, settings: DuckSettings): Promise<DuckSession> {
    mkdirSync(settings.tempDir, { recursive: true });
    if (path === ':memory:') {
      const rssAtOpen = process.memoryUsage.rss();
      const { pooled, conn, key } = await openMemory(settings);
      return new DuckSession(pooled.instance, conn, () => releaseMemory(pooled, key, process.memoryUsage.rss() - rssAtOpen));
    }
    const key = resolve(path);
    let entry = openFiles.get(key);
    if (!entry) {
      entry = { instance: DuckDBInstance.create(path, instanceOptions(settings)), sessions: 0 };
      openFiles.set(key, entry);
    }
    const file = entry;
    file.sessions++;
    const release = (keep: boolean) => {
      if (--file.sessions > 0) return;
      if (keep && fileRetainers > 0 && openFiles.get(key) === file) return;
      if (openFiles.get(key) === file) openFiles.delete(key);
      closeFile(file);
    };
    try {
      const instance = await file.instance;
      file.ready = instance;
      const conn = await instance.connect();
      return new DuckSession(instance, conn, () => release(true));
    } catch (err) {
      // A failed open (e.g. the file is locked by another process) is not kept for the next caller.
      if (openFiles.get(key) === file) openFiles.delete(key);
      release(false);
      throw err;
    }
  }

  async run(sql: string, parameters: readonly SqlValue[] = []): Promise<void> {
    await this.conn.run(sql, parameters.length ? (parameters as DuckDBValue[]) : undefined);
  }

  async exec(stmt: Statement): Promise<void> {
    await this.run(stmt.sql, stmt.parameters);
  }

  async rows<T = Record<string, unknown>>(sql: string, parameters: readonly SqlValue[] = []): Promise<T[]> {
    const reader = await this.conn.runAndReadAll(sql, parameters.length ? (parameters as DuckDBValue[]) : undefined);
    return reader.getRowObjectsJS() as T[];
  }

  async one<T = Record<string, unknown>>(sql: string, parameters: readonly SqlValue[] = []): Promise<T | undefined> {
    return (await this.rows<T>(sql, parameters))[0];
  }

  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    await this.run('BEGIN TRANSACTION');
    try {
      const r = await fn();
      await this.run('COMMIT');
      return r;
    } catch (err) {
      await this.run('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  /**
   * Ends the session. Awaited: an in-memory instance is reset before it is pooled (its READ_ONLY
   * attaches detached, so the source file is free once this resolves); a file is closed at once
   * when this was its last session.
   */
  async close(): Promise<void> {
    this.conn.closeSync();
    await this.release();
  }
}

export async function withDuck<T>(path: string, settings: DuckSettings, fn: (s: DuckSession) => Promise<T>): Promise<T> {
  const s = await DuckSession.open(path, settings);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

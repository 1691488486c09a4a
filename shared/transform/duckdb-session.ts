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
 * the one instance; the last session to close closes the file, so other processes can open it.
 */
const openFiles = new Map<string, { instance: Promise<DuckDBInstance>; ready?: DuckDBInstance; sessions: number }>();

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

export class DuckSession {
  private constructor(
    readonly instance: DuckDBInstance,
    readonly conn: DuckDBConnection,
    private readonly release: () => void,
  ) {}

  static async open(path: string, settings: DuckSettings): Promise<DuckSession> {
    mkdirSync(settings.tempDir, { recursive: true });
    if (path === ':memory:') {
      const instance = await DuckDBInstance.create(path, instanceOptions(settings));
      const conn = await instance.connect();
      return new DuckSession(instance, conn, () => instance.closeSync());
    }
    const key = resolve(path);
    let entry = openFiles.get(key);
    if (!entry) {
      entry = { instance: DuckDBInstance.create(path, instanceOptions(settings)), sessions: 0 };
      openFiles.set(key, entry);
    }
    const file = entry;
    file.sessions++;
    const release = () => {
      if (--file.sessions > 0) return;
      if (openFiles.get(key) === file) openFiles.delete(key);
      // Synchronously once open: the caller may hand the file to another process right after.
      if (file.ready) file.ready.closeSync();
      else
        void file.instance.then(
          (i) => i.closeSync(),
          () => undefined,
        );
    };
    try {
      const instance = await file.instance;
      file.ready = instance;
      const conn = await instance.connect();
      return new DuckSession(instance, conn, release);
    } catch (err) {
      // A failed open (e.g. the file is locked by another process) is not kept for the next caller.
      if (openFiles.get(key) === file) openFiles.delete(key);
      release();
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

  close(): void {
    this.conn.closeSync();
    this.release();
  }
}

export async function withDuck<T>(path: string, settings: DuckSettings, fn: (s: DuckSession) => Promise<T>): Promise<T> {
  const s = await DuckSession.open(path, settings);
  try {
    return await fn(s);
  } finally {
    s.close();
  }
}

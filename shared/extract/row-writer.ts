import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { DuckDBAppender } from '@duckdb/node-api';
import { DuckSession, duckLiteral, quoteDuck, type DuckSettings } from '../duckdb/session.js';
import type { ColumnInfo } from '../storage/manifest.js';
import { PARQUET_COPY_OPTIONS } from '../storage/parquet-format.js';
import type { ColumnPlan } from './column-plan.js';

const UNITS: Record<string, number> = { KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

export function parseBytes(text: string): number {
  const m = /^(\d+)(KB|MB|GB)$/.exec(text);
  if (!m) throw new Error(`${JSON.stringify(text)} is not a size like 128MB`);
  return Number(m[1]) * UNITS[m[2]!]!;
}

/**
 * Rows from a network source (as text, see ColumnPlan) → bounded Parquet parts. Rows go into a
 * DuckDB table through the appender (so they leave the JS heap at once; DuckDB spills past its
 * memory limit to ctx.duck's temp folder), and every `partRows` rows or `partBytes` of text the
 * table is COPYed to the next part file, typed by each column's cast, and emptied.
 *
 * `add` is synchronous and says when a part is due; the caller then stops its stream (mssql
 * pause(), or simply not FETCHing the next batch from a cursor) and awaits `flush()`: that is the
 * back-pressure that keeps memory flat whatever the table size.
 */
export class ParquetPartWriter {
  private appender: DuckDBAppender | undefined;
  private rows = 0;
  private bytes = 0;
  private totalRows = 0;
  private readonly files: string[] = [];

  private constructor(
    private readonly session: DuckSession,
    private readonly columns: readonly ColumnPlan[],
    private readonly outDir: string,
    private readonly partRows: number,
    private readonly partBytes: number,
  ) {}

  static async open(o: { outDir: string; columns: readonly ColumnPlan[]; partRows: number; partBytes: string; duck: DuckSettings }): Promise<ParquetPartWriter> {
    mkdirSync(o.outDir, { recursive: true });
    const s = await DuckSession.open(':memory:', o.duck);
    try {
      await s.run(`SET TimeZone = 'UTC'`);
      // Positional staging names: source column names need no escaping rules of their own here.
      await s.run(`CREATE TABLE staging (${o.columns.map((_, i) => `c${i} VARCHAR`).join(', ') || 'c0 VARCHAR'})`);
    } catch (err) {
      await s.close();
      throw err;
    }
    const w = new ParquetPartWriter(s, o.columns, o.outDir, o.partRows, parseBytes(o.partBytes));
    w.appender = await s.conn.createAppender('staging');
    return w;
  }

  /** Appends one row (one text or null per column). True when a part is due: pause and `await flush()`. */
  add(row: readonly (string | null)[]): boolean {
    const a = this.appender!;
    for (let i = 0; i < this.columns.length; i++) {
      const v = row[i];
      if (v === null || v === undefined) a.appendNull();
      else {
        a.appendVarchar(v);
        this.bytes += v.length;
      }
    }
    a.endRow();
    this.rows++;
    this.totalRows++;
    return this.rows >= this.partRows || this.bytes >= this.partBytes;
  }

  get rowCount(): number {
    return this.totalRows;
  }

  /** Writes the staged rows as the next part (no-op when nothing is staged). */
  async flush(): Promise<void> {
    if (this.rows === 0) return;
    const a = this.appender!;
    a.flushSync();
    a.closeSync();
    this.appender = undefined;
    const file = join(this.outDir, `part-${String(this.files.length).padStart(5, '0')}.parquet`);
    const select = this.columns.map((c, i) => `${c.fromText(`c${i}`)} AS ${quoteDuck(c.name)}`).join(', ');
    await this.session.run(`COPY (SELECT ${select} FROM staging) TO ${duckLiteral(file)} (${PARQUET_COPY_OPTIONS})`);
    await this.session.run('DELETE FROM staging');
    this.files.push(file);
    this.rows = 0;
    this.bytes = 0;
    this.appender = await this.session.conn.createAppender('staging');
  }

  /** Flushes the last part and returns every part file, in order. */
  async finish(): Promise<string[]> {
    await this.flush();
    return [...this.files];
  }

  schema(): ColumnInfo[] {
    return this.columns.map((c) => ({ name: c.name, type: c.duckType }));
  }

  async close(): Promise<void> {
    try {
      this.appender?.closeSync();
    } catch {
      // The session is going away; a half-written appender has nothing worth keeping.
    }
    await this.session.close();
  }
}

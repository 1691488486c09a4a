import type * as Pg from 'pg';
import { lazyModule } from '../lazy-module.js';
import { parseDuration } from '../config/duration.js';
import { splitQualified } from '../config/identifiers.js';
import type { ConnectionConfig, PipelineConfig } from '../config/schema.js';
import { TerminalError } from '../errors.js';
import type { DuckSettings } from '../duckdb/session.js';
import { pgColumnPlan, type PgColumnPlan } from './postgres-types.js';
import { ParquetPartWriter } from './row-writer.js';
import type { ExtractRequest, ExtractResult, KeyRange, KeyStats, KeysRequest, KeysResult, Source } from './source.js';
import type { WindowInput } from './window.js';
import { completeWindow, nullChangeColumnWarning, planWindow, readRecord } from './window.js';

const pgLib = lazyModule<typeof Pg>('pg');

export type PgConnectionConfig = Extract<ConnectionConfig, { kind: 'postgres' }>;

export interface PgStatement {
  sql: string;
  parameters: string[];
}

/** Rows per FETCH: the only rows in JS at a time; the next FETCH waits for the writer. */
export const FETCH_ROWS = 5000;
const CURSOR = '_tm_extract';

export function quotePg(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}

export function pgRelation(p: PipelineConfig): string {
  if (p.source.table) {
    const q = splitQualified(p.source.table);
    return q.schema ? `${quotePg(q.schema)}.${quotePg(q.name)}` : quotePg(q.name);
  }
  return `(${p.source.query}) AS _tm_q`;
}

/** Pure planners of the PostgreSQL source; window values are bound parameters. */
export function planPgDescribe(p: PipelineConfig): PgStatement {
  return { sql: `SELECT * FROM ${pgRelation(p)} LIMIT 0`, parameters: [] };
}

export function planPgTypes(fields: ReadonlyArray<{ dataTypeID: number; dataTypeModifier: number }>): PgStatement {
  return {
    sql: 'SELECT format_type(t.oid, t.mod) AS type FROM unnest($1::oid[], $2::int[]) WITH ORDINALITY AS t(oid, mod, i) ORDER BY t.i',
    parameters: [`{${fields.map((f) => f.dataTypeID).join(',')}}`, `{${fields.map((f) => f.dataTypeModifier).join(',')}}`],
  };
}

export function planPgUpper(p: PipelineConfig): PgStatement {
  const col = quotePg(p.source.changeDetection.column!);
  // Rendered in UTC with microseconds, the precision of both timestamp types.
  return { sql: `SELECT to_char(max(${col})::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS upper FROM ${pgRelation(p)}`, parameters: [] };
}

export function planPgSelect(
  p: PipelineConfig,
  columns: readonly PgColumnPlan[],
  w: { fullRead: boolean; from: string | null; to: string | null },
  range?: KeyRange,
): PgStatement {
  const list = columns.map((c) => `${c.select(quotePg(c.name))} AS ${quotePg(c.name)}`).join(', ');
  const where: string[] = [];
  const parameters: string[] = [];
  if (range) {
    parameters.push(range.lo, range.hi);
    const k = quotePg(range.column);
    where.push(`${k} >= $1::numeric AND ${k} ${range.last ? '<=' : '<'} $2::numeric`);
  }
  if (!w.fullRead) {
    const col = quotePg(p.source.changeDetection.column!);
    if (w.from !== null) {
      parameters.push(w.from);
      where.push(`${col} > $${parameters.length}::timestamptz`);
    }
    if (w.to !== null) {
      parameters.push(w.to);
      where.push(`${col} <= $${parameters.length}::timestamptz`);
    }
  }
  return { sql: `SELECT ${list} FROM ${pgRelation(p)}${where.length ? ` WHERE ${where.join(' AND ')}` : ''}`, parameters };
}

/** The key columns of every source row (a reconcile's key-only read), as the select list renders them. */
export function planPgKeys(p: PipelineConfig, keyColumns: readonly PgColumnPlan[]): PgStatement {
  return { sql: `SELECT ${keyColumns.map((c) => `${c.select(quotePg(c.name))} AS ${quotePg(c.name)}`).join(', ')} FROM ${pgRelation(p)}`, parameters: [] };
}

/** min / max / count of the partition column, in the same snapshot as the window. */
export function planPgKeyStats(p: PipelineConfig, column: string): PgStatement {
  const k = quotePg(column);
  return { sql: `SELECT pg_typeof(min(${k}))::text AS t, min(${k})::text AS mn, max(${k})::text AS mx, count(*)::text AS n FROM ${pgRelation(p)}`, parameters: [] };
}

export function planPgCount(p: PipelineConfig, to: string | null): PgStatement {
  if (to === null) return { sql: `SELECT count(*)::text AS n FROM ${pgRelation(p)}`, parameters: [] };
  return { sql: `SELECT count(*)::text AS n FROM ${pgRelation(p)} WHERE ${quotePg(p.source.changeDetection.column!)} <= $1::timestamptz`, parameters: [to] };
}

/**
 * SQLSTATE classes that a retry cannot fix: syntax / undefined objects (42), authentication
 * (28), invalid catalog (3D), data exceptions (22), feature not supported (0A). Everything else
 * (connection loss 08, admin shutdown 57P01, serialization 40001, resources 53) is retried.
 */
/** Source rows whose change column is NULL (the NULL change-column rule, extract/window.ts). */
export function planPgNullChangeColumn(p: PipelineConfig, column: string): PgStatement {
  return { sql: `SELECT count(*)::text AS n FROM ${pgRelation(p)} WHERE ${quotePg(column)} IS NULL`, parameters: [] };
}

export function classifyPgError(err: unknown, what: string): unknown {
  if (err instanceof TerminalError) return err;
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string' && /^(42|28|3D|22|0A)/.test(code)) {
    return new TerminalError(`${what}: PostgreSQL error ${code}: ${(err as Error).message}`, { cause: err });
  }
  return err;
}

/** The column plans of a `… LIMIT 0` statement, typed by format_type. */
async function describeColumns(client: Pg.Client, d: PgStatement): Promise<PgColumnPlan[]> {
  const described = await client.query(d.sql, d.parameters);
  const t = planPgTypes(described.fields);
  const types = (await client.query<{ type: string }>(t.sql, t.parameters)).rows.map((r) => r.type);
  return described.fields.map((f, i) => pgColumnPlan(f.name, types[i]!));
}

/** Streams a statement through a server-side cursor into the writer, FETCH by FETCH (the next waits for a due part). */
async function streamCursor(client: Pg.Client, s: PgStatement, writer: ParquetPartWriter): Promise<void> {
  await client.query(`DECLARE ${CURSOR} NO SCROLL CURSOR FOR ${s.sql}`, s.parameters);
  for (;;) {
    const batch = await client.query({ text: `FETCH FORWARD ${FETCH_ROWS} FROM ${CURSOR}`, rowMode: 'array' });
    for (const row of batch.rows as Array<Array<string | null>>) {
      if (writer.add(row)) await writer.flush();
    }
    if (batch.rows.length < FETCH_ROWS) break;
  }
  await client.query(`CLOSE ${CURSOR}`);
}

/** Every value as PostgreSQL's text output: no JS number or Date ever holds a source value. */
const textTypes = { getTypeParser: () => (v: string) => v } as unknown as Pg.CustomTypesConfig;

/**
 * The PostgreSQL source: full and timestamp modes, read in one REPEATABLE READ transaction
 * (the captured upper bound, the rows and the count see one snapshot) through a server-side
 * cursor, FETCH by FETCH into bounded Parquet parts.
 */

/**
 * Connects and opens the read-only REPEATABLE READ transaction every read of a run uses, so the
 * window's upper bound, its rows, the count and the NULL check all see one snapshot (in UTC).
 */
async function beginSnapshotRead(client: Pg.Client): Promise<void> {
  await client.connect();
  await client.query(`SET TIME ZONE 'UTC'`);
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
}

export class PostgresSource implements Source {
  constructor(
    private readonly conn: PgConnectionConfig,
    private readonly connectionString: string,
    private readonly pipeline: PipelineConfig,
    private readonly duck: DuckSettings,
  ) {}

  async extract(req: ExtractRequest): Promise<ExtractResult> {
    const p = this.pipeline;
    const what = `source ${p.source.connection} (pipeline ${p.name})`;
    const client = this.client();
    let writer: ParquetPartWriter | undefined;
    try {
      await beginSnapshotRead(client);
      const columns = await describeColumns(client, planPgDescribe(p));

      const planned = planWindow(req.window);
      let captured: string | null = null;
      if (req.window.mode === 'timestamp') {
        const u = planPgUpper(p);
        captured = (await client.query<{ upper: string | null }>(u.sql, u.parameters)).rows[0]?.upper ?? null;
      }
      const window = completeWindow(req.window, captured);
      const nothing = !planned.fullRead && window.to === null;
      writer = await ParquetPartWriter.open({ outDir: req.outDir, columns, partRows: req.partRows, partBytes: req.partBytes, duck: this.duck });
      if (!nothing) {
        const s = planPgSelect(p, columns, { fullRead: planned.fullRead, from: window.from, to: window.to }, req.range);
        await streamCursor(client, s, writer);
      }
      const files = await writer.finish();
      let sourceRowCount: number | null = null;
      if (req.countSource && !nothing) {
        const c = planPgCount(p, planned.fullRead ? null : window.to);
        sourceRowCount = Number((await client.query<{ n: string }>(c.sql, c.parameters)).rows[0]?.n ?? 0);
      }
      let nullRows: number | null = null;
      const col = p.source.changeDetection.column;
      if (req.window.mode === 'timestamp' && col && !req.range) {
        const c = planPgNullChangeColumn(p, col);
        nullRows = Number((await client.query<{ n: string }>(c.sql, c.parameters)).rows[0]?.n ?? 0);
      }
      await client.query('COMMIT');
      const read = readRecord(planned.fullRead ? 'full' : nothing ? 'empty' : 'window', window, nullRows);
      const warnings = nullChangeColumnWarning(p.name, col ?? '', read.kind, nullRows);
      return { files, window, read, sourceRowCount, schema: writer.schema(), ...(warnings.length ? { warnings } : {}), ...(nothing ? {} : { statement: planPgSelect(p, columns, { fullRead: planned.fullRead, from: window.from, to: window.to }, req.range) }) };
    } catch (err) {
      throw classifyPgError(err, what);
    } finally {
      await writer?.close();
      await client.end().catch(() => undefined);
    }
  }

  async extractKeys(req: KeysRequest): Promise<KeysResult> {
    const p = this.pipeline;
    const what = `source ${p.source.connection} (pipeline ${p.name}), key-only read`;
    const client = this.client();
    let writer: ParquetPartWriter | undefined;
    try {
      await beginSnapshotRead(client);
      // The key columns' types, from the relation itself (nothing but the keys is selected).
      const columns = await describeColumns(client, { sql: `SELECT ${p.key.map(quotePg).join(', ')} FROM ${pgRelation(p)} LIMIT 0`, parameters: [] });
      writer = await ParquetPartWriter.open({ outDir: req.outDir, columns, partRows: req.partRows, partBytes: req.partBytes, duck: this.duck });
      const s = planPgKeys(p, columns);
      await streamCursor(client, s, writer);
      const files = await writer.finish();
      await client.query('COMMIT');
      return { files, schema: writer.schema() };
    } catch (err) {
      throw classifyPgError(err, what);
    } finally {
      await writer?.close();
      await client.end().catch(() => undefined);
    }
  }

  async keyStats(req: { window: WindowInput; column: string }): Promise<KeyStats> {
    const p = this.pipeline;
    const client = this.client();
    try {
      await beginSnapshotRead(client);
      let captured: string | null = null;
      if (req.window.mode === 'timestamp') {
        const u = planPgUpper(p);
        captured = (await client.query<{ upper: string | null }>(u.sql, u.parameters)).rows[0]?.upper ?? null;
      }
      const k = planPgKeyStats(p, req.column);
      const r = (await client.query<{ t: string; mn: string | null; mx: string | null; n: string }>(k.sql, k.parameters)).rows[0];
      await client.query('COMMIT');
      if (r && r.mn !== null && !['smallint', 'integer', 'bigint'].includes(r.t)) {
        throw new TerminalError(`source.partitions.column ${req.column} of ${p.name} is ${r.t}; partitions split an integer column, name one in source.partitions.column`);
      }
      return { window: completeWindow(req.window, captured), min: r?.mn ?? null, max: r?.mx ?? null, rows: Number(r?.n ?? 0) };
    } catch (err) {
      throw classifyPgError(err, `source ${p.source.connection} (pipeline ${p.name})`);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  private client(): Pg.Client {
    const timeout = parseDuration(this.conn.requestTimeout);
    const client = new (pgLib().Client)({
      connectionString: this.connectionString,
      types: textTypes,
      statement_timeout: timeout,
      query_timeout: timeout,
      connectionTimeoutMillis: Math.min(timeout, 30_000),
      application_name: 'tidemark',
    });
    // A dropped connection also surfaces as the failing query's rejection; this keeps the
    // client's 'error' event from crashing the process in between.
    client.on('error', () => undefined);
    return client;
  }

  async close(): Promise<void> {}
}

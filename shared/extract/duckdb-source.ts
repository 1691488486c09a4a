import { mkdirSync, readdirSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { splitQualified } from '../config/identifiers.js';
import type { PipelineConfig } from '../config/schema.js';
import { TerminalError } from '../errors.js';
import { DuckSession, duckLiteral, quoteDuck, type DuckSettings } from '../duckdb/session.js';
import type { ExtractRequest, ExtractResult, KeyRange, KeyStats, KeysRequest, KeysResult, Source } from './source.js';
import type { WindowInput } from './window.js';
import { completeWindow, nullChangeColumnWarning, planWindow, readRecord } from './window.js';
import { PARQUET_COPY_OPTIONS } from '../storage/parquet-format.js';
import type { ExtractWindow } from '../storage/manifest.js';

const ROW_GROUP_ROWS = 122_880;
const ISO = "'%Y-%m-%dT%H:%M:%S.%fZ'";

/** The relation a pipeline reads: a quoted table, or the user's query as a subquery. */
export function sourceRelation(p: PipelineConfig): string {
  if (p.source.table) {
    const q = splitQualified(p.source.table);
    return q.schema ? `${quoteDuck(q.schema)}.${quoteDuck(q.name)}` : quoteDuck(q.name);
  }
  return `(${p.source.query}) AS _tm_q`;
}

/** What the raw Parquet carries a HUGEINT / UHUGEINT column as (the manifest's schema says so too). */
export const WIDE_INTEGER_CARRIER = 'DECIMAL(38,0)';
const isWideInteger = (type: string) => /^U?HUGEINT$/i.test(type);

/**
 * Pure planner for the DuckDB source's SQL. The window bounds are bound parameters; the
 * column and relation come from validated config and are quoted.
 */
export function planDuckExtract(
  p: PipelineConfig,
  req: { from: string | null; to: string | null; fullRead: boolean; range?: KeyRange; columnType?: string; wideIntegers?: readonly string[] },
) {
  const rel = sourceRelation(p);
  const col = p.source.changeDetection.column;
  // A TIMESTAMP column compared with a TIMESTAMPTZ would be cast row by row, which also keeps
  // DuckDB from using the row groups' min/max to skip them; the bound is cast once instead
  // (the session runs in UTC, so both read the naive column as UTC).
  const bound = (n: number) =>
    req.columnType === 'TIMESTAMP' ? `CAST(CAST($${n} AS TIMESTAMPTZ) AS TIMESTAMP)` : `CAST($${n} AS TIMESTAMPTZ)`;
  const where: string[] = [];
  const parameters: string[] = [];
  if (req.range) {
    const k = quoteDuck(req.range.column);
    parameters.push(req.range.lo, req.range.hi);
    where.push(`${k} >= CAST($${parameters.length - 1} AS HUGEINT) AND ${k} ${req.range.last ? '<=' : '<'} CAST($${parameters.length} AS HUGEINT)`);
  }
  if (!req.fullRead && col) {
    if (req.from !== null) {
      parameters.push(req.from);
      where.push(`${quoteDuck(col)} > ${bound(parameters.length)}`);
    }
    if (req.to !== null) {
      parameters.push(req.to);
      where.push(`${quoteDuck(col)} <= ${bound(parameters.length)}`);
    }
  }
  // Parquet has no 128-bit integer: DuckDB would write HUGEINT / UHUGEINT as DOUBLE and lose
  // every digit past the 17th. DECIMAL(38,0) keeps 38 exactly; a wider value fails the cast.
  const wide = req.wideIntegers ?? [];
  const star = wide.length ? `* REPLACE (${wide.map((c) => `CAST(${quoteDuck(c)} AS ${WIDE_INTEGER_CARRIER}) AS ${quoteDuck(c)}`).join(', ')})` : '*';
  const select = `SELECT ${star} FROM ${rel}${where.length ? ` WHERE ${where.join(' AND ')}` : ''}`;
  return {
    upper: col ? { sql: `SELECT strftime(CAST(max(${quoteDuck(col)}) AS TIMESTAMPTZ), ${ISO}) AS upper FROM ${rel}`, parameters: [] } : undefined,
    select: { sql: select, parameters },
    /** Source rows whose change column is NULL (the NULL change-column rule, extract/window.ts). */
    nullChangeColumn: col ? { sql: `SELECT count(*)::BIGINT AS n FROM ${rel} WHERE ${quoteDuck(col)} IS NULL`, parameters: [] } : undefined,
    countUpTo: (to: string | null) =>
      col && to !== null
        ? { sql: `SELECT count(*)::BIGINT AS n FROM ${rel} WHERE ${quoteDuck(col)} <= ${bound(1)}`, parameters: [to] }
        : { sql: `SELECT count(*)::BIGINT AS n FROM ${rel}`, parameters: [] },
  };
}

/** The key columns of every row of the source relation (a reconcile's key-only read). */
export function planDuckKeys(p: PipelineConfig): { sql: string; parameters: [] } {
  return { sql: `SELECT ${p.key.map(quoteDuck).join(', ')} FROM ${sourceRelation(p)}`, parameters: [] };
}

/** A DuckDB database file as a source; DuckDB itself writes the Parquet parts (no JS rows). */
export class DuckDbSource implements Source {
  constructor(
    private readonly file: string,
    private readonly pipeline: PipelineConfig,
    private readonly settings: DuckSettings,
  ) {}

  /**
   * Opens the source file read-only in a scratch DuckDB. Catalog, binder and parser errors mean
   * the config does not match the source: terminal, with `what` naming the operation.
   */
  private async withSource<T>(what: string, fn: (s: DuckSession) => Promise<T>): Promise<T> {
    if (!existsSync(this.file)) {
      throw new TerminalError(`source database ${this.file} does not exist; check connections.${this.pipeline.source.connection}.path`);
    }
    const s = await DuckSession.open(':memory:', this.settings);
    try {
      await s.run(`SET TimeZone = 'UTC'`);
      await s.run(`ATTACH ${duckLiteral(resolve(this.file))} AS src (READ_ONLY)`);
      await s.run('USE src');
      return await fn(s);
    } catch (err) {
      if (err instanceof TerminalError) throw err;
      const msg = (err as Error).message;
      if (/Catalog Error|Binder Error|Parser Error/.test(msg)) {
        throw new TerminalError(`source ${this.pipeline.source.connection} rejected the ${what} of ${this.pipeline.name}: ${msg}`, { cause: err });
      }
      throw err;
    } finally {
      await s.close();
    }
  }

  /** The window's upper bound, captured from the source before anything is read. */
  private async captureWindow(s: DuckSession, window: WindowInput): Promise<{ window: ExtractWindow; fullRead: boolean }> {
    const planned = planWindow(window);
    const plan0 = planDuckExtract(this.pipeline, { from: planned.from, to: null, fullRead: planned.fullRead });
    let captured: string | null = null;
    if (plan0.upper && window.mode !== 'full') captured = (await s.one<{ upper: string | null }>(plan0.upper.sql))?.upper ?? null;
    return { window: completeWindow(window, captured), fullRead: planned.fullRead };
  }

  async extract(req: ExtractRequest): Promise<ExtractResult> {
    return this.withSource('extract', async (s) => {
      const { window, fullRead } = await this.captureWindow(s, req.window);
      const nothingToRead = !fullRead && window.to === null;
      const described = (await s.rows<{ column_name: string; column_type: string }>(`DESCRIBE SELECT * FROM ${sourceRelation(this.pipeline)}`)).map(
        (r) => ({ name: r.column_name, type: r.column_type }),
      );
      const wideIntegers = described.filter((c) => isWideInteger(c.type)).map((c) => c.name);
      const schema = described.map((c) => (isWideInteger(c.type) ? { ...c, type: WIDE_INTEGER_CARRIER } : c));
      const columnType = schema.find((c) => c.name === this.pipeline.source.changeDetection.column)?.type;
      const plan = planDuckExtract(this.pipeline, {
        from: window.from,
        to: window.to,
        fullRead,
        ...(req.range ? { range: req.range } : {}),
        ...(columnType ? { columnType } : {}),
        wideIntegers,
      });
      mkdirSync(req.outDir, { recursive: true });
      if (!nothingToRead) {
        const rowGroup = Math.min(ROW_GROUP_ROWS, req.partRows);
        const groupsPerFile = Math.max(1, Math.ceil(req.partRows / rowGroup));
        try {
          await s.run(
            `COPY (${plan.select.sql}) TO ${duckLiteral(req.outDir)} (${PARQUET_COPY_OPTIONS}, ROW_GROUP_SIZE ${rowGroup}, ROW_GROUPS_PER_FILE ${groupsPerFile}, FILE_SIZE_BYTES ${duckLiteral(req.partBytes)}, OVERWRITE_OR_IGNORE true)`,
            plan.select.parameters,
          );
        } catch (err) {
          if (wideIntegers.length && /Conversion Error/i.test((err as Error).message)) {
            throw new TerminalError(
              `source ${this.pipeline.source.connection} of ${this.pipeline.name}: a value of ${wideIntegers.join(' / ')} (${described.find((c) => c.name === wideIntegers[0])?.type}) has more than 38 digits, which no warehouse column holds exactly; nothing was loaded. Carry it as text with source.query (SELECT * REPLACE (CAST(${quoteDuck(wideIntegers[0]!)} AS VARCHAR) AS ${quoteDuck(wideIntegers[0]!)}) FROM …) or narrow it in the source`,
              { cause: err },
            );
          }
          throw err;
        }
      }
      let sourceRowCount: number | null = null;
      if (req.countSource) {
        const c = plan.countUpTo(window.mode === 'full' ? null : window.to);
        sourceRowCount = window.mode !== 'full' && window.to === null ? 0 : Number((await s.one<{ n: bigint }>(c.sql, c.parameters))?.n ?? 0);
      }
      // Counted on whole reads only: a partition would count the whole table once per range.
      const nullRows =
        plan.nullChangeColumn && window.mode === 'timestamp' && !req.range
          ? Number((await s.one<{ n: bigint }>(plan.nullChangeColumn.sql))?.n ?? 0)
          : null;
      const read = readRecord(fullRead ? 'full' : nothingToRead ? 'empty' : 'window', window, nullRows);
      const warnings = nullChangeColumnWarning(this.pipeline.name, this.pipeline.source.changeDetection.column ?? '', read.kind, nullRows);
      const files = existsSync(req.outDir)
        ? readdirSync(req.outDir)
            .filter((f) => f.endsWith('.parquet'))
            .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
            .map((f) => join(req.outDir, f))
        : [];
      return { files, window, read, sourceRowCount, schema, ...(warnings.length ? { warnings } : {}), ...(nothingToRead ? {} : { statement: plan.select }) };
    });
  }

  async extractKeys(req: KeysRequest): Promise<KeysResult> {
    return this.withSource('key-only read', async (s) => {
      const plan = planDuckKeys(this.pipeline);
      mkdirSync(req.outDir, { recursive: true });
      const schema = (await s.rows<{ column_name: string; column_type: string }>(`DESCRIBE ${plan.sql}`)).map((r) => ({ name: r.column_name, type: r.column_type }));
      const rowGroup = Math.min(ROW_GROUP_ROWS, req.partRows);
      await s.run(
        `COPY (${plan.sql}) TO ${duckLiteral(req.outDir)} (${PARQUET_COPY_OPTIONS}, ROW_GROUP_SIZE ${rowGroup}, ROW_GROUPS_PER_FILE ${Math.max(1, Math.ceil(req.partRows / rowGroup))}, FILE_SIZE_BYTES ${duckLiteral(req.partBytes)}, OVERWRITE_OR_IGNORE true)`,
      );
      const files = readdirSync(req.outDir)
        .filter((f) => f.endsWith('.parquet'))
        .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
        .map((f) => join(req.outDir, f));
      return { files, schema };
    });
  }

  async keyStats(req: { window: WindowInput; column: string }): Promise<KeyStats> {
    return this.withSource('partition plan', async (s) => {
      const { window } = await this.captureWindow(s, req.window);
      const k = quoteDuck(req.column);
      const r = await s.one<{ t: string; mn: string | null; mx: string | null; n: bigint }>(
        `SELECT typeof(min(${k})) AS t, CAST(min(${k}) AS VARCHAR) AS mn, CAST(max(${k}) AS VARCHAR) AS mx, count(*)::BIGINT AS n FROM ${sourceRelation(this.pipeline)}`,
      );
      if (r && !/INT/.test(r.t)) {
        throw new TerminalError(`source.partitions.column ${req.column} of ${this.pipeline.name} is ${r.t}; partitions split an integer column, name one in source.partitions.column`);
      }
      return { window, min: r?.mn ?? null, max: r?.mx ?? null, rows: Number(r?.n ?? 0) };
    });
  }

  async close(): Promise<void> {}
}

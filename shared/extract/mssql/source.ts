import type { PipelineConfig } from '../../config/schema.js';
import { TerminalError } from '../../errors.js';
import type { DuckSettings } from '../../duckdb/session.js';
import type { ExtractWindow, ReadKind } from '../../storage/manifest.js';
import type { ColumnPlan } from '../column-plan.js';
import { ParquetPartWriter } from '../row-writer.js';
import { SOURCE_OP_COLUMN, type ExtractRequest, type ExtractResult, type ExtractWarning, type KeyStats, type KeysRequest, type KeysResult, type Source } from '../source.js';
import { compareHex, compareVersion, planVersionWindow, type VersionWindowPlan } from '../version-window.js';
import { completeWindow, planWindow, readRecord, type WindowInput } from '../window.js';
import { paramType, type MssqlConnector, type MssqlRequester } from './driver.js';
import { classifyMssqlError, sqlErrorNumber } from './errors.js';
import {
  planCaptureCdc,
  planCaptureChangeTracking,
  planCaptureRowversion,
  planCaptureTimestamp,
  planCdc,
  planCaptureInstances,
  chooseCaptureInstance,
  groupCaptureInstances,
  planChangeTracking,
  planCountRowversion,
  planCountTimestamp,
  planDescribe,
  planFull,
  planKeyStats,
  planRowversion,
  planTimestamp,
  type MssqlStatement,
  mssqlRelation,
} from './plan.js';
import { describedColumn, mssqlColumnPlan, type MssqlColumnPlan } from './types.js';

type Row = Record<string, unknown>;

const opColumn: ColumnPlan = { name: SOURCE_OP_COLUMN, sourceType: 'varchar', duckType: 'VARCHAR', fromText: (c) => c };

function prepare(req: ReturnType<MssqlConnector['request']>, stmt: MssqlStatement) {
  req.stream = true;
  for (const p of stmt.parameters) req.input(p.name, paramType(), p.value);
}

/**
 * Streams one statement's rows into `onRow`. When onRow asks for a pause (a part is due) the
 * request is paused until `drain` resolves. Rows tedious still delivers after pause() (the rest
 * of a packet already read) wait in a small backlog, so no row is dropped or reordered.
 */
export function streamRows(
  conn: MssqlRequester,
  stmt: MssqlStatement,
  onRow: (row: Row) => boolean,
  drain: () => Promise<void>,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const req = conn.request();
    prepare(req, stmt);
    let failed = false;
    let draining = false;
    let done = false;
    const backlog: Row[] = [];
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      if (!done) req.cancel();
      reject(err);
    };
    const finishIfDone = () => {
      if (done && !draining && !failed) resolve();
    };
    const startDrain = () => {
      draining = true;
      req.pause();
      drain().then(
        () => {
          while (backlog.length > 0 && !failed) {
            if (onRow(backlog.shift()!)) {
              startDrain();
              return;
            }
          }
          draining = false;
          if (done) finishIfDone();
          else req.resume();
        },
        fail,
      );
    };
    req.on('row', (row) => {
      if (failed) return;
      if (draining) {
        backlog.push(row);
        return;
      }
      try {
        if (onRow(row)) startDrain();
      } catch (err) {
        fail(err);
      }
    });
    req.on('error', fail);
    req.on('done', () => {
      done = true;
      finishIfDone();
    });
    req.query(stmt.sql);
  });
}

/** Column names of what the pipeline reads, as the result set's metadata spells them (no rows read). */
function resultNames(conn: MssqlRequester, p: PipelineConfig): Promise<string[]> {
  return new Promise<string[]>((resolve) => {
    const req = conn.request();
    req.stream = true;
    let names: string[] = [];
    req.on('recordset', (cols) => {
      names = Object.keys(cols);
    });
    req.on('row', () => undefined);
    // Only a refinement of the describe result: on any error the described names stand.
    req.on('error', () => resolve([]));
    req.on('done', () => resolve(names));
    req.query(`SELECT TOP 0 * FROM ${mssqlRelation(p)}`);
  });
}

async function collect(conn: MssqlRequester, stmt: MssqlStatement): Promise<Row[]> {
  const rows: Row[] = [];
  await streamRows(
    conn,
    stmt,
    (r) => {
      rows.push(r);
      return false;
    },
    async () => undefined,
  );
  return rows;
}

function text(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  return typeof v === 'string' ? v : String(v);
}

async function describeColumns(conn: MssqlRequester, p: PipelineConfig): Promise<MssqlColumnPlan[]> {
  const described = await collect(conn, planDescribe(p));
  const visible = described.filter((r) => r.is_hidden !== true && r.is_hidden !== 1);
  const names = await resultNames(conn, p);
  const columns: MssqlColumnPlan[] = visible.map((r, i) => {
    const col = describedColumn(r);
    // Some engines (Babelfish) describe lower-cased names; the result set's own metadata
    // has the names as declared, which is what the pipeline's key and columns refer to.
    const declared = names[i];
    return mssqlColumnPlan(declared && declared.toLowerCase() === col.name.toLowerCase() ? { ...col, name: declared } : col);
  });
  if (columns.length === 0) throw new TerminalError(`${p.source.table ?? 'source.query'} returns no columns`);
  return columns;
}

/**
 * The SQL Server source (docs/design.md §6): every change-detection mode, rows streamed with
 * back-pressure into bounded Parquet parts. Values arrive as exact text (types.ts) and are
 * typed by DuckDB when a part is written.
 */
export class MssqlSource implements Source {
  constructor(
    private readonly connect: () => Promise<MssqlConnector>,
    private readonly pipeline: PipelineConfig,
    private readonly duck: DuckSettings,
  ) {}

  async extract(req: ExtractRequest): Promise<ExtractResult> {
    const p = this.pipeline;
    const what = `source ${p.source.connection} (pipeline ${p.name})`;
    let conn: MssqlConnector;
    try {
      conn = await this.connect();
    } catch (err) {
      throw classifyMssqlError(err, what);
    }
    try {
      if (req.window.mode !== 'changeTracking') return await this.read(conn, req);
      return await this.readInSnapshot(conn, req);
    } catch (err) {
      throw classifyMssqlError(err, what);
    } finally {
      await conn.close().catch(() => undefined);
    }
  }

  /**
   * Change Tracking: the current and min valid versions and CHANGETABLE (or the re-snapshot)
   * are read in one SNAPSHOT transaction. Read apart, the cleanup job could remove changes
   * after the min valid version was checked, and they would be lost without a gap warning.
   */
  private async readInSnapshot(conn: MssqlConnector, req: ExtractRequest): Promise<ExtractResult> {
    const p = this.pipeline;
    // SQL Server raises 3952 at the first statement of the transaction (or at BEGIN).
    const notAllowed = (err: unknown) =>
      sqlErrorNumber(err) === 3952
        ? new TerminalError(
            `source ${p.source.connection} (pipeline ${p.name}): Change Tracking is read in a SNAPSHOT isolation transaction, which the database of ${p.source.table} does not allow; run ALTER DATABASE <database> SET ALLOW_SNAPSHOT_ISOLATION ON`,
            { cause: err },
          )
        : err;
    const tx = await conn.beginSnapshot().catch((err: unknown) => {
      throw notAllowed(err);
    });
    let result: ExtractResult;
    try {
      result = await this.read(tx, req);
    } catch (err) {
      await tx.rollback().catch(() => undefined);
      throw notAllowed(err);
    }
    await tx.commit();
    return result;
  }

  private async read(conn: MssqlRequester, req: ExtractRequest): Promise<ExtractResult> {
    const p = this.pipeline;
    const warnings: ExtractWarning[] = [];
    let columns = await describeColumns(conn, p);
    // CDC: every read (changes and re-snapshots alike) selects the capture instance's columns,
    // so that a column added to the table is drift to report, not a broken change function.
    let captureInstance: string | undefined;
    if (req.window.mode === 'cdc') {
      const fresh = req.window.runMode === 'full' ? null : req.window.saved;
      const choice = chooseCaptureInstance(p, groupCaptureInstances(await collect(conn, planCaptureInstances(p))), columns, fresh, compareHex);
      captureInstance = choice.instance.name;
      columns = choice.columns;
      warnings.push(...choice.notes);
    }

    let window: ExtractWindow;
    let stmt: MssqlStatement | null;
    let changeFeed = false;
    let count: MssqlStatement | null = null;
    let readKind: ReadKind;
    const mode = req.window.mode;
    if (mode === 'full' || mode === 'timestamp') {
      const planned = planWindow(req.window);
      let captured: string | null = null;
      if (mode === 'timestamp') {
        const upper = (await collect(conn, planCaptureTimestamp(p, columns)))[0]?.upper;
        captured = typeof upper === 'string' ? `${upper}Z` : null;
      }
      window = completeWindow(req.window, captured);
      readKind = planned.fullRead ? 'full' : window.to === null ? 'empty' : 'window';
      if (planned.fullRead) stmt = planFull(p, columns, req.range);
      else if (window.to === null) stmt = null;
      else {
        stmt = planTimestamp(p, columns, { from: window.from, to: window.to });
        count = planCountTimestamp(p, window.to);
      }
    } else {
      let plan: VersionWindowPlan;
      if (mode === 'rowversion') {
        const upper = text((await collect(conn, planCaptureRowversion()))[0]?.upper);
        plan = planVersionWindow(req.window, { upper }, compareHex);
      } else if (mode === 'cdc') {
        const r = (await collect(conn, planCaptureCdc(p, captureInstance)))[0] ?? {};
        const max = text(r.max_lsn);
        const min = text(r.min_lsn);
        if (max === null) throw new TerminalError(`CDC is not enabled on the database of ${p.source.table}: sys.fn_cdc_get_max_lsn() is NULL; run sys.sp_cdc_enable_db`);
        if (min === null || /^0x0+$/i.test(min)) {
          throw new TerminalError(`CDC capture instance of ${p.source.table} not found (sys.fn_cdc_get_min_lsn is empty); enable it with sys.sp_cdc_enable_table or set source.changeDetection.captureInstance`);
        }
        plan = planVersionWindow(req.window, { upper: max, oldestAvailable: min }, compareHex);
      } else {
        const r = (await collect(conn, planCaptureChangeTracking(p)))[0] ?? {};
        const current = text(r.current_version);
        const minValid = text(r.min_valid);
        if (current === null) throw new TerminalError(`Change Tracking is not enabled on the database of ${p.source.table}; ALTER DATABASE … SET CHANGE_TRACKING = ON`);
        if (minValid === null) throw new TerminalError(`Change Tracking is not enabled on table ${p.source.table}; ALTER TABLE ${p.source.table} ENABLE CHANGE_TRACKING`);
        plan = planVersionWindow(req.window, { upper: current, oldestAvailable: minValid }, compareVersion);
      }
      window = plan.window;
      if (plan.gap) warnings.push({ event: 'SnapshotGap', message: `${p.name}: ${plan.gap}` });
      readKind = plan.read === 'snapshot' ? 'full' : plan.read === 'nothing' ? 'empty' : 'window';
      if (plan.read === 'snapshot') stmt = planFull(p, columns, req.range);
      else if (plan.read === 'nothing') {
        stmt = null;
        changeFeed = mode !== 'rowversion';
      } else if (mode === 'rowversion') {
        stmt = planRowversion(p, columns, { from: window.from, to: window.to! });
        count = planCountRowversion(p, window.to!);
      } else {
        changeFeed = true;
        const w = { from: window.from!, to: window.to! };
        stmt = mode === 'cdc' ? planCdc(p, columns, w, captureInstance) : planChangeTracking(p, columns, w);
      }
    }

    const plans: ColumnPlan[] = changeFeed ? [...columns, opColumn] : columns;
    const writer = await ParquetPartWriter.open({ outDir: req.outDir, columns: plans, partRows: req.partRows, partBytes: req.partBytes, duck: this.duck });
    try {
      if (stmt) {
        const names = plans.map((c) => c.name);
        await streamRows(conn, stmt, (row) => writer.add(names.map((n) => text(row[n]))), () => writer.flush());
      }
      const files = await writer.finish();
      let sourceRowCount: number | null = null;
      if (req.countSource && count) sourceRowCount = Number((await collect(conn, count))[0]?.n ?? 0);
      // NULL change-column rows are not counted here: the T-SQL statements stay as they are.
      const read = readRecord(readKind, window, null);
      return { files, window, read, sourceRowCount, schema: writer.schema(), ...(warnings.length ? { warnings } : {}), ...(stmt ? { statement: stmt } : {}) };
    } finally {
      await writer.close();
    }
  }

  /** The key columns of every source row (a reconcile's key-only read): `SELECT key… FROM source`. */
  async extractKeys(req: KeysRequest): Promise<KeysResult> {
    const p = this.pipeline;
    const what = `source ${p.source.connection} (pipeline ${p.name}), key-only read`;
    let conn: MssqlConnector;
    try {
      conn = await this.connect();
    } catch (err) {
      throw classifyMssqlError(err, what);
    }
    let writer: ParquetPartWriter | undefined;
    try {
      const all = await describeColumns(conn, p);
      const keys = p.key.map((k) => {
        const c = all.find((x) => x.name.toLowerCase() === k.toLowerCase());
        if (!c) throw new TerminalError(`${what}: key column ${k} is not a column of ${p.source.table ?? 'source.query'}`);
        return c;
      });
      writer = await ParquetPartWriter.open({ outDir: req.outDir, columns: keys, partRows: req.partRows, partBytes: req.partBytes, duck: this.duck });
      const w = writer;
      await streamRows(conn, planFull(p, keys), (row) => w.add(keys.map((c) => text(row[c.name]))), () => w.flush());
      return { files: await w.finish(), schema: w.schema() };
    } catch (err) {
      throw classifyMssqlError(err, what);
    } finally {
      await writer?.close();
      await conn.close().catch(() => undefined);
    }
  }

  /**
   * Key statistics for a partitioned full read. The upper bound is captured here, once, as
   * extract() would: the partitions then read the snapshot and the checkpoint moves to it.
   */
  async keyStats(req: { window: WindowInput; column: string }): Promise<KeyStats> {
    const p = this.pipeline;
    const what = `source ${p.source.connection} (pipeline ${p.name})`;
    let conn: MssqlConnector | undefined;
    try {
      conn = await this.connect();
      let window: ExtractWindow;
      const mode = req.window.mode;
      if (mode === 'full' || mode === 'timestamp') {
        let captured: string | null = null;
        if (mode === 'timestamp') {
          const upper = (await collect(conn, planCaptureTimestamp(p, await describeColumns(conn, p))))[0]?.upper;
          captured = typeof upper === 'string' ? `${upper}Z` : null;
        }
        window = completeWindow(req.window, captured);
      } else if (mode === 'rowversion') {
        window = planVersionWindow(req.window, { upper: text((await collect(conn, planCaptureRowversion()))[0]?.upper) }, compareHex).window;
      } else if (mode === 'cdc') {
        window = planVersionWindow(req.window, { upper: text((await collect(conn, planCaptureCdc(p)))[0]?.max_lsn) }, compareHex).window;
      } else {
        window = planVersionWindow(req.window, { upper: text((await collect(conn, planCaptureChangeTracking(p)))[0]?.current_version) }, compareVersion).window;
      }
      const r = (await collect(conn, planKeyStats(p, req.column)))[0] ?? {};
      const mn = text(r.mn);
      const mx = text(r.mx);
      if (mn !== null && !/^-?\d+$/.test(mn)) {
        throw new TerminalError(`source.partitions.column ${req.column} of ${p.name} is not an integer column (min ${mn}); name one in source.partitions.column`);
      }
      return { window, min: mn, max: mx, rows: Number(text(r.n) ?? 0) };
    } catch (err) {
      throw classifyMssqlError(err, what);
    } finally {
      await conn?.close().catch(() => undefined);
    }
  }

  async close(): Promise<void> {}
}

import type { PipelineConfig } from '../../config/schema.js';
import { TerminalError } from '../../errors.js';
import type { RetryPolicy } from '../../retry.js';
import type { ExtractWindow } from '../../storage/manifest.js';
import type { DuckSettings } from '../../duckdb/session.js';
import type { ColumnPlan } from '../column-plan.js';
import { ParquetPartWriter } from '../row-writer.js';
import { SOURCE_OP_COLUMN, type ExtractRequest, type ExtractResult, type ExtractWarning, type KeyStats, type KeysRequest, type KeysResult, type Source } from '../source.js';
import { completeWindow, planWindow, readRecord, type WindowInput } from '../window.js';
import { SalesforceClient, type SfConnectionConfig } from './client.js';
import { countSoql, parseSoql, planSoql, type SoqlShape } from './soql.js';
import { selectFields, sfColumnPlan, type SfDescribe } from './types.js';

const opColumn: ColumnPlan = { name: SOURCE_OP_COLUMN, sourceType: 'string', duckType: 'VARCHAR', fromText: (c) => c };

export const DEFAULT_SF_COLUMN = 'SystemModstamp';

export interface SalesforceSourceOptions {
  retry: RetryPolicy;
  log?: (level: 'info' | 'warn', message: string) => void;
  /** Rows per Bulk 2.0 results page (maxRecords); pages stream, so this bounds no memory. */
  bulkPageRows?: number;
  poll?: { firstPollMs: number; maxPollMs: number; timeoutMs: number };
}

/** Share of the org's daily API requests above which every run warns. */
const USAGE_WARN = 0.8;

/** REST JSON value → the text the ColumnPlan casts; relationship paths walk nested objects. */
function jsonText(rec: Record<string, unknown>, path: string): string | null {
  let v: unknown = rec;
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object') return null;
    const o = v as Record<string, unknown>;
    const k = Object.keys(o).find((x) => x.toLowerCase() === part.toLowerCase());
    v = k === undefined ? null : o[k];
  }
  if (v === null || v === undefined) return null;
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/**
 * The Salesforce source (issue 18). Full reads (first load, --full, a recycle-bin gap) go
 * through Bulk API 2.0; incremental reads use `queryAll` on the timestamp column so one read
 * returns changed and deleted rows (IsDeleted = true → `_tm_source_op` 'delete'), through REST
 * when the window is small and Bulk 2.0 above `source.bulkThreshold`.
 */
export class SalesforceSource implements Source {
  constructor(
    private readonly conn: SfConnectionConfig,
    private readonly env: NodeJS.ProcessEnv,
    private readonly pipeline: PipelineConfig,
    private readonly duck: DuckSettings,
    private readonly o: SalesforceSourceOptions,
  ) {}

  private get what(): string {
    return `source ${this.pipeline.source.connection} (pipeline ${this.pipeline.name})`;
  }

  private connect(): Promise<SalesforceClient> {
    return SalesforceClient.connect(this.conn, this.env, { retry: this.o.retry, what: this.what, onRetry: (m) => this.o.log?.('warn', m) });
  }

  private column(): string {
    return this.pipeline.source.changeDetection.column ?? DEFAULT_SF_COLUMN;
  }

  /** The object, its fields (checked against describe) and their column plans. */
  private async shape(client: SalesforceClient): Promise<{ shape: SoqlShape; columns: ColumnPlan[]; describe: SfDescribe }> {
    const s = this.pipeline.source;
    if (s.object) {
      const describe = await client.describe(s.object);
      const fields = selectFields(describe, s.fields ?? 'all', s.object);
      if (fields.length === 0) throw new TerminalError(`${this.what}: ${s.object} has no field the connection's user can read`);
      return { shape: { object: s.object, fields: fields.map((f) => f.name) }, columns: fields.map(sfColumnPlan), describe };
    }
    if (!s.soql) throw new TerminalError(`${this.what}: a salesforce connection reads source.object or source.soql, not source.table / source.query`);
    const shape = parseSoql(s.soql);
    const describe = await client.describe(shape.object);
    const byName = new Map(describe.fields.map((f) => [f.name.toLowerCase(), f]));
    const columns = shape.fields.map((name) => {
      if (name.includes('.')) return { name, sourceType: 'relationship', duckType: 'VARCHAR', fromText: (c: string) => c };
      const f = byName.get(name.toLowerCase());
      if (!f) throw new TerminalError(`source.soql: ${shape.object} has no field ${name} the connection's user can read`);
      return sfColumnPlan(f);
    });
    return { shape, columns, describe };
  }

  private async captureUpper(client: SalesforceClient, object: string, column: string): Promise<string | null> {
    // queryAll: a delete also moves SystemModstamp, so the bound covers the deleted rows too.
    const page = await client.query(`SELECT ${column} FROM ${object} ORDER BY ${column} DESC NULLS LAST LIMIT 1`, true);
    const v = page.records[0]?.[column];
    return typeof v === 'string' ? new Date(Date.parse(v.replace('+0000', 'Z'))).toISOString() : null;
  }

  /**
   * The delete log reaches back only so far (15 days, less when it was purged). When it no
   * longer reaches the watermark, some deletes were never seen and queryAll cannot show them.
   */
  private async deletesGap(client: SalesforceClient, object: string, from: string): Promise<string | null> {
    // getDeleted wants end more than a minute after start and not in the future; only
    // `earliestDateAvailable` matters here, so a two-minute span keeps the answer small. A
    // watermark from the last minute is inside any delete log.
    const start = Date.parse(from);
    const end = Math.min(start + 120_000, Date.now());
    if (end - start < 61_000) return null;
    try {
      const r = await client.deleted(object, new Date(start).toISOString(), new Date(end).toISOString());
      if (r.earliestDateAvailable && Date.parse(r.earliestDateAvailable.replace('+0000', 'Z')) > Date.parse(from)) {
        return `the Salesforce delete log of ${object} starts at ${r.earliestDateAvailable}, after the watermark ${from}: deletes in between were purged from the recycle bin unseen`;
      }
      return null;
    } catch (err) {
      if (/INVALID_REPLICATION_DATE/.test(String((err as Error).message))) {
        return `the watermark ${from} of ${object} is older than Salesforce keeps deleted rows (INVALID_REPLICATION_DATE)`;
      }
      throw err;
    }
  }

  async extract(req: ExtractRequest): Promise<ExtractResult> {
    const p = this.pipeline;
    const client = await this.connect();
    const { shape, columns } = await this.shape(client);
    const column = this.column();
    const planned = planWindow(req.window);
    const timestamp = req.window.mode === 'timestamp';
    const captured = timestamp ? await this.captureUpper(client, shape.object, column) : null;
    let window: ExtractWindow = completeWindow({ ...req.window, ...(timestamp ? { column } : {}) }, captured);
    let fullRead = planned.fullRead;
    let liveKeys = false;
    const warnings: ExtractWarning[] = [];
    if (!fullRead && window.from !== null && window.to !== null) {
      const gap = await this.deletesGap(client, shape.object, window.from);
      if (gap && p.source.deletesGap === 'keys') {
        // The window as planned, plus every live Id: the transform deletes the absent keys.
        warnings.push({ event: 'SnapshotGap', message: `${p.name}: ${gap}. The window was read with every live ${p.key.join(', ')} beside it (deletesGap: keys), so absent rows are deleted; run more often than the recycle bin keeps rows` });
        liveKeys = true;
      } else if (gap) {
        // A full re-read: the transform then retires every key that is absent (from: null).
        warnings.push({ event: 'SnapshotGap', message: `${p.name}: ${gap}. A full re-read was taken instead, so absent rows are retired; run more often than the recycle bin keeps rows` });
        fullRead = true;
        window = { ...window, from: null };
      }
    }
    const nothing = !fullRead && window.to === null;
    const changeFeed = !fullRead;
    const plans = changeFeed ? [...columns, opColumn] : columns;
    const soql = planSoql(shape, {
      ...(fullRead ? {} : { window: { column, from: window.from, to: window.to } }),
      ...(req.range ? { range: req.range } : {}),
      ...(changeFeed ? { extraFields: ['IsDeleted'] } : {}),
    });
    const writer = await ParquetPartWriter.open({ outDir: req.outDir, columns: plans, partRows: req.partRows, partBytes: req.partBytes, duck: this.duck });
    try {
      let serverCount: number | null = null;
      if (!nothing) {
        let bulk = fullRead || req.range !== undefined;
        if (!bulk) {
          const estimate = await client.query(countSoql(soql), true);
          bulk = estimate.totalSize > p.source.bulkThreshold;
        }
        serverCount = await this.stream(client, soql, columns.map((c) => c.name), { bulk, queryAll: changeFeed, op: changeFeed }, writer);
      }
      if (changeFeed && !nothing && req.countSource) {
        // Row-count validation compares the live rows up to the bound with the target's current
        // rows, as for the database sources (Salesforce has no snapshot: taken right after the read).
        serverCount = (await client.query(countSoql(planSoql(shape, { window: { column, from: null, to: window.to } })), false)).totalSize;
      }
      const files = await writer.finish();
      const keys = liveKeys ? await this.extractKeys({ outDir: `${req.outDir}-keys`, partRows: req.partRows, partBytes: req.partBytes }) : undefined;
      const usage = client.usage;
      if (usage && usage.used >= usage.max * USAGE_WARN) this.o.log?.('warn', `${this.what}: Salesforce API usage ${usage.used}/${usage.max} requests (Sforce-Limit-Info)`);
      return {
        files,
        window,
        // Full reads: the count Salesforce itself reported for the job / query, so a lost page
        // or a parsing slip fails row-count validation.
        sourceRowCount: req.countSource && !nothing ? serverCount : req.countSource ? 0 : null,
        schema: writer.schema(),
        // What was read, as performed: a gap re-read is a full read, whatever was planned.
        read: readRecord(fullRead ? 'full' : nothing ? 'empty' : 'window', window, null),
        ...(keys ? { keys } : {}),
        ...(warnings.length ? { warnings } : {}),
      };
    } finally {
      await writer.close();
    }
  }

  /**
   * Reads `soql` into the writer through Bulk API 2.0 or REST paging; `op` appends the
   * `_tm_source_op` of each row from its IsDeleted. Returns the count Salesforce reported.
   */
  private async stream(
    client: SalesforceClient,
    soql: string,
    names: string[],
    o: { bulk: boolean; queryAll: boolean; op: boolean },
    writer: ParquetPartWriter,
  ): Promise<number> {
    const op = (deleted: string | null | undefined) => (deleted === 'true' ? 'delete' : 'update');
    if (o.bulk) {
      const job = await client.createQueryJob(soql, o.queryAll);
      try {
        const info = await client.waitForJob(job.id, this.o.poll ?? { firstPollMs: 500, maxPollMs: 10_000, timeoutMs: 6 * 3600_000 });
        let index: number[] = [];
        let deletedAt = -1;
        const r = await client.readResults(
          job.id,
          this.o.bulkPageRows ?? 50_000,
          (header) => {
            const pos = new Map(header.map((h, i) => [h.toLowerCase(), i]));
            index = names.map((n) => {
              const i = pos.get(n.toLowerCase());
              if (i === undefined) throw new TerminalError(`${this.what}: Bulk API 2.0 results have no column ${n} (header: ${header.join(', ')})`);
              return i;
            });
            deletedAt = pos.get('isdeleted') ?? -1;
          },
          (rec) => {
            // Bulk CSV writes NULL as an empty field.
            const row: Array<string | null> = index.map((i) => (rec[i] === '' || rec[i] === undefined ? null : rec[i]!));
            if (o.op) row.push(op(rec[deletedAt]));
            return writer.add(row);
          },
          () => writer.flush(),
        );
        this.o.log?.('info', `Bulk API 2.0 job ${job.id}: ${r.rows} rows in ${r.pages} pages (${r.gzipPages} gzip)`);
        return info.numberRecordsProcessed ?? r.rows;
      } finally {
        await client.deleteQueryJob(job.id);
      }
    }
    let page = await client.query(soql, o.queryAll);
    const total = page.totalSize;
    for (;;) {
      for (const rec of page.records) {
        const row = names.map((n) => jsonText(rec, n));
        if (o.op) row.push(op(jsonText(rec, 'IsDeleted')));
        if (writer.add(row)) await writer.flush();
      }
      if (page.done || !page.nextRecordsUrl) break;
      page = await client.queryMore(page.nextRecordsUrl);
    }
    return total;
  }

  /**
   * The key-only read of a reconcile (`SELECT Id FROM Account`): `query`, not `queryAll`, so
   * only live records; through Bulk API 2.0 above `source.bulkThreshold` records, REST below.
   */
  async extractKeys(req: KeysRequest): Promise<KeysResult> {
    const p = this.pipeline;
    const client = await this.connect();
    const { shape, columns } = await this.shape(client);
    const keys = p.key.map((k) => {
      const c = columns.find((x) => x.name.toLowerCase() === k.toLowerCase());
      if (!c) throw new TerminalError(`${this.what}: key field ${k} is not among the fields read from ${shape.object}; add it to source.fields`);
      return c;
    });
    const soql = planSoql({ object: shape.object, fields: keys.map((c) => c.name) }, {});
    const bulk = (await client.query(countSoql(soql), false)).totalSize > p.source.bulkThreshold;
    const writer = await ParquetPartWriter.open({ outDir: req.outDir, columns: keys, partRows: req.partRows, partBytes: req.partBytes, duck: this.duck });
    try {
      await this.stream(client, soql, keys.map((c) => c.name), { bulk, queryAll: false, op: false }, writer);
      return { files: await writer.finish(), schema: writer.schema() };
    } finally {
      await writer.close();
    }
  }

  /**
   * Partitions split a datetime column (CreatedDate is stable during a load; SystemModstamp
   * works too) in epoch seconds; Salesforce Ids are not integers and cannot be cut by range.
   */
  async keyStats(req: { window: WindowInput; column: string }): Promise<KeyStats> {
    const client = await this.connect();
    const { shape, describe } = await this.shape(client);
    const f = describe.fields.find((x) => x.name.toLowerCase() === req.column.toLowerCase());
    if (!f || f.type !== 'datetime') {
      throw new TerminalError(
        `source.partitions.column ${req.column} of ${this.pipeline.name} is ${f ? f.type : 'not a field'}; Salesforce partitions split a datetime field: set source.partitions.column: CreatedDate (or SystemModstamp)`,
      );
    }
    const timestamp = req.window.mode === 'timestamp';
    const captured = timestamp ? await this.captureUpper(client, shape.object, this.column()) : null;
    const edge = async (dir: 'ASC' | 'DESC') => {
      const r = await client.query(`SELECT ${f.name} FROM ${shape.object} WHERE ${f.name} != NULL ORDER BY ${f.name} ${dir} LIMIT 1`, false);
      const v = r.records[0]?.[f.name];
      return typeof v === 'string' ? String(Math.floor(Date.parse(v.replace('+0000', 'Z')) / 1000)) : null;
    };
    const min = await edge('ASC');
    const max = await edge('DESC');
    const rows = (await client.query(`SELECT COUNT() FROM ${shape.object}`, false)).totalSize;
    return { window: completeWindow({ ...req.window, ...(timestamp ? { column: this.column() } : {}) }, captured), min, max, rows };
  }

  async close(): Promise<void> {}
}

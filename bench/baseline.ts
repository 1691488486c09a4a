import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DuckSession, duckLiteral, quoteDuck as q, type DuckSettings } from '../shared/duckdb/session.js';
import { HASH_RULE, rowHashExpr, versionKeyExpr, type TypedColumn } from '../shared/canonical/row-hash.js';
import { CHANGE_COLUMN, KEY, SOURCE_TABLE } from './data.js';
import { PARQUET_COPY_OPTIONS } from '../shared/storage/parquet-format.js';

export interface BaselineRun {
  seconds: number;
  steps: Record<string, number>;
  rows: number;
  /** Bytes of the Parquet it wrote (its only file besides the warehouse). */
  bytesWritten: Record<string, number>;
}

/**
 * What a user would write by hand in one DuckDB process, doing the work the pipeline does:
 * read the source window, write it as Parquet, hash the tracked columns (the same hash
 * expression, so the two warehouses can be compared row for row), close the changed current
 * versions and insert the new ones in one transaction. No blobs, queues, manifests,
 * checkpoints, snapshots or validation.
 */
export class Baseline {
  private watermark: string | null = null;
  private run = 0;
  readonly warehouseFile: string;

  constructor(
    private readonly dir: string,
    private readonly sourceFile: string,
    private readonly duck: DuckSettings,
    private readonly tracked: readonly string[],
  ) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    this.warehouseFile = join(dir, 'warehouse.duckdb');
  }

  /** One load: the whole table the first time, the rows changed since the last watermark after. */
  async load(boundary: string): Promise<BaselineRun> {
    const started = performance.now();
    const steps: Record<string, number> = {};
    let mark = performance.now();
    const step = (name: string) => {
      const now = performance.now();
      steps[name] = (now - mark) / 1000;
      mark = now;
    };
    this.run++;
    const runId = `baseline-${this.run}`;
    const s = await DuckSession.open(this.warehouseFile, this.duck);
    let closed = false;
    try {
      await s.run(`SET TimeZone = 'UTC'`);
      await s.run(`ATTACH ${duckLiteral(resolve(this.sourceFile))} AS src (READ_ONLY)`);
      const [schema, table] = SOURCE_TABLE.split('.') as [string, string];
      const rel = `src.${q(schema)}.${q(table)}`;
      const columns = (await s.rows<{ column_name: string; column_type: string }>(`DESCRIBE SELECT * FROM ${rel}`)).map(
        (r): TypedColumn => ({ name: r.column_name, type: r.column_type }),
      );
      const typed = this.tracked.map((name) => columns.find((c) => c.name === name)!);
      const keyCol = columns.find((c) => c.name === KEY)!;
      const upper = (await s.one<{ upper: string | null }>(`SELECT CAST(max(${q(CHANGE_COLUMN)}) AS VARCHAR) AS upper FROM ${rel}`))?.upper ?? null;
      const where =
        this.watermark === null
          ? ''
          : ` WHERE ${q(CHANGE_COLUMN)} > CAST(${duckLiteral(this.watermark)} AS TIMESTAMP) AND ${q(CHANGE_COLUMN)} <= CAST(${duckLiteral(upper ?? this.watermark)} AS TIMESTAMP)`;
      const raw = join(this.dir, `raw-${this.run}.parquet`);
      await s.run(`COPY (SELECT * FROM ${rel}${where}) TO ${duckLiteral(raw)} (${PARQUET_COPY_OPTIONS})`);
      step('extract');
      const bytesWritten = { raw: statSync(raw).size };

      const b = `CAST(CAST(${duckLiteral(boundary)} AS TIMESTAMPTZ) AS TIMESTAMP)`;
      const data = columns.map((c) => q(c.name)).join(', ');
      const scd = `_tm_valid_from, _tm_valid_to, _tm_is_current, _tm_is_deleted, _tm_row_hash, _tm_run_id, _tm_version_key`;
      const newVersion = (from: string) =>
        `${b} AS _tm_valid_from, CAST(NULL AS TIMESTAMP) AS _tm_valid_to, true AS _tm_is_current, false AS _tm_is_deleted, ${from}._tm_row_hash, ${duckLiteral(runId)} AS _tm_run_id, ${versionKeyExpr([keyCol], b, from, HASH_RULE)} AS _tm_version_key`;
      let rows: number;
      if (this.watermark === null) {
        await s.run(
          `CREATE TABLE dim_account AS SELECT ${data}, ${newVersion('h')} FROM (SELECT *, ${rowHashExpr(typed)} AS _tm_row_hash FROM read_parquet(${duckLiteral(raw)})) AS h`,
        );
        step('hash + insert');
        rows = Number((await s.one<{ n: bigint }>('SELECT count(*)::BIGINT AS n FROM dim_account'))?.n ?? 0);
      } else {
        await s.run(`CREATE TEMP TABLE stage AS SELECT *, ${rowHashExpr(typed)} AS _tm_row_hash FROM read_parquet(${duckLiteral(raw)})`);
        step('hash');
        await s.run('BEGIN TRANSACTION');
        await s.run(
          `UPDATE dim_account AS t SET _tm_valid_to = ${b}, _tm_is_current = false FROM stage AS s
WHERE t.${q(KEY)} = s.${q(KEY)} AND t._tm_is_current AND t._tm_row_hash <> s._tm_row_hash`,
        );
        await s.run(
          `INSERT INTO dim_account (${data}, ${scd}) SELECT ${columns.map((c) => `s.${q(c.name)}`).join(', ')}, ${newVersion('s')} FROM stage AS s
WHERE NOT EXISTS (SELECT 1 FROM dim_account AS t WHERE t.${q(KEY)} = s.${q(KEY)} AND t._tm_is_current)`,
        );
        await s.run('COMMIT');
        step('close + insert');
        rows = Number((await s.one<{ n: bigint }>('SELECT count(*)::BIGINT AS n FROM stage'))?.n ?? 0);
      }
      this.watermark = upper ?? this.watermark;
      rmSync(raw, { force: true });
      closed = true;
      await s.close();
      // The close is part of the work: it checkpoints the transaction's WAL into the file, as
      // tidemark's warehouse does when its last session on the file ends.
      step('close');
      return { seconds: (performance.now() - started) / 1000, steps, rows, bytesWritten };
    } finally {
      if (!closed) await s.close();
    }
  }
}

export interface WarehouseFigures {
  rows: number;
  current: number;
  /** Order-independent sum over the current versions' row hashes. */
  hashSum: string;
}

/** The same figures from either warehouse, so the bench proves both did the same work. */
export async function warehouseFigures(file: string, table: string, duck: DuckSettings): Promise<WarehouseFigures> {
  const s = await DuckSession.open(file, duck);
  try {
    const r = await s.one<{ n: bigint; c: bigint; h: bigint }>(
      `SELECT count(*)::BIGINT AS n, count(*) FILTER (WHERE _tm_is_current)::BIGINT AS c,
  coalesce(sum(('0x' || substr(lower(hex(_tm_row_hash)), 1, 15))::BIGINT) FILTER (WHERE _tm_is_current), 0)::HUGEINT AS h FROM ${table}`,
    );
    return { rows: Number(r?.n ?? 0), current: Number(r?.c ?? 0), hashSum: String(r?.h ?? 0) };
  } finally {
    await s.close();
  }
}

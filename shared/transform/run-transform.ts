import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { PipelineConfig } from '../config/schema.js';
import { TerminalError } from '../errors.js';
import type { ColumnInfo, Counts } from '../storage/manifest.js';
import { checksumSql, classificationSql, resolveShape, type TransformShape } from './classify.js';
import { DuckSession, duckLiteral, quoteDuck, type DuckSettings, type SqlValue } from './duckdb-session.js';

export interface TransformInput {
  pipeline: PipelineConfig;
  /** Local Parquet parts of the extract, and their schema (used when there are no parts). */
  parts: string[];
  schema: ColumnInfo[];
  /** Local copy of the committed snapshot, or undefined on a first load. */
  snapshotFile: string | undefined;
  fullRead: boolean;
  boundary: string;
  sourceRowCount: number | null;
  outDir: string;
  duck: DuckSettings;
}

export interface TransformOutput {
  changesFile: string;
  changesRows: number;
  snapshotFile: string;
  snapshotRows: number;
  quarantineFile: string | undefined;
  schema: ColumnInfo[];
  counts: Omit<Counts, 'extracted'>;
  expected: { currentRows: number | null; checksum: string | null; checksumColumns: string[]; checksumScope: 'table' | 'changes' };
  warnings: string[];
}

const q = quoteDuck;

async function count(s: DuckSession, sql: string, params: readonly SqlValue[] = []): Promise<number> {
  const r = await s.one<{ n: bigint | number }>(sql, params);
  return Number(r?.n ?? 0);
}

function paramsFor(sql: string, boundary: string): SqlValue[] {
  return sql.includes('$1') ? [boundary] : [];
}

/**
 * The transform of DESIGN §1: user SQL over the view `extract`, quality rules, NULL-key and
 * duplicate checks, dedupe per key, row hash, classification against the committed snapshot.
 * Everything runs inside DuckDB (spilling to disk past its memory limit); no row enters JS.
 */
export async function runTransform(input: TransformInput): Promise<TransformOutput> {
  const p = input.pipeline;
  const s = await DuckSession.open(':memory:', input.duck);
  const warnings: string[] = [];
  try {
    await s.run(`SET TimeZone = 'UTC'`);
    if (input.parts.length > 0) {
      await s.run(`CREATE VIEW extract AS SELECT * FROM read_parquet([${input.parts.map(duckLiteral).join(', ')}])`);
    } else {
      if (input.schema.length === 0) throw new TerminalError('the extract has no parts and no schema; the manifest is incomplete');
      await s.run(`CREATE TABLE extract (${input.schema.map((c) => `${q(c.name)} ${c.type}`).join(', ')})`);
    }
    try {
      await s.run(`CREATE VIEW transformed AS ${p.transform.sql ?? 'SELECT * FROM extract'}`);
    } catch (cause) {
      throw new TerminalError(`transform.sql of ${p.name} does not compile: ${(cause as Error).message}`, { cause });
    }
    let columns: ColumnInfo[];
    try {
      columns = (await s.rows<{ column_name: string; column_type: string }>('DESCRIBE SELECT * FROM transformed')).map((r) => ({
        name: r.column_name,
        type: r.column_type,
      }));
    } catch (cause) {
      throw new TerminalError(`transform.sql of ${p.name} failed: ${(cause as Error).message}`, { cause });
    }
    let shape: TransformShape;
    try {
      shape = resolveShape(p, columns);
    } catch (cause) {
      throw new TerminalError(`pipelines/${p.name}.yaml: ${(cause as Error).message}`, { cause });
    }
    const keyNames = shape.keys.map((k) => q(k.name));

    // NULL keys: refused before anything reaches the warehouse (DESIGN §8).
    const nullKeys = await count(s, `SELECT count(*) AS n FROM transformed WHERE ${keyNames.map((k) => `${k} IS NULL`).join(' OR ')}`);
    if (nullKeys > 0) {
      throw new TerminalError(
        `${nullKeys} row(s) of ${p.name} have NULL in key column(s) ${p.key.join(', ')}; nothing was merged. Fix the source or filter them in transform.sql`,
      );
    }

    // Quality rules.
    const quarantineRules = p.transform.rules.filter((r) => r.onFail === 'quarantine');
    for (const r of p.transform.rules) {
      try {
        await s.run(`SELECT (${r.check}) FROM transformed LIMIT 0`);
      } catch (cause) {
        throw new TerminalError(`rule ${r.name} of ${p.name}: check does not compile: ${(cause as Error).message}`, { cause });
      }
    }
    for (const r of p.transform.rules.filter((x) => x.onFail !== 'quarantine')) {
      const failing = await count(s, `SELECT count(*) AS n FROM transformed WHERE (${r.check}) IS NOT TRUE`);
      if (failing === 0) continue;
      if (r.onFail === 'fail') throw new TerminalError(`rule ${r.name} failed for ${failing} row(s) of ${p.name} (check: ${r.check}); nothing was merged`);
      warnings.push(`rule ${r.name}: ${failing} row(s) failed (warn only)`);
    }
    let quarantined = 0;
    let quarantineFile: string | undefined;
    if (quarantineRules.length > 0) {
      const failedList = `list_filter([${quarantineRules.map((r) => `CASE WHEN (${r.check}) IS NOT TRUE THEN '${r.name}' END`).join(', ')}], x -> x IS NOT NULL)`;
      await s.run(`CREATE TEMP TABLE quarantined AS SELECT *, ${failedList} AS _tm_failed_rules FROM transformed WHERE len(${failedList}) > 0`);
      quarantined = await count(s, 'SELECT count(*) AS n FROM quarantined');
      await s.run(
        `CREATE VIEW good AS SELECT * FROM transformed WHERE ${quarantineRules.map((r) => `(${r.check}) IS TRUE`).join(' AND ')}`,
      );
      if (quarantined > 0) {
        quarantineFile = join(input.outDir, 'quarantine.parquet');
        await s.run(`COPY quarantined TO ${duckLiteral(quarantineFile)} (FORMAT parquet)`);
      }
    } else {
      await s.run('CREATE VIEW good AS SELECT * FROM transformed');
    }

    // Several rows of one key: the latest by the order column wins. Without one (a full
    // extract with no time column) there is no "latest", so duplicates are refused.
    if (!shape.orderColumn) {
      const dups = await s.rows<Record<string, unknown>>(
        `SELECT ${keyNames.join(', ')}, count(*)::BIGINT AS n FROM good GROUP BY ALL HAVING count(*) > 1 LIMIT 3`,
      );
      if (dups.length > 0) {
        const ex = dups.map((d) => `(${p.key.map((k) => String(d[k])).join(', ')}) ×${String(d.n)}`).join(', ');
        throw new TerminalError(
          `duplicate keys in the extract of ${p.name}: ${ex}; the key (${p.key.join(', ')}) must be unique, or set a changeDetection.column / validFrom column to pick the latest`,
        );
      }
    }

    const sql = classificationSql(shape, { fullRead: input.fullRead, deletes: p.target.deletes });
    await s.run(sql.batch, paramsFor(sql.batch, input.boundary));
    if (input.snapshotFile && existsSync(input.snapshotFile)) {
      await s.run(`CREATE TEMP TABLE snap AS SELECT * FROM read_parquet(${duckLiteral(input.snapshotFile)})`);
    } else {
      await s.run(sql.emptySnapshot);
    }
    await s.run(`CREATE TEMP TABLE extract_keys AS SELECT DISTINCT ${keyNames.join(', ')} FROM transformed`);
    await s.run(sql.classified);
    await s.run(sql.deleted, paramsFor(sql.deleted, input.boundary));

    const changesFile = join(input.outDir, 'changes.parquet');
    const snapshotFile = join(input.outDir, 'snapshot.parquet');
    await s.run(`COPY (${sql.changes}) TO ${duckLiteral(changesFile)} (FORMAT parquet, COMPRESSION zstd)`);
    await s.run(`CREATE TEMP TABLE next_snap AS ${sql.snapshot}`);
    await s.run(`COPY next_snap TO ${duckLiteral(snapshotFile)} (FORMAT parquet, COMPRESSION zstd)`);

    const byOp = await s.rows<{ op: string; n: bigint }>(`SELECT _tm_op AS op, count(*)::BIGINT AS n FROM classified GROUP BY 1`);
    const op = (name: string) => Number(byOp.find((r) => r.op === name)?.n ?? 0);
    const deleted = await count(s, 'SELECT count(*) AS n FROM deleted');
    const changesRows = await count(s, `SELECT count(*) AS n FROM read_parquet(${duckLiteral(changesFile)})`);
    const snapshotRows = await count(s, 'SELECT count(*) AS n FROM next_snap');
    const snapshotCurrent = await count(s, 'SELECT count(*) AS n FROM next_snap WHERE NOT _tm_deleted');
    const schema = (await s.rows<{ column_name: string; column_type: string }>(`DESCRIBE SELECT * FROM read_parquet(${duckLiteral(changesFile)})`)).map(
      (r) => ({ name: r.column_name, type: r.column_type }),
    );

    let currentRows: number | null = null;
    if (input.fullRead) currentRows = snapshotCurrent;
    else if (input.sourceRowCount !== null) {
      const quarantinedNew =
        quarantined > 0
          ? await count(
              s,
              `SELECT count(*) AS n FROM (SELECT DISTINCT ${keyNames.join(', ')} FROM quarantined) x WHERE NOT EXISTS (SELECT 1 FROM next_snap n WHERE ${shape.keys
                .map((k) => `n.${q(k.name)} = x.${q(k.name)}`)
                .join(' AND ')} AND NOT n._tm_deleted)`,
            )
          : 0;
      currentRows = input.sourceRowCount - quarantinedNew;
    }

    let checksum: string | null = null;
    // The whole table matches the batch only when every current target row came from this
    // extract: not with quarantined or stale rows, nor with `deletes: ignore`, which keeps keys
    // current that the source no longer has.
    const checksumScope: 'table' | 'changes' =
      input.fullRead && quarantined === 0 && op('stale') === 0 && p.target.deletes !== 'ignore' ? 'table' : 'changes';
    const checksumColumns = p.validation.checksumColumns;
    if (checksumColumns.length > 0) {
      const typed = checksumColumns.map((c) => shape.columns.find((x) => x.name === c)!);
      const rel =
        checksumScope === 'table'
          ? 'batch'
          : `(SELECT * FROM classified WHERE _tm_op IN ('insert', 'update', 'type1')) AS _tm_c`;
      const r = await s.one<{ n: bigint; s: bigint }>(checksumSql(typed, rel));
      checksum = `${r?.n ?? 0}:${r?.s ?? 0}`;
    }

    return {
      changesFile,
      changesRows,
      snapshotFile,
      snapshotRows,
      quarantineFile,
      schema,
      counts: {
        inserted: op('insert'),
        updated: op('update'),
        deleted,
        unchanged: op('unchanged'),
        stale: op('stale'),
        quarantined,
        type1: op('type1'),
      },
      expected: { currentRows, checksum, checksumColumns, checksumScope },
      warnings,
    };
  } finally {
    s.close();
  }
}

import { DuckSession, duckLiteral, type DuckSettings } from '../duckdb/session.js';
import type { ColumnInfo } from '../storage/manifest.js';

/** Row counts per Parquet file and the common schema, read from the footers only. */
export async function parquetStats(files: readonly string[], duck: DuckSettings): Promise<{ rows: number[]; schema: ColumnInfo[] }> {
  if (files.length === 0) return { rows: [], schema: [] };
  const s = await DuckSession.open(':memory:', duck);
  try {
    const list = `[${files.map(duckLiteral).join(', ')}]`;
    const meta = await s.rows<{ file_name: string; num_rows: bigint }>(`SELECT file_name, num_rows FROM parquet_file_metadata(${list})`);
    const byFile = new Map(meta.map((m) => [m.file_name, Number(m.num_rows)]));
    const schema = (await s.rows<{ column_name: string; column_type: string }>(`DESCRIBE SELECT * FROM read_parquet(${list})`)).map((r) => ({
      name: r.column_name,
      type: r.column_type,
    }));
    return { rows: files.map((f) => byFile.get(f) ?? 0), schema };
  } finally {
    await s.close();
  }
}

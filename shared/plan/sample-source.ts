import { freshDuckFile } from '../local/demo-source.js';
import type { DuckSettings } from '../duckdb/session.js';

/**
 * The sample source `tidemark init` writes without --from: two small tables that show both
 * proposals, customers (updated_at → timestamp mode) and products (no change column → full).
 * Deterministic, so the written pipelines and their first run are the same on every machine.
 */
export async function writeSampleSource(file: string, duck: DuckSettings, at: string): Promise<void> {
  const s = await freshDuckFile(file, duck);
  try {
    await s.run('CREATE SCHEMA shop');
    await s.run(`CREATE TABLE shop.customers (customer_id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, email VARCHAR, city VARCHAR, updated_at TIMESTAMPTZ NOT NULL)`);
    await s.run(
      `INSERT INTO shop.customers SELECT i, 'Customer ' || i, 'c' || i || '@example.com', ['Oslo','Rome','Lima','Kyiv'][1 + i % 4],
         CAST($1 AS TIMESTAMPTZ) - to_seconds(i * 3600) FROM range(1, 201) t(i)`,
      [at],
    );
    await s.run(`CREATE TABLE shop.products (product_id INTEGER PRIMARY KEY, title VARCHAR NOT NULL, price DECIMAL(10,2), active BOOLEAN)`);
    await s.run(`INSERT INTO shop.products SELECT i, 'Product ' || i, CAST(i * 1.25 AS DECIMAL(10,2)), i % 7 <> 0 FROM range(1, 51) t(i)`);
  } finally {
    await s.close();
  }
}

import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';

/** A throwaway project folder with tidemark.yaml and the given pipelines. */
export function makeProject(files: { tidemark?: string; pipelines: Record<string, string> }): string {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-test-'));
  writeFileSync(
    join(dir, 'tidemark.yaml'),
    files.tidemark ??
      `storage: AzureWebJobsStorage
connections:
  SRC: { kind: duckdb, path: source.duckdb }
warehouses:
  WH: { kind: duckdb, path: warehouse.duckdb }
duckdb: { memoryLimit: 512MB, threads: 1 }
`,
  );
  mkdirSync(join(dir, 'pipelines'));
  for (const [name, text] of Object.entries(files.pipelines)) writeFileSync(join(dir, 'pipelines', `${name}.yaml`), text);
  return dir;
}

/** Runs SQL against a DuckDB file and closes it, so the pipeline can open it afterwards. */
export async function duckExec(file: string, ...sql: string[]): Promise<void> {
  const inst = await DuckDBInstance.create(file);
  const c = await inst.connect();
  try {
    for (const s of sql) await c.run(s);
  } finally {
    c.closeSync();
    inst.closeSync();
  }
}

export async function duckQuery<T = Record<string, unknown>>(file: string, sql: string): Promise<T[]> {
  const inst = await DuckDBInstance.create(file);
  const c = await inst.connect();
  try {
    await c.run(`SET TimeZone = 'UTC'`);
    return (await c.runAndReadAll(sql)).getRowObjectsJS() as T[];
  } finally {
    c.closeSync();
    inst.closeSync();
  }
}

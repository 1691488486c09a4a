/**
 * Peak RSS of the tidemark process during an initial load of N rows (default 10 M) from a
 * DuckDB source through the local stack (Azurite is a separate process and not counted).
 *
 *   npx esbuild bench/initial-load-rss.ts --bundle --platform=node --format=esm \
 *     --packages=external --outfile=.tidemark/bench/initial-load-rss.mjs
 *   node .tidemark/bench/initial-load-rss.mjs [rows] [duckdb|postgres]
 *
 * `postgres` reads through the network-source path (pg cursor → DuckDB appender → Parquet
 * parts) from PGlite started in a child process (so its memory is not counted), or from
 * TIDEMARK_BENCH_PG_URL when set.
 *
 * RSS is sampled from process.memoryUsage().rss every 100 ms, and the kernel's own peak
 * (VmHWM in /proc/self/status, Linux only) is read at the end: the sampler can miss a spike,
 * VmHWM cannot.
 */
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { spawn } from 'node:child_process';
import pg from 'pg';
import { freePort, startAzurite } from '../shared/local/azurite.js';
import { openLocalStack, runOnce } from '../shared/local/stack.js';

const rows = Number(process.argv[2] ?? 10_000_000);
const sourceKind = process.argv[3] === 'postgres' ? 'postgres' : 'duckdb';

/** PGlite behind its socket server in a child process: the source is not part of the measured process. */
async function startPgChild(): Promise<{ url: string; stop: () => void }> {
  const external = process.env.TIDEMARK_BENCH_PG_URL;
  if (external) return { url: external, stop: () => undefined };
  const port = await freePort();
  const code = `import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
const db = await PGlite.create();
const server = new PGLiteSocketServer({ db, port: ${port}, host: '127.0.0.1', maxConnections: 8 });
await server.start();
console.log('ready');`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    child.once('exit', (c) => reject(new Error(`PGlite child exited with ${c}`)));
  });
  return { url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres?sslmode=disable`, stop: () => child.kill() };
}

function vmHwmMb(): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-bench-rss-'));
  writeFileSync(
    join(dir, 'tidemark.yaml'),
    `storage: AzureWebJobsStorage
connections:
  SRC: ${sourceKind === 'postgres' ? '{ kind: postgres, setting: BENCH_PG_URL, requestTimeout: 2h }' : '{ kind: duckdb, path: source.duckdb }'}
warehouses:
  WH: { kind: duckdb, path: warehouse.duckdb }
duckdb: { memoryLimit: 512MB, threads: 2 }
`,
  );
  mkdirSync(join(dir, 'pipelines'));
  writeFileSync(
    join(dir, 'pipelines', 'big.yaml'),
    `name: big
source:
  connection: SRC
  table: crm.accounts
  changeDetection: { mode: timestamp, column: modified_at }
  partRows: 1000000
key: [id]
target: { warehouse: WH, table: dw.dim_account }
validation: { rowCount: exact, checksumColumns: [id, email] }
retry: { attempts: 2, initialDelay: 1s }
`,
  );
  const t0 = Date.now();
  let pgChild: { url: string; stop: () => void } | undefined;
  if (sourceKind === 'postgres') {
    pgChild = await startPgChild();
    const c = new pg.Client({ connectionString: pgChild.url });
    await c.connect();
    await c.query('DROP SCHEMA IF EXISTS crm CASCADE');
    await c.query('CREATE SCHEMA crm');
    await c.query(`CREATE TABLE crm.accounts AS
      SELECT i::bigint AS id, 'Account ' || i AS name, 'user' || i || '@example.com' AS email,
        (ARRAY['Oslo','Rome','Lima','Kyiv','Pune'])[1 + i % 5] AS city, ((i % 1000)::numeric / 7)::numeric(12,2) AS balance,
        timestamptz '2026-01-01 00:00:00+00' + (i % 86400) * interval '1 second' AS modified_at
      FROM generate_series(0, ${rows - 1}) i`);
    await c.end();
    process.env.BENCH_PG_URL = pgChild.url;
  } else {
    const inst = await DuckDBInstance.create(join(dir, 'source.duckdb'));
    const c = await inst.connect();
    await c.run('create schema crm');
    await c.run(`create table crm.accounts as
      select i::BIGINT as id, 'Account ' || i as name, 'user' || i || '@example.com' as email,
        ['Oslo','Rome','Lima','Kyiv','Pune'][1 + (i % 5)::INT] as city, (i % 1000)::DECIMAL(12,2) / 7 as balance,
        TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(i % 86400) as modified_at
      from range(${rows}) t(i)`);
    c.closeSync();
    inst.closeSync();
  }
  const genMs = Date.now() - t0;

  const az = await startAzurite({ location: join(dir, 'azurite') });
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 100);
  const stack = await openLocalStack({ projectDir: dir, connectionString: az.connectionString });
  const t1 = Date.now();
  try {
    const r = await runOnce(stack, { pipeline: 'big' }, 60 * 60_000);
    clearInterval(timer);
    const result = {
      source: sourceKind,
      rows,
      status: r.status,
      error: r.error,
      counts: r.counts,
      validations: r.validations,
      timingsMs: r.timings,
      generateSourceMs: genMs,
      runMs: Date.now() - t1,
      peakRssSampledMb: Math.round(peak / 1024 / 1024),
      peakRssVmHwmMb: vmHwmMb(),
      limitMb: 1536,
    };
    console.log(JSON.stringify(result, null, 2));
    if (r.status !== 'succeeded' || (result.peakRssVmHwmMb ?? result.peakRssSampledMb) >= 1536) process.exitCode = 1;
  } finally {
    clearInterval(timer);
    await stack.close();
    await az.stop();
    pgChild?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});

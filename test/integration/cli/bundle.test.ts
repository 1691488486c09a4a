import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// Plain JS (it runs before tsc; typed by build-bundle.d.mts): the options `npm run build` uses.
import { BUNDLE_FILE, bundleOptions, launcherOptions } from '../../../cli/build-bundle.mjs';
import type { AzuriteHandle } from '../../../shared/local/azurite.js';
import { withAzurite } from '../../support/azurite.js';
import { duckExec, makeProject } from '../../support/project.js';

/**
 * The CLI as users run it: the one-file bundle `npm run build` writes to dist/cli/tidemark.cjs
 * and the launcher dist/cli/main.js that runs it through V8's code cache, built here with the
 * same options, as a real process against Azurite (issue #19, the fixed cost of a
 * run). Every HTTP request of a process is recorded by test/support/count-requests.mjs, so the
 * storage round trips of a no-change run are counted, not guessed.
 */
describe('the bundled CLI', () => {
  const root = join(import.meta.dirname, '..', '..', '..');
  const out = join(root, '.tidemark', 'test-bundle');
  const bundle = join(out, 'main.js');
  const caches = () => readdirSync(out).filter((f) => f.endsWith('.v8cache')).sort();
  const counter = join(root, 'test', 'support', 'count-requests.mjs');
  let az: AzuriteHandle;
  let inputs: string[] = [];

  beforeAll(async () => {
    mkdirSync(out, { recursive: true });
    // Inside the repository, so the packages left external resolve from its node_modules.
    const result = await build({ ...bundleOptions(join(out, BUNDLE_FILE)), sourcemap: false, logLevel: 'silent' });
    await build({ ...launcherOptions(bundle), sourcemap: false, logLevel: 'silent' });
    inputs = Object.keys(result.metafile.inputs);
    az = await withAzurite();
  });
  afterAll(async () => {
    await az?.stop();
    rmSync(out, { recursive: true, force: true });
  });

  function cli(args: string[], requestsFile?: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const env: NodeJS.ProcessEnv = { ...process.env, AzureWebJobsStorage: az.connectionString, TIDEMARK_LOG_LEVEL: 'error', ...extraEnv };
    delete env.TIDEMARK_WORK_DIR;
    if (requestsFile) env.TIDEMARK_TEST_REQUESTS_FILE = requestsFile;
    const argv = requestsFile ? ['--import', counter, bundle, ...args] : [bundle, ...args];
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  it('holds our code and its dependencies in one file; only the native, spawned and lazily loaded packages stay outside', () => {
    const packages = new Set(inputs.map((f) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(f)?.[1]).filter((p): p is string => !!p));
    for (const p of ['@azure/storage-blob', '@azure/data-tables', '@azure/storage-queue', '@azure/identity', 'zod', 'yaml', '@duckdb/node-api']) expect(packages, p).toContain(p);
    for (const p of ['@duckdb/node-bindings', 'azurite', 'mssql', 'tedious', 'pg', 'jsforce', '@azure/monitor-opentelemetry', '@opentelemetry/api']) expect(packages, p).not.toContain(p);
    expect(inputs.some((f) => f.endsWith('cli/main.ts'))).toBe(true);
    // The launcher reads the bundle as Latin-1.
    expect(readFileSync(join(out, BUNDLE_FILE)).every((b) => b < 0x80)).toBe(true);
  });

  it('writes a code cache per command at its first success, and later runs load it with the same result', async () => {
    expect(caches()).toEqual([]);
    const failed = await cli(['nope']);
    expect(failed.code).toBe(2);
    expect(caches()).toEqual([]);
    const first = await cli(['--help']);
    expect(caches()).toEqual([expect.stringMatching(/^tidemark\.cjs(\.[0-9a-f]{8}){3}\.other\.v8cache$/)]);
    const cached = await cli(['--help']);
    expect(cached).toEqual(first);
    const plain = await cli(['--help'], undefined, { TIDEMARK_NO_COMPILE_CACHE: '1' });
    expect(plain).toEqual(first);
    expect(caches()).toHaveLength(1);
  });

  it('--help and an unknown command exit as before', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^tidemark — serverless ELT/);
    expect(help.stdout).toMatch(/\brun\s+one whole run of a pipeline/);
    const bad = await cli(['nope']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unknown command "nope"');
  });

  it('runs a pipeline end to end; a no-change run finds storage prepared with one HEAD and creates nothing', async () => {
    const dir = makeProject({
      pipelines: {
        acc: `name: acc
source: { connection: SRC, table: accounts, changeDetection: { mode: timestamp, column: modified } }
key: [id]
target: { warehouse: WH, table: dim_account }
validation: { rowCount: exact }
`,
      },
    });
    await duckExec(join(dir, 'source.duckdb'), `create table accounts as select range::int as id, 'n' || range as name, TIMESTAMP '2026-01-01' as modified from range(5)`);
    const requests = (name: string) => readFileSync(join(dir, name), 'utf8').trim().split('\n');
    const creates = (lines: string[]) => lines.filter((l) => /^PUT \S+ \/devstoreaccount1\/[a-z-]+\?(restype=container|timeout=)/.test(l) || /^POST \S+ \/devstoreaccount1\/Tables/.test(l));
    const marker = (l: string) => /^(HEAD|PUT) \S+ \/devstoreaccount1\/state\/_tidemark\/storage-ready-[0-9a-f]{12}/.test(l);

    const first = await cli(['run', 'acc', '--project', dir, '--json'], join(dir, 'first.txt'));
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ status: 'succeeded', counts: { extracted: 5, inserted: 5 } });
    // A fresh account: the marker is missing, every container, queue and table is created once, then the marker is written.
    const firstLines = requests('first.txt');
    expect(creates(firstLines)).toHaveLength(5 + 6 + 6);
    expect(firstLines.filter(marker).map((l) => l.split(' ')[0])).toEqual(['HEAD', 'PUT']);

    expect(caches().filter((f) => f.endsWith('.run.v8cache'))).toHaveLength(1);
    const again = await cli(['run', 'acc', '--project', dir, '--json'], join(dir, 'again.txt'));
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ status: 'succeeded', counts: { extracted: 0, inserted: 0, updated: 0, deleted: 0 } });
    const lines = requests('again.txt');
    expect(creates(lines)).toEqual([]);
    expect(lines.filter(marker).map((l) => l.split(' ')[0])).toEqual(['HEAD']);
    expect(marker(lines[0]!)).toBe(true);
    // About 110 round trips on this commit (the stages read the run record some 25 times); the
    // bound leaves room for the host's once-a-second full pass on a slow machine and catches a
    // per-run scan, a per-row call or polling on a short timer creeping into the happy path.
    expect(lines.length).toBeLessThan(150);
  });
});

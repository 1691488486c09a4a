/**
 * Scenario E: the fixed cost of a run. A `tidemark run` of a small pipeline with nothing to
 * do, end to end through the CLI as a user types it (process start, config load, storage
 * clients, queue hops, DuckDB opens, validation), against an Azurite that is already up.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AzuriteHandle } from '../shared/local/azurite.js';
import type { DuckSettings } from '../shared/duckdb/session.js';
import { generateSource } from './data.js';
import { CpuMeter } from './memory.js';

export interface FixedCostResult {
  rows: number;
  /** Wall seconds of each measured no-change run, in order. */
  runs: number[];
  medianSeconds: number;
  minSeconds: number;
  /** Wall seconds of `node -e ""` on this machine: the floor no CLI run can go under. */
  nodeStartSeconds: number;
  /** CPU seconds (user + system) of the tidemark process of each measured run: what a busy machine does not inflate the way it inflates wall time. */
  cpuSeconds?: number[];
  medianCpuSeconds?: number;
  /** CPU seconds Azurite spent serving each measured run (its requests are work a storage account in Azure does elsewhere). */
  azuriteCpuSeconds?: number[];
  medianAzuriteCpuSeconds?: number;
}

/**
 * Preloaded into each measured CLI process: appends its own CPU time at exit. The process exits
 * through process.exit, so 'exit' sees all of it but the last microseconds.
 */
const CPU_HOOK = `data:text/javascript,${encodeURIComponent(
  "import { appendFileSync } from 'node:fs'; process.on('exit', () => { const u = process.cpuUsage(); appendFileSync(process.env.TIDEMARK_BENCH_CPU_FILE, `${(u.user + u.system) / 1e6}\\n`); });",
)}`;

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function timed(args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<number> {
  const t = performance.now();
  const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (c) => resolve({ code: c, stderr: err }));
  });
  const seconds = (performance.now() - t) / 1000;
  if (code !== 0) throw new Error(`scenario E: ${args.slice(1).join(' ')} exited ${code}: ${stderr.slice(-2000)}`);
  return seconds;
}

export async function measureFixedCost(o: {
  root: string;
  az: AzuriteHandle;
  duck: DuckSettings;
  projectYaml: string;
  pipelineYaml: (name: string) => string;
  seed: number;
  repeats: number;
  log: (line: string) => void;
}): Promise<FixedCostResult> {
  const dir = join(o.root, 'fixed-cost');
  mkdirSync(join(dir, 'pipelines'), { recursive: true });
  writeFileSync(join(dir, 'tidemark.yaml'), o.projectYaml);
  writeFileSync(join(dir, 'pipelines', 'small.yaml'), o.pipelineYaml('small'));
  const rows = 1000;
  await generateSource(join(dir, 'source.duckdb'), rows, o.seed, new Date(Date.parse('2026-11-01T00:00:00Z')).toISOString(), o.duck);
  const cli = join(process.cwd(), 'dist', 'cli', 'main.js');
  const env: NodeJS.ProcessEnv = { ...process.env, AzureWebJobsStorage: o.az.connectionString, TIDEMARK_LOG_LEVEL: 'error' };
  delete env.TIDEMARK_WORK_DIR;
  const args = [cli, 'run', 'small', '--project', dir];
  const first = await timed(args, env, dir);
  o.log(`E: first load of ${rows} rows through the CLI took ${first.toFixed(2)} s (not measured)`);
  const cpuFile = join(dir, 'cpu.txt');
  const measured = ['--import', CPU_HOOK, ...args];
  const runs: number[] = [];
  const azuriteCpu: number[] = [];
  for (let i = 0; i < o.repeats; i++) {
    const az = new CpuMeter(o.az.process?.pid);
    runs.push(await timed(measured, { ...env, TIDEMARK_BENCH_CPU_FILE: cpuFile }, dir));
    const spent = az.stop();
    if (spent !== null) azuriteCpu.push(spent);
  }
  const cpu = readFileSync(cpuFile, 'utf8').trim().split('\n').map(Number);
  rmSync(cpuFile);
  const nodeStarts: number[] = [];
  for (let i = 0; i < 3; i++) nodeStarts.push(await timed(['-e', ''], env, dir));
  const result: FixedCostResult = {
    rows,
    runs,
    medianSeconds: median(runs),
    minSeconds: Math.min(...runs),
    nodeStartSeconds: median(nodeStarts),
    cpuSeconds: cpu,
    medianCpuSeconds: median(cpu),
    ...(azuriteCpu.length ? { azuriteCpuSeconds: azuriteCpu, medianAzuriteCpuSeconds: median(azuriteCpu) } : {}),
  };
  o.log(
    `E: no-change runs ${runs.map((s) => s.toFixed(2)).join(', ')} s (median ${result.medianSeconds.toFixed(2)} s; node start ${result.nodeStartSeconds.toFixed(2)} s); ` +
      `tidemark CPU ${cpu.map((s) => s.toFixed(2)).join(', ')} s (median ${median(cpu).toFixed(2)} s)` +
      (azuriteCpu.length ? `; Azurite CPU median ${median(azuriteCpu).toFixed(2)} s per run` : ''),
  );
  return result;
}

import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { freePorts } from '../../shared/local/azurite.js';

/**
 * A real T-SQL engine for tests: TIDEMARK_TEST_MSSQL_URL when set (a real SQL Server), otherwise
 * Babelfish from ../shared/babelfish beside the repository, started once per test process and
 * stopped when it exits. Where neither exists the answer is `{ skip }` with the reason, printed once.
 */
let started: Promise<{ url: string } | { skip: string }> | undefined;

export async function tsqlEngine(): Promise<{ url: string } | { skip: string }> {
  const external = process.env.TIDEMARK_TEST_MSSQL_URL;
  if (external) return { url: external };
  started ??= start();
  return started;
}

async function start(): Promise<{ url: string } | { skip: string }> {
  const script = resolve(process.cwd(), '..', 'shared', 'babelfish', 'tsql-engine.sh');
  if (!existsSync(script)) {
    const skip = 'no T-SQL engine: set TIDEMARK_TEST_MSSQL_URL, or put the Babelfish engine in ../shared/babelfish';
    console.log(`T-SQL tests skipped: ${skip}`);
    return { skip };
  }
  const work = mkdtempSync(join(tmpdir(), 'tidemark-tsql-'));
  const [tds, pgPort] = await freePorts(2);
  const { stdout } = await promisify(execFile)('bash', [script, 'start', work, String(tds), String(pgPort)], { maxBuffer: 16 * 1024 * 1024 });
  process.on('exit', () => {
    try {
      execFileSync('bash', [script, 'stop', work], { stdio: 'ignore' });
    } catch {
      // the engine's folder is under the temp dir; a failed stop leaves only a process behind
    }
  });
  const url = stdout.trim().split('\n').pop()!.trim();
  return { url };
}

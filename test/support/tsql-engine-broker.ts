import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePorts } from '../../shared/local/azurite.js';

/**
 * The T-SQL engine of a vitest run, started at most once and only when a test asks for it: the
 * global setup (test/support/tsql-global-setup.ts) runs this broker in the main process, and
 * test files in the forked workers reach it over HTTP on 127.0.0.1. Starting lazily keeps runs
 * without T-SQL tests (most targeted runs) from paying the engine's start and memory.
 *
 *   GET  /engine       → { url } | { skip }  (starts the engine on the first call)
 *   POST /ran?n=N      a finished test file reports how many of its tests ran on the engine
 */
export type EngineAnswer = { url: string } | { skip: string };

const here = dirname(fileURLToPath(import.meta.url));
/** The engine beside the repository (CI has it; a user's clone does not). */
export const ENGINE_SCRIPT = resolve(here, '../../../shared/babelfish/tsql-engine.sh');

export interface Broker {
  url: string;
  stop(): Promise<void>;
  /** T-SQL tests that ran, and in how many files. */
  ran(): { tests: number; files: number };
  answer(): EngineAnswer | undefined;
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      res({ code: code ?? 1, stdout, stderr });
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      res({ code: 1, stdout, stderr: stderr + String(err) });
    });
  });
}

export async function startBroker(env: NodeJS.ProcessEnv = process.env): Promise<Broker> {
  let answer: EngineAnswer | undefined;
  let starting: Promise<EngineAnswer> | undefined;
  let workDir: string | undefined;
  let tests = 0;
  let files = 0;

  const start = async (): Promise<EngineAnswer> => {
    const external = env.TIDEMARK_TEST_MSSQL_URL;
    if (external) return { url: external };
    if (!existsSync(ENGINE_SCRIPT)) {
      return { skip: 'no T-SQL engine: set TIDEMARK_TEST_MSSQL_URL to a SQL Server connection string, or place the Babelfish engine in ../shared/babelfish beside the repository' };
    }
    workDir = await mkdtemp(join(tmpdir(), 'tidemark-tsql-'));
    const [tds, pgPort] = await freePorts(2);
    const r = await run('bash', [ENGINE_SCRIPT, 'start', workDir, String(tds), String(pgPort)], 180_000);
    const last = r.stdout.trim().split('\n').pop() ?? '';
    if (r.code !== 0 || !last.startsWith('Server=')) {
      return { skip: `the T-SQL engine in ../shared/babelfish did not start (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-5).join(' | ')}` };
    }
    try {
      await addUtf8Collation(pgPort!);
    } catch (err) {
      return { skip: `the T-SQL engine started but its PostgreSQL side refused the test setup: ${String(err)}` };
    }
    return { url: last };
  };

  const server: Server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method === 'GET' && u.pathname === '/engine') {
      starting ??= start().then((a) => (answer = a));
      void starting.then((a) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(a));
      });
      return;
    }
    if (req.method === 'POST' && u.pathname === '/ran') {
      const n = Number(u.searchParams.get('n') ?? 0);
      if (n > 0) {
        tests += n;
        files += 1;
      }
      res.end('ok');
      return;
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;

  return {
    url: `http://127.0.0.1:${port}`,
    ran: () => ({ tests, files }),
    answer: () => answer,
    stop: async () => {
      // Workers' keep-alive sockets would hold close() open.
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
      if (starting) await starting;
      if (workDir) {
        const r = await run('bash', [ENGINE_SCRIPT, 'stop', workDir], 90_000);
        if (r.code !== 0) console.error(`the T-SQL engine in ${workDir} did not stop (exit ${r.code}): ${r.stderr.trim()}`);
        else await rm(workDir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * The engine has no `Latin1_General_100_BIN2_UTF8` (its README: a Babelfish gap), which the
 * T-SQL checksum uses so that SQL Server hashes text as UTF-8, as DuckDB does. A PostgreSQL
 * collation of that name (binary, "C") in Babelfish's `sys` schema lets the SQL Server
 * statement run unchanged: Babelfish's varchar is UTF-8 already, so the bytes hashed are the
 * same UTF-8 bytes SQL Server hashes under that collation. Made through the engine's PostgreSQL
 * port, with the login tsql-engine.sh creates.
 */
async function addUtf8Collation(pgPort: number): Promise<void> {
  const c = new pg.Client({ host: '127.0.0.1', port: pgPort, user: 'babelfish_user', password: '12345678', database: 'babelfish_db' });
  await c.connect();
  try {
    await c.query(`CREATE COLLATION IF NOT EXISTS sys.latin1_general_100_bin2_utf8 (locale = 'C')`);
  } finally {
    await c.end();
  }
}

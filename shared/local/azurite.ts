import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, connect } from 'node:net';
import { dirname, join } from 'node:path';
import { azuriteConnectionString, type AzuritePorts } from '../storage/connection.js';

export interface AzuriteHandle {
  ports: AzuritePorts;
  connectionString: string;
  /** Undefined when an Azurite (or the real thing) was already listening. */
  process?: ChildProcess;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Distinct free ports, held open together until all are known: asked for one at a time, the
 * kernel may hand out a port it just freed again.
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const srv = createServer();
          srv.unref();
          srv.on('error', reject);
          srv.listen(0, '127.0.0.1', () => resolve(srv));
        }),
    ),
  );
  const ports = servers.map((srv) => {
    const addr = srv.address();
    if (typeof addr !== 'object' || !addr) throw new Error('no port');
    return addr.port;
  });
  await Promise.all(servers.map((srv) => new Promise<void>((resolve) => srv.close(() => resolve()))));
  return ports;
}

export function isListening(port: number, host = '127.0.0.1', timeoutMs = 300): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ port, host });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

function azuriteEntry(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('azurite/package.json')), 'dist', 'src', 'azurite.js');
}

export interface StartAzuriteOptions {
  /** Folder for persistent data; omitted = in memory (tests). */
  location?: string;
  ports?: AzuritePorts;
  /** Where Azurite's own output goes; defaults to nowhere. */
  logFile?: string;
  startTimeoutMs?: number;
}

/**
 * Starts Azurite from the npm package as a child process. Flags per docs/design.md §15:
 * --skipApiVersionCheck (the SDKs are newer than Azurite's API list) and --disableTelemetry;
 * --inMemoryPersistence and --location are mutually exclusive.
 */
export async function startAzurite(o: StartAzuriteOptions = {}): Promise<AzuriteHandle> {
  if (o.ports) return startAzuriteOn(o.ports, o);
  // Free ports can be taken by another process between the check and Azurite's bind (tests
  // run in parallel workers): a start that fails that way is tried again on new ports.
  for (let attempt = 1; ; attempt++) {
    const [blob, queue, table] = await freePorts(3);
    try {
      return await startAzuriteOn({ blob: blob!, queue: queue!, table: table! }, o);
    } catch (err) {
      if (attempt >= 3 || !(err instanceof AzuriteExitedError)) throw err;
    }
  }
}

class AzuriteExitedError extends Error {}

async function startAzuriteOn(ports: AzuritePorts, o: StartAzuriteOptions): Promise<AzuriteHandle> {
  const args = [
    azuriteEntry(),
    '--skipApiVersionCheck',
    '--disableTelemetry',
    '--blobHost', '127.0.0.1', '--blobPort', String(ports.blob),
    '--queueHost', '127.0.0.1', '--queuePort', String(ports.queue),
    '--tableHost', '127.0.0.1', '--tablePort', String(ports.table),
  ];
  if (o.location) {
    mkdirSync(o.location, { recursive: true });
    args.push('--location', o.location);
  } else {
    args.push('--inMemoryPersistence');
  }
  const out = o.logFile ? openSync(o.logFile, 'a') : 'ignore';
  const child = spawn(process.execPath, args, { stdio: ['ignore', out, out] });
  const deadline = Date.now() + (o.startTimeoutMs ?? 30_000);
  let exited: number | null = null;
  child.once('exit', (code) => {
    exited = code ?? -1;
  });
  for (;;) {
    if (exited !== null) throw new AzuriteExitedError(`Azurite exited with code ${exited} while starting (ports ${ports.blob}/${ports.queue}/${ports.table})`);
    const ok = (await Promise.all([isListening(ports.blob), isListening(ports.queue), isListening(ports.table)])).every(Boolean);
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill();
      throw new Error('Azurite did not start listening within its start timeout');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    ports,
    connectionString: azuriteConnectionString(ports),
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}

export const DEFAULT_AZURITE_PORTS: AzuritePorts = { blob: 10000, queue: 10001, table: 10002 };

/**
 * For the CLI: use an Azurite already listening on the default ports, or start one that keeps
 * its data under the project's .tidemark/azurite so the next command sees the same state.
 */
export async function ensureAzurite(projectDir: string): Promise<AzuriteHandle> {
  const p = DEFAULT_AZURITE_PORTS;
  const listening = await Promise.all([isListening(p.blob), isListening(p.queue), isListening(p.table)]);
  if (listening.every(Boolean)) {
    return { ports: p, connectionString: azuriteConnectionString(p), stop: async () => undefined };
  }
  if (listening.some(Boolean)) {
    throw new Error(
      `some of the Azurite ports ${p.blob}/${p.queue}/${p.table} are taken by something else; stop it or set AzureWebJobsStorage to a running storage emulator`,
    );
  }
  const dir = join(projectDir, '.tidemark', 'azurite');
  return startAzurite({ location: dir, ports: p, logFile: join(projectDir, '.tidemark', 'azurite.log') });
}

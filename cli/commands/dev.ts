import { join } from 'node:path';
import { apiRoutes } from '../../shared/http/routes.js';
import { startHttpServer } from '../../shared/local/http-server.js';
import { startLocalTimers } from '../../shared/local/timers.js';
import { openLocalStack, resumeOrphans } from '../../shared/local/stack.js';
import { EXIT, UsageError, cliLogger, parse, projectDir, type Command } from '../common.js';

const usage = 'tidemark dev [--project DIR] [--port 7071] [--workers 1] [--no-timers] [--host 0.0.0.0 --allow-remote] [--log-format text|json]';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

/**
 * The local host of docs/design.md §13 in the foreground: queue and blob triggers on Azurite, the
 * pipelines' timers, and every HTTP route under http://127.0.0.1:<port>/api/. Ctrl+C stops it.
 */
export const devCommand: Command = {
  summary: 'run the app locally: triggers on Azurite, timers from the schedules, the HTTP API on 127.0.0.1',
  usage,
  async run(argv) {
    const { values } = parse(argv, { port: { type: 'string' }, workers: { type: 'string' }, 'no-timers': { type: 'boolean' }, host: { type: 'string' }, 'allow-remote': { type: 'boolean' } }, usage);
    const host = values.host ?? '127.0.0.1';
    const remote = !LOOPBACK.has(host);
    if (remote && !values['allow-remote']) {
      throw new UsageError(`--host ${host} lets other machines drive this app; add --allow-remote, and every request then needs the key printed at start (x-functions-key or ?code=)\nusage: ${usage}`);
    }
    const port = Number(values.port ?? process.env.TIDEMARK_DEV_PORT ?? 7071);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be a TCP port, got ${values.port}\nusage: ${usage}`);
    const workers = Number(values.workers ?? 1);
    if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new UsageError(`--workers must be a whole number from 1 to 64 (messages handled at once), got ${values.workers}\nusage: ${usage}`);
    const stack = await openLocalStack({ projectDir: projectDir(values), log: cliLogger(values, 'info'), host: { workers } });
    const http = await startHttpServer(stack.ctx, apiRoutes, {
      port,
      host,
      allowRemote: remote,
      ...(process.env.TIDEMARK_DEV_KEY ? { key: process.env.TIDEMARK_DEV_KEY } : {}),
      stateDir: join(stack.project.dir, '.tidemark'),
    });
    const timers = values['no-timers'] ? undefined : startLocalTimers(stack.ctx);
    process.stdout.write(`tidemark dev: ${stack.project.pipelines.size} pipeline(s) in ${stack.project.dir}\n`);
    process.stdout.write(`  workers  ${workers} (messages handled at once)\n`);
    process.stdout.write(`  storage  ${stack.azurite ? 'Azurite (started or found by tidemark)' : stack.project.config.storage}\n`);
    process.stdout.write(`  page     ${http.url}/api/ui\n`);
    process.stdout.write(`  http     ${http.url}/api/pipelines   ${http.url}/api/openapi.json\n`);
    // The key is for the remote user, who cannot read .tidemark/; the write token is never printed.
    if (http.key) process.stdout.write(`  key      every request needs x-functions-key: ${process.env.TIDEMARK_DEV_KEY ? '(TIDEMARK_DEV_KEY)' : http.key}   page: ${http.url}/api/ui?code=<key>\n`);
    for (const t of timers?.next() ?? []) process.stdout.write(`  timer    ${t.pipeline}  ${t.schedule}  next ${t.next?.toISOString() ?? '-'} (UTC)\n`);
    // Runs whose process died (a killed tidemark run or dev) go on here, not at their next tick.
    for (const line of await resumeOrphans(stack.ctx)) process.stdout.write(`  orphan   ${line}\n`);
    process.stdout.write('Ctrl+C stops.\n');
    const stop = new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    const loop = stack.host.loop();
    await stop;
    timers?.stop();
    stack.host.stop();
    await loop;
    await http.close();
    await stack.close();
    return EXIT.ok;
  },
};

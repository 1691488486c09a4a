import { apiRoutes } from '../../shared/http/routes.js';
import { startHttpServer } from '../../shared/local/http-server.js';
import { startLocalTimers } from '../../shared/local/timers.js';
import { openLocalStack } from '../../shared/local/stack.js';
import { EXIT, UsageError, cliLogger, parse, projectDir, type Command } from '../common.js';

const usage = 'tidemark dev [--project DIR] [--port 7071] [--no-timers] [--log-format text|json]';

/**
 * The local host of docs/design.md §13 in the foreground: queue and blob triggers on Azurite, the
 * pipelines' timers, and every HTTP route under http://127.0.0.1:<port>/api/. Ctrl+C stops it.
 */
export const devCommand: Command = {
  summary: 'run the app locally: triggers on Azurite, timers from the schedules, the HTTP API on 127.0.0.1',
  usage,
  async run(argv) {
    const { values } = parse(argv, { port: { type: 'string' }, 'no-timers': { type: 'boolean' } }, usage);
    const port = Number(values.port ?? process.env.TIDEMARK_DEV_PORT ?? 7071);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be a TCP port, got ${values.port}\nusage: ${usage}`);
    const stack = await openLocalStack({ projectDir: projectDir(values), log: cliLogger(values, 'info') });
    const http = await startHttpServer(stack.ctx, apiRoutes, port);
    const timers = values['no-timers'] ? undefined : startLocalTimers(stack.ctx);
    process.stdout.write(`tidemark dev: ${stack.project.pipelines.size} pipeline(s) in ${stack.project.dir}\n`);
    process.stdout.write(`  storage  ${stack.azurite ? 'Azurite (started or found by tidemark)' : stack.project.config.storage}\n`);
    process.stdout.write(`  page     ${http.url}/api/ui\n`);
    process.stdout.write(`  http     ${http.url}/api/pipelines   ${http.url}/api/openapi.json\n`);
    for (const t of timers?.next() ?? []) process.stdout.write(`  timer    ${t.pipeline}  ${t.schedule}  next ${t.next?.toISOString() ?? '-'} (UTC)\n`);
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

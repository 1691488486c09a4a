import { spawn, spawnSync } from 'node:child_process';
import { startLocalUi } from '../../shared/local/ui.js';
import { EXIT, UsageError, parse, withStack, type Command } from '../common.js';

const usage = 'tidemark ui [--project DIR] [--port N] [--no-open]';

/** Opens the page in the desktop's browser when there is one; a headless box just prints the URL. */
function openBrowser(url: string): boolean {
  if (process.platform !== 'linux' && process.platform !== 'darwin') return false;
  const opener = process.platform === 'darwin' ? 'open' : 'xdg-open';
  if (process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) return false;
  if (spawnSync('which', [opener], { stdio: 'ignore' }).status !== 0) return false;
  const child = spawn(opener, [url], { stdio: 'ignore', detached: true });
  child.on('error', () => undefined);
  child.unref();
  return true;
}

export const uiCommand: Command = {
  summary: 'the run-history page against the local stack (runs started there are driven too)',
  usage,
  async run(argv) {
    const { values } = parse(argv, { port: { type: 'string' }, 'no-open': { type: 'boolean' } }, usage);
    const port = values.port === undefined ? 7071 : Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be a port number (0-65535), got ${JSON.stringify(values.port)}\nusage: ${usage}`);
    return withStack(values, async (stack) => {
      let ui;
      try {
        ui = await startLocalUi(stack, { port });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
          throw new UsageError(`port ${port} is in use (is \`tidemark dev\` or func start running?); pass --port N, or --port 0 for any free port`);
        }
        throw err;
      }
      process.stdout.write(`run history: ${ui.pageUrl}\n`);
      if (!values['no-open'] && openBrowser(ui.pageUrl)) process.stdout.write('opened in your browser\n');
      process.stdout.write('Ctrl-C to stop\n');
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await ui.close();
      return EXIT.ok;
    });
  },
};

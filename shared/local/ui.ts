import { join } from 'node:path';
import { apiRoutes } from '../http/routes.js';
import { startHttpServer } from './http-server.js';
import type { LocalStack } from './stack.js';

export interface LocalUi {
  /** Where the run-history page is served: `http://127.0.0.1:<port>/api/ui`. */
  pageUrl: string;
  baseUrl: string;
  /** The per-start write token (the page gets it from its HTML; tests and tools from here). */
  token: string;
  close(): Promise<void>;
}

/**
 * Serves every API route (the page, its data, and POST …/runs for the re-run button) and drives
 * the local host's triggers in the background, so that a run started from the page completes.
 * `tidemark ui` and the browser test both use this.
 */
export async function startLocalUi(stack: LocalStack, o: { port?: number } = {}): Promise<LocalUi> {
  const server = await startHttpServer(stack.ctx, apiRoutes, { port: o.port ?? 7071, stateDir: join(stack.project.dir, '.tidemark') });
  const loop = stack.host.loop();
  return {
    pageUrl: `${server.url}/api/ui`,
    baseUrl: server.url,
    token: server.token,
    close: async () => {
      stack.host.stop();
      await Promise.all([server.close(), loop]);
    },
  };
}

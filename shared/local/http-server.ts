import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EngineContext } from '../engine/context.js';
import { errorMessage } from '../errors.js';
import { matchRoute, type ApiRoute } from '../http/route.js';
import { MAX_BODY_BYTES } from '../engine/http-api.js';

export interface LocalHttpServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > limit) return undefined;
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Serves the API routes under /api/ on loopback, as `func start` would. Locally there are no
 * function keys: it binds to 127.0.0.1 only.
 */
export async function startHttpServer(ctx: EngineContext, routes: readonly ApiRoute[], port = 7071): Promise<LocalHttpServer> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const url = new URL(req.url ?? '/', `http://${req.headers.host ?? '127.0.0.1'}`);
      const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        const isJson = typeof body !== 'string' && !(body instanceof Uint8Array);
        res.writeHead(status, { ...(isJson ? { 'content-type': 'application/json' } : {}), ...headers });
        res.end(isJson ? JSON.stringify(body) : body);
      };
      try {
        if (!url.pathname.startsWith('/api/')) return send(404, { error: 'not found' });
        const path = url.pathname.slice('/api/'.length);
        const method = (req.method ?? 'GET').toUpperCase();
        for (const r of routes) {
          const params = matchRoute(r.route, path);
          if (!params || !r.methods.includes(method as 'GET')) continue;
          const bodyText = method === 'GET' ? '' : await readBody(req, MAX_BODY_BYTES);
          if (bodyText === undefined) return send(413, { error: `body larger than ${MAX_BODY_BYTES} bytes` });
          const out = await r.handle(ctx, { method, params, query: url.searchParams, bodyText, baseUrl: `http://${req.headers.host ?? '127.0.0.1'}` });
          return send(out.status, out.jsonBody !== undefined ? out.jsonBody : (out.body ?? ''), out.headers);
        }
        return send(404, { error: `no route for ${method} ${url.pathname}` });
      } catch (err) {
        ctx.log.log('error', `HTTP ${req.method} ${url.pathname} failed: ${errorMessage(err)}`);
        return send(500, { error: errorMessage(err) });
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const { port: actual } = server.address() as AddressInfo;
  return {
    server,
    url: `http://127.0.0.1:${actual}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

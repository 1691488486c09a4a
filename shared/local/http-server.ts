import { randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { EngineContext } from '../engine/context.js';
import { errorMessage } from '../errors.js';
import { matchRoute, type ApiRoute } from '../http/route.js';
import { MAX_BODY_BYTES } from '../engine/http-api.js';
import { FAVICON_ICO } from '../ui/favicon.js';

/** The header the page and the CLI send the per-start token in, with every state-changing request. */
export const LOCAL_TOKEN_HEADER = 'x-tidemark-token';
/** Where the page finds the token: a meta tag the server puts into its HTML (the script is hash-pinned). */
export const LOCAL_TOKEN_META = 'tidemark-token';
/** Written next to the project's local state (mode 600) so the user's own tools can call the server. */
export const LOCAL_SERVER_FILE = 'local-server.json';

export interface LocalHttpServer {
  server: Server;
  url: string;
  /** The per-start token state-changing requests must carry in `x-tidemark-token`. */
  token: string;
  /** With allowRemote: the key every request must carry (`x-functions-key` or `?code=`). */
  key?: string;
  close(): Promise<void>;
}

export interface LocalServerOptions {
  port?: number;
  /** Address to bind; loopback unless allowRemote. */
  host?: string;
  /** Bind beyond loopback (a container); every request then needs `key`, as function keys in Azure. */
  allowRemote?: boolean;
  /** The key for allowRemote; generated when omitted. */
  key?: string;
  /** Folder (the project's `.tidemark/`) for local-server.json with the URL and token; removed on close. */
  stateDir?: string;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);
const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

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

function same(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Why a request is refused before any route runs, or undefined when it may go on. A web page the
 * user opens elsewhere can send requests to 127.0.0.1 (a "simple" text/plain POST needs no CORS
 * preflight) or reach it under its own domain through DNS rebinding; these checks leave it
 * nothing: the Host must be this server on loopback, a write must be JSON from no origin or our
 * own, and carry the token only our page and our tools know.
 */
export function refusal(
  req: { method: string; headers: IncomingMessage['headers']; query: URLSearchParams },
  o: { port: number; token: string; allowRemote: boolean; key?: string },
): { status: 401 | 403; error: string } | undefined {
  const host = req.headers.host;
  if (!host) return { status: 403, error: 'refused: no Host header' };
  if (!o.allowRemote) {
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(host.toLowerCase());
    if (!m || !LOOPBACK.has(m[1]!) || Number(m[2] ?? 80) !== o.port) {
      return { status: 403, error: `refused: Host ${host} is not this server (127.0.0.1, localhost or [::1] on port ${o.port})` };
    }
  } else {
    const given = (req.headers['x-functions-key'] as string | undefined) ?? req.query.get('code') ?? undefined;
    if (!same(given, o.key!)) return { status: 401, error: 'a key is required: send x-functions-key (or ?code=) with the key tidemark dev printed at start' };
  }
  if (!STATE_CHANGING.has(req.method)) return undefined;
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') return { status: 403, error: `refused: a ${req.method} needs content-type: application/json, got ${type || 'none'}` };
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== `http://${host}`) return { status: 403, error: `refused: origin ${origin} is not this server's (http://${host})` };
  if (req.headers['sec-fetch-site'] === 'cross-site') return { status: 403, error: 'refused: a cross-site request' };
  if (!same(req.headers[LOCAL_TOKEN_HEADER] as string | undefined, o.token)) {
    return { status: 403, error: `refused: a ${req.method} needs the ${LOCAL_TOKEN_HEADER} header this server gave its page (and wrote to .tidemark/${LOCAL_SERVER_FILE})` };
  }
  return undefined;
}

/**
 * Serves the API routes under /api/, as `func start` would. On loopback there are no function
 * keys, so only this machine's user may drive it: see `refusal`. With allowRemote every request
 * needs the key instead.
 */
export async function startHttpServer(ctx: EngineContext, routes: readonly ApiRoute[], portOrOptions: number | LocalServerOptions = 7071): Promise<LocalHttpServer> {
  const o: LocalServerOptions = typeof portOrOptions === 'number' ? { port: portOrOptions } : portOrOptions;
  const bindHost = o.host ?? '127.0.0.1';
  if (!o.allowRemote && !LOOPBACK.has(bindHost)) throw new Error(`binding ${bindHost} exposes the API beyond this machine: pass allowRemote (tidemark dev --allow-remote), and every request then needs the key`);
  const token = randomBytes(32).toString('base64url');
  const key = o.allowRemote ? (o.key ?? randomBytes(32).toString('base64url')) : undefined;
  let port = o.port ?? 7071;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://local');
      const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        const isJson = typeof body !== 'string' && !(body instanceof Uint8Array);
        res.writeHead(status, { ...(isJson ? { 'content-type': 'application/json' } : {}), ...headers });
        res.end(isJson ? JSON.stringify(body) : body);
      };
      try {
        const method = (req.method ?? 'GET').toUpperCase();
        const refused = refusal({ method, headers: req.headers, query: url.searchParams }, { port, token, allowRemote: !!o.allowRemote, ...(key ? { key } : {}) });
        if (refused) {
          ctx.log.log('warn', `HTTP ${method} ${url.pathname} ${refused.status}: ${refused.error}`);
          return send(refused.status, { error: refused.error });
        }
        if (url.pathname === '/favicon.ico' && (method === 'GET' || method === 'HEAD')) {
          return send(200, FAVICON_ICO, { 'content-type': 'image/x-icon', 'cache-control': 'public, max-age=86400' });
        }
        if (!url.pathname.startsWith('/api/')) return send(404, { error: 'not found' });
        const path = url.pathname.slice('/api/'.length);
        const baseUrl = `http://${req.headers.host}`;
        for (const r of routes) {
          const params = matchRoute(r.route, path);
          if (!params || !r.methods.includes(method as 'GET')) continue;
          const bodyText = method === 'GET' ? '' : await readBody(req, MAX_BODY_BYTES);
          if (bodyText === undefined) return send(413, { error: `body larger than ${MAX_BODY_BYTES} bytes` });
          const out = await r.handle(ctx, { method, params, query: url.searchParams, bodyText, baseUrl });
          let body = out.jsonBody !== undefined ? out.jsonBody : (out.body ?? '');
          // The page learns the token from its own HTML: another site cannot read that response.
          if (typeof body === 'string' && /^text\/html/i.test(out.headers?.['content-type'] ?? '')) {
            body = body.replace(/<head>/i, `<head>\n<meta name="${LOCAL_TOKEN_META}" content="${token}">`);
          }
          return send(out.status, body, out.headers);
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
    server.listen(port, bindHost, () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  const shown = bindHost === '0.0.0.0' || bindHost === '::' ? '127.0.0.1' : bindHost.includes(':') ? `[${bindHost}]` : bindHost;
  const url = `http://${shown}:${port}`;
  const stateFile = o.stateDir ? join(o.stateDir, LOCAL_SERVER_FILE) : undefined;
  if (stateFile) {
    mkdirSync(o.stateDir!, { recursive: true });
    writeFileSync(stateFile, `${JSON.stringify({ url, token, pid: process.pid })}\n`, { mode: 0o600 });
  }
  return {
    server,
    url,
    token,
    ...(key ? { key } : {}),
    close: () =>
      new Promise<void>((resolve) => {
        if (stateFile) rmSync(stateFile, { force: true });
        server.close(() => resolve());
      }),
  };
}

/** The running local server of a project (written by `tidemark dev` / `tidemark ui`), if any. */
export function readLocalServer(stateDir: string): { url: string; token: string } | undefined {
  try {
    const v = JSON.parse(readFileSync(join(stateDir, LOCAL_SERVER_FILE), 'utf8')) as { url?: unknown; token?: unknown };
    return typeof v.url === 'string' && typeof v.token === 'string' ? { url: v.url, token: v.token } : undefined;
  } catch {
    return undefined;
  }
}

/** A call of the user's own tools to the local server: JSON, with the token from local-server.json. */
export async function callLocalServer(stateDir: string, method: string, path: string, body?: unknown): Promise<Response> {
  const s = readLocalServer(stateDir);
  if (!s) throw new Error(`no local server is running for this project (${join(stateDir, LOCAL_SERVER_FILE)} is missing): start tidemark dev or tidemark ui`);
  return fetch(`${s.url}/api/${path.replace(/^\/+/, '')}`, {
    method,
    headers: { 'content-type': 'application/json', [LOCAL_TOKEN_HEADER]: s.token },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
}

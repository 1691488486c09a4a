import { request } from 'node:http';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devCommand } from '../../../cli/commands/dev.js';
import { apiRoutes } from '../../../shared/http/routes.js';
import type { AzuriteHandle } from '../../../shared/local/azurite.js';
import { LOCAL_SERVER_FILE, readLocalServer, startHttpServer, type LocalHttpServer } from '../../../shared/local/http-server.js';
import { openLocalStack, type LocalStack } from '../../../shared/local/stack.js';
import { readLease } from '../../../shared/state/leases.js';
import { listRuns } from '../../../shared/state/runs.js';
import { QUEUES } from '../../../shared/storage/layout.js';
import { withAzurite } from '../../support/azurite.js';
import { duckExec, makeProject } from '../../support/project.js';
import { storageOf } from '../../support/storage-clients.js';

/** A raw HTTP request: fetch cannot send a foreign Host header, an attacker's browser (DNS rebinding) can. */
function send(url: string, o: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    // Node frames a DELETE body only with an explicit length; without one it would spill into the next request.
    const length = o.body === undefined ? {} : { 'content-length': String(Buffer.byteLength(o.body)) };
    const req = request(url, { method: o.method ?? 'GET', headers: { ...length, ...o.headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

describe('the local server answers only its user\'s own page and tools', () => {
  let az: AzuriteHandle;
  let stack: LocalStack;
  let server: LocalHttpServer;
  let dir: string;
  let host: string;
  const runsUrl = () => `${server.url}/api/pipelines/accounts/runs`;

  beforeAll(async () => {
    az = await withAzurite();
    dir = makeProject({ pipelines: { accounts: 'name: accounts\nsource: { connection: SRC, table: crm.accounts }\nkey: [id]\ntarget: { warehouse: WH, table: dw.accounts }\n' } });
    await duckExec(join(dir, 'source.duckdb'), 'create schema crm', 'create table crm.accounts (id integer)', 'insert into crm.accounts values (1)');
    stack = await openLocalStack({ projectDir: dir, connectionString: az.connectionString });
    server = await startHttpServer(stack.ctx, apiRoutes, { port: 0, stateDir: join(dir, '.tidemark') });
    host = new URL(server.url).host;
  });
  afterAll(async () => {
    await server?.close();
    await stack?.close();
    await az?.stop();
  });

  /** Nothing started: no run record, no lease on the pipeline, no message on any stage queue. */
  async function nothingStarted(): Promise<void> {
    expect(await listRuns(stack.ctx.tables, 'accounts')).toEqual([]);
    expect(await readLease(stack.ctx.tables, 'accounts')).toBeUndefined();
    // The stack's own port wakes its host on send; the queues are read through a client of their own.
    const queues = storageOf(az.connectionString).queues;
    for (const q of Object.values(QUEUES)) {
      expect((await queues.service.getQueueClient(q).peekMessages({ numberOfMessages: 32 })).peekedMessageItems, q).toEqual([]);
    }
  }

  const good = () => ({ 'content-type': 'application/json', host, 'x-tidemark-token': server.token });

  it('refuses a cross-origin POST (a page on another site), even with the right token', async () => {
    const r = await send(runsUrl(), { method: 'POST', headers: { ...good(), origin: 'https://evil.example' }, body: '{"mode":"full"}' });
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body).error).toContain('origin https://evil.example');
    await nothingStarted();
  });

  it('refuses a POST from an opaque origin (Origin: null: a sandboxed frame, a data: or file: page)', async () => {
    const r = await send(runsUrl(), { method: 'POST', headers: { ...good(), origin: 'null' }, body: '{"mode":"full"}' });
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body).error).toContain('origin null');
    // Our own name on another port, or another loopback name, is another origin too.
    for (const origin of [`http://127.0.0.1:1`, `http://localhost:${new URL(server.url).port}`, `https://${host}`]) {
      const o = await send(runsUrl(), { method: 'POST', headers: { ...good(), origin }, body: '{"mode":"full"}' });
      expect(o.status, origin).toBe(403);
    }
    await nothingStarted();
  });

  it('refuses a text/plain POST (a "simple" request no CORS preflight stops)', async () => {
    const r = await send(runsUrl(), { method: 'POST', headers: { ...good(), 'content-type': 'text/plain;charset=UTF-8' }, body: '{"mode":"full"}' });
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body).error).toContain('content-type: application/json, got text/plain');
    await nothingStarted();
  });

  it('refuses a foreign Host (DNS rebinding), for reads as well as writes, and the loopback name on another port', async () => {
    const port = new URL(server.url).port;
    const foreign = [
      'attacker.example',
      `attacker.example:${port}`,
      // A rebinding name that starts like ours, and ours with a trailing dot or userinfo-like junk.
      `localhost.evil.com:${port}`,
      `127.0.0.1.nip.io:${port}`,
      `localhost.:${port}`,
      `evil.com@127.0.0.1:${port}`,
      // Our name without the port (a browser then means port 80), or on another port.
      '127.0.0.1',
      'localhost',
      'localhost:1',
      `127.0.0.2:${port}`,
      `0.0.0.0:${port}`,
      // IPv6: only the canonical [::1] with our port; other spellings and addresses are refused.
      '[::1]',
      `[::2]:${port}`,
      `[::ffff:127.0.0.1]:${port}`,
      `::1:${port}`,
    ];
    for (const h of foreign) {
      const post = await send(runsUrl(), { method: 'POST', headers: { ...good(), host: h }, body: '{"mode":"full"}' });
      expect(post.status, h).toBe(403);
      expect(JSON.parse(post.body).error).toContain(`Host ${h} is not this server`);
      expect((await send(`${server.url}/api/pipelines`, { headers: { host: h } })).status, h).toBe(403);
    }
    await nothingStarted();
  });

  it('refuses a POST without the token, or with a wrong one', async () => {
    const { 'x-tidemark-token': _t, ...noToken } = good();
    for (const headers of [noToken, { ...good(), 'x-tidemark-token': 'guess' }]) {
      const r = await send(runsUrl(), { method: 'POST', headers, body: '{"mode":"full"}' });
      expect(r.status).toBe(403);
      expect(JSON.parse(r.body).error).toContain('x-tidemark-token');
    }
    // A rollback is refused the same way, before the route reads anything.
    const rb = await send(`${server.url}/api/pipelines/accounts/rollback`, { method: 'POST', headers: noToken, body: '{"toRunId":"20260101T000000Z-0000"}' });
    expect(rb.status).toBe(403);
    await nothingStarted();
  });

  it('refuses PUT, PATCH and DELETE the same way: JSON and the token, or 403 before any route', async () => {
    const { 'x-tidemark-token': _t, ...noToken } = good();
    for (const method of ['PUT', 'PATCH', 'DELETE']) {
      for (const [why, headers] of [
        ['no token', noToken],
        ['text/plain', { ...good(), 'content-type': 'text/plain' }],
        ['cross origin', { ...good(), origin: 'https://evil.example' }],
        ['foreign Host', { ...good(), host: `localhost.evil.com:${new URL(server.url).port}` }],
      ] as const) {
        const r = await send(runsUrl(), { method, headers, body: '{"mode":"full"}' });
        expect(r.status, `${method} ${why}`).toBe(403);
      }
      // With everything right it is still no write: no route takes these methods.
      expect((await send(runsUrl(), { method, headers: good(), body: '{"mode":"full"}' })).status, method).toBe(404);
    }
    await nothingStarted();
  });

  it('serves reads on every loopback name, and starts a run for its own page: same origin, JSON, the token from the page', async () => {
    const port = new URL(server.url).port;
    for (const h of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`]) expect((await send(`${server.url}/api/pipelines`, { headers: { host: h } })).status, h).toBe(200);
    const page = await send(`${server.url}/api/ui`, { headers: { host } });
    expect(page.status).toBe(200);
    const token = /<meta name="tidemark-token" content="([^"]+)">/.exec(page.body)?.[1];
    expect(token).toBe(server.token);
    const r = await send(runsUrl(), { method: 'POST', headers: { ...good(), origin: `http://${host}`, 'x-tidemark-token': token! }, body: '{"mode":"full"}' });
    expect(r.status, r.body).toBe(202);
    expect(await listRuns(stack.ctx.tables, 'accounts')).toHaveLength(1);
  });

  it('writes its URL and token to .tidemark/local-server.json, readable by the user only, and a new start has a new token', async () => {
    const file = join(dir, '.tidemark', LOCAL_SERVER_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readLocalServer(join(dir, '.tidemark'))).toEqual({ url: server.url, token: server.token });
    const other = await startHttpServer(stack.ctx, apiRoutes, { port: 0 });
    try {
      expect(other.token).not.toBe(server.token);
      const r = await send(`${other.url}/api/pipelines/accounts/runs`, { method: 'POST', headers: { ...good(), host: new URL(other.url).host }, body: '{}' });
      expect(r.status).toBe(403);
    } finally {
      await other.close();
    }
  });

  it('with allowRemote, every request needs the key (as function keys in Azure), writes the token as well; without it, binding beyond loopback is refused', async () => {
    await expect(startHttpServer(stack.ctx, apiRoutes, { port: 0, host: '0.0.0.0' })).rejects.toThrow(/allowRemote/);
    await expect(devCommand.run(['--project', dir, '--host', '0.0.0.0'])).rejects.toThrow(/--allow-remote/);
    // Bound to loopback here (tests bind 127.0.0.1); the Host is then whatever the client used.
    const remote = await startHttpServer(stack.ctx, apiRoutes, { port: 0, allowRemote: true, key: 'k'.repeat(32) });
    try {
      const h = { host: 'tidemark-dev.internal:7071' };
      expect((await send(`${remote.url}/api/pipelines`, { headers: h })).status).toBe(401);
      expect((await send(`${remote.url}/api/pipelines`, { headers: { ...h, 'x-functions-key': 'wrong' } })).status).toBe(401);
      expect((await send(`${remote.url}/api/pipelines?code=${'k'.repeat(32)}`, { headers: h })).status).toBe(200);
      expect((await send(`${remote.url}/api/pipelines`, { headers: { ...h, 'x-functions-key': 'k'.repeat(32) } })).status).toBe(200);
      const noToken = await send(`${remote.url}/api/pipelines/accounts/runs`, {
        method: 'POST',
        headers: { ...h, 'x-functions-key': 'k'.repeat(32), 'content-type': 'application/json' },
        body: '{}',
      });
      expect(noToken.status).toBe(403);
      expect(await listRuns(stack.ctx.tables, 'accounts')).toHaveLength(1);
    } finally {
      await remote.close();
    }
  });
});

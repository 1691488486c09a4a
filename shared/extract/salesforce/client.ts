import { createSign } from 'node:crypto';
import { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import type * as Jsforce from 'jsforce';
import type { Connection } from 'jsforce';
import type * as TransportModule from 'jsforce/lib/transport.js';
import { readSetting } from '../../config/load.js';
import type { ConnectionConfig } from '../../config/schema.js';
import { TerminalError, TransientError, errorMessage } from '../../errors.js';
import { backoffDelay, type RetryPolicy } from '../../retry.js';
import type { SfDescribe } from './types.js';
import { lazyModule } from '../../lazy-module.js';
import { registerSecret } from '../../telemetry/redact.js';

const jsforceLib = lazyModule<typeof Jsforce>('jsforce');
const transportLib = lazyModule<typeof TransportModule>('jsforce/lib/transport.js');

export type SfConnectionConfig = Extract<ConnectionConfig, { kind: 'salesforce' }>;

/** The parts of a Describe Global entry `init` reads. */
export interface SfObjectInfo {
  name: string;
  label?: string;
  custom?: boolean;
  queryable?: boolean;
  /** Replicateable objects are the ones the query and getDeleted APIs serve for sync. */
  replicateable?: boolean;
  customSetting?: boolean;
  deprecatedAndHidden?: boolean;
}

/** `Sforce-Limit-Info: api-usage=25/15000`, from the last response that carried it. */
export interface ApiUsage {
  used: number;
  max: number;
}

export interface QueryPage {
  totalSize: number;
  done: boolean;
  nextRecordsUrl?: string;
  records: Array<Record<string, unknown>>;
}

export interface BulkJobInfo {
  id: string;
  state: 'UploadComplete' | 'InProgress' | 'Aborted' | 'JobComplete' | 'Failed';
  numberRecordsProcessed?: number;
  errorMessage?: string;
}

/** Error codes a later attempt can get past (REST API status codes and errors). */
const TRANSIENT_CODES = new Set(['REQUEST_LIMIT_EXCEEDED', 'SERVER_UNAVAILABLE', 'UNABLE_TO_LOCK_ROW', 'QUERY_TIMEOUT']);
const NETWORK = /ECONNRESET|ECONNREFUSED|ETIMEDOUT|EPIPE|socket hang up|fetch failed|other side closed|terminated|aborted/i;

export function parseLimitInfo(header: string | undefined): ApiUsage | null {
  const m = /api-usage=(\d+)\/(\d+)/.exec(header ?? '');
  return m ? { used: Number(m[1]), max: Number(m[2]) } : null;
}

/**
 * Transient: throttling (429, REQUEST_LIMIT_EXCEEDED, which Salesforce answers with 403), 5xx
 * and connections that dropped. Everything else (bad SOQL, an unknown field, a refused login)
 * cannot heal by waiting and fails the run with the server's own message, which names the field.
 */
export function isTransientSfError(err: unknown, status: number | undefined): boolean {
  if (err instanceof TerminalError) return false;
  const code = (err as { errorCode?: unknown; name?: unknown })?.errorCode ?? (err as { name?: unknown })?.name;
  if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return true;
  if (status !== undefined && (status === 429 || status >= 500)) return true;
  const c = (err as { code?: unknown })?.code ?? (err as { cause?: { code?: unknown } })?.cause?.code;
  if (typeof c === 'string' && NETWORK.test(c)) return true;
  return status === undefined && NETWORK.test(errorMessage(err));
}

interface Observed {
  status?: number;
  usage: ApiUsage | null;
}

/**
 * jsforce's transport with its own fixed retry switched off (the pipeline's `retry:` decides,
 * with jitter) and every response observed for its status and Sforce-Limit-Info.
 */
function observingTransport(seen: Observed): unknown {
  const Base = transportLib().Transport as unknown as new () => { httpRequest(req: unknown, o?: Record<string, unknown>): Promise<{ statusCode: number; headers: Record<string, string> }> };
  class Observing extends Base {
    override httpRequest(req: unknown, o: Record<string, unknown> = {}) {
      const p = super.httpRequest(req, { ...o, retry: { maxRetries: 0 } });
      p.then(
        (res) => {
          seen.status = res.statusCode;
          seen.usage = parseLimitInfo(res.headers['sforce-limit-info']) ?? seen.usage;
        },
        () => {
          seen.status = undefined;
        },
      );
      return p;
    }
  }
  return new Observing();
}

function b64url(s: string | Buffer): string {
  return Buffer.from(s).toString('base64url');
}

/** OAuth 2.0 JWT bearer assertion (RS256), signed with node:crypto. */
export function jwtAssertion(o: { clientId: string; username: string; audience: string; privateKey: string; now?: number }): string {
  const now = Math.floor((o.now ?? Date.now()) / 1000);
  const head = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify({ iss: o.clientId, sub: o.username, aud: o.audience, exp: now + 180 }));
  const sig = createSign('RSA-SHA256').update(`${head}.${body}`).sign(o.privateKey);
  return `${head}.${body}.${b64url(sig)}`;
}

/**
 * A logged-in Salesforce API client on jsforce: REST calls through jsforce's connection, Bulk
 * API 2.0 job calls through jsforce's HTTP layer, and result pages streamed (jsforce's
 * `bulk2.query` downloads every page before it yields a record, which is not flat in memory).
 */
export class SalesforceClient {
  private readonly seen: Observed = { usage: null };
  /** Logs in again; set by connect. A session can expire during a long Bulk read. */
  private relogin: (() => Promise<void>) | undefined;

  private constructor(
    readonly conn: Connection,
    private readonly retry: RetryPolicy,
    private readonly what: string,
    private readonly onRetry?: (message: string) => void,
  ) {}

  static async connect(c: SfConnectionConfig, env: NodeJS.ProcessEnv, o: { retry: RetryPolicy; what: string; onRetry?: (message: string) => void }): Promise<SalesforceClient> {
    const instanceUrl = readSetting(c.instanceUrlSetting, env).replace(/\/+$/, '');
    const clientId = readSetting(c.clientIdSetting, env);
    const jsforce = jsforceLib();
    const oauth2 = new jsforce.OAuth2({ loginUrl: instanceUrl, clientId, ...(c.auth === 'clientCredentials' ? { clientSecret: readSetting(c.secretSetting!, env) } : {}) });
    const conn = new jsforce.Connection({ oauth2, instanceUrl, version: c.apiVersion });
    const client = new SalesforceClient(conn, o.retry, o.what, o.onRetry);
    const t = observingTransport(client.seen);
    (conn as unknown as { _transport: unknown })._transport = t;
    (oauth2 as unknown as { _transport: unknown })._transport = t;
    const params: { grant_type: string; [name: string]: string } =
      c.auth === 'clientCredentials'
        ? { grant_type: 'client_credentials' }
        : {
            grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
            assertion: jwtAssertion({ clientId, username: c.username!, audience: c.audience, privateKey: readSetting(c.privateKeySetting!, env).replace(/\\n/g, '\n') }),
          };
    const login = async () => {
      const res = (await oauth2.requestToken(params)) as { access_token: string; instance_url: string };
      // The session token is a secret like the setting it came from: masked wherever it appears.
      registerSecret(res.access_token);
      conn.accessToken = res.access_token;
      conn.instanceUrl = res.instance_url || instanceUrl;
    };
    await client.call('login', login);
    client.relogin = login;
    return client;
  }

  get usage(): ApiUsage | null {
    return this.seen.usage;
  }

  /** One API call under the pipeline's retry policy; terminal errors carry the server's words. */
  async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        this.seen.status = undefined;
        return await fn();
      } catch (err) {
        const status = this.seen.status;
        const code0 = (err as { errorCode?: unknown }).errorCode ?? (err as { name?: unknown }).name;
        if (code0 === 'INVALID_SESSION_ID' && this.relogin && attempt < this.retry.attempts) {
          // The access token expired (sessions time out, long Bulk reads outlive them): log in
          // again and repeat the call; a second refusal in a row is terminal like any other.
          this.onRetry?.(`Salesforce ${what}: session expired, logging in again`);
          await this.relogin();
          continue;
        }
        if (!isTransientSfError(err, status)) {
          if (err instanceof TerminalError) throw err;
          const code = (err as { errorCode?: string }).errorCode ?? (err as Error).name;
          throw new TerminalError(`${this.what}: Salesforce ${what} failed: ${code && code !== 'Error' ? `${code}: ` : ''}${errorMessage(err)}`, { cause: err });
        }
        if (attempt >= this.retry.attempts) {
          throw new TransientError(`${this.what}: Salesforce ${what} still failing after ${attempt} attempts: ${errorMessage(err)}`, { cause: err });
        }
        const delay = backoffDelay(this.retry, attempt);
        this.onRetry?.(`Salesforce ${what} failed (attempt ${attempt}${status ? `, HTTP ${status}` : ''}), retrying in ${delay} ms: ${errorMessage(err)}`);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private path(rest: string): string {
    return `/services/data/v${this.conn.version}${rest}`;
  }

  /** The org's objects (REST Describe Global, `/sobjects`). */
  describeGlobal(): Promise<{ sobjects: SfObjectInfo[] }> {
    return this.call('describe global', () => this.conn.request<{ sobjects: SfObjectInfo[] }>(this.path('/sobjects')));
  }

  describe(object: string): Promise<SfDescribe> {
    return this.call(`describe ${object}`, () => this.conn.request<SfDescribe>(this.path(`/sobjects/${object}/describe`)));
  }

  /** First page of a REST query (`/query`, or `/queryAll` to include deleted rows). */
  query(soql: string, all: boolean): Promise<QueryPage> {
    return this.call(all ? 'queryAll' : 'query', () => this.conn.request<QueryPage>(this.path(`/${all ? 'queryAll' : 'query'}?q=${encodeURIComponent(soql)}`)));
  }

  queryMore(nextRecordsUrl: string): Promise<QueryPage> {
    return this.call('queryMore', () => this.conn.request<QueryPage>(nextRecordsUrl));
  }

  /** sObject Get Deleted: `earliestDateAvailable` says where the delete log starts. */
  deleted(object: string, start: string, end: string): Promise<{ earliestDateAvailable: string; deletedRecords: Array<{ id: string; deletedDate: string }> }> {
    const q = `?start=${encodeURIComponent(start)}&end=${encodeURIComponent(end)}`;
    return this.call(`getDeleted ${object}`, () => this.conn.request(this.path(`/sobjects/${object}/deleted/${q}`)));
  }

  limits(): Promise<Record<string, { Max: number; Remaining: number }>> {
    return this.call('limits', () => this.conn.request(this.path('/limits')));
  }

  /**
   * Record counts of the named objects in one call (REST `limits/recordCount`). Salesforce
   * refreshes them periodically, so they are approximate; an object it has no figure for is
   * absent from the answer.
   */
  recordCounts(objects: readonly string[]): Promise<{ sObjects: Array<{ name: string; count: number }> }> {
    return this.call('limits/recordCount', () => this.conn.request(this.path(`/limits/recordCount?sObjects=${objects.map(encodeURIComponent).join(',')}`)));
  }

  createQueryJob(soql: string, all: boolean): Promise<BulkJobInfo> {
    return this.call('bulk query job create', () =>
      this.conn.request<BulkJobInfo>({
        method: 'POST',
        url: this.path('/jobs/query'),
        body: JSON.stringify({ operation: all ? 'queryAll' : 'query', query: soql, contentType: 'CSV', columnDelimiter: 'COMMA', lineEnding: 'LF' }),
        headers: { 'Content-Type': 'application/json; charset=utf-8' },
      }),
    );
  }

  getQueryJob(id: string): Promise<BulkJobInfo> {
    return this.call('bulk query job status', () => this.conn.request<BulkJobInfo>(this.path(`/jobs/query/${id}`)));
  }

  async deleteQueryJob(id: string): Promise<void> {
    await this.conn.request({ method: 'DELETE', url: this.path(`/jobs/query/${id}`) }).catch(() => undefined);
  }

  /** Polls until JobComplete with growing, jittered waits; Failed / Aborted end the read. */
  async waitForJob(id: string, o: { firstPollMs: number; maxPollMs: number; timeoutMs: number }): Promise<BulkJobInfo> {
    const started = Date.now();
    for (let i = 0; ; i++) {
      const info = await this.getQueryJob(id);
      if (info.state === 'JobComplete') return info;
      if (info.state === 'Failed' || info.state === 'Aborted') {
        throw new TerminalError(`${this.what}: Bulk API 2.0 query job ${id} ${info.state}${info.errorMessage ? `: ${info.errorMessage}` : ''}`);
      }
      if (Date.now() - started > o.timeoutMs) throw new TransientError(`${this.what}: Bulk API 2.0 query job ${id} not complete after ${o.timeoutMs} ms (state ${info.state})`);
      const base = Math.min(o.maxPollMs, o.firstPollMs * 2 ** i);
      await new Promise((r) => setTimeout(r, Math.round(base / 2 + (Math.random() * base) / 2)));
    }
  }

  /**
   * Downloads the results of a complete job page by page (`Sforce-Locator`), gzip-compressed,
   * parsing CSV as it streams: `onRow` says when the caller must await `onPause` (a part is
   * due), and the HTTP body is not read meanwhile. A page that fails mid-way is retried from
   * its start by the caller's whole-read retry, never resumed half-way (rows would double).
   */
  async readResults(id: string, maxRecords: number, onHeader: (header: string[]) => void, onRow: (row: string[]) => boolean, onPause: () => Promise<void>): Promise<{ pages: number; rows: number; gzipPages: number }> {
    let locator: string | null = null;
    let pages = 0;
    let rows = 0;
    let gzipPages = 0;
    for (;;) {
      const url: string = `${this.conn.instanceUrl}${this.path(`/jobs/query/${id}/results`)}?maxRecords=${maxRecords}${locator ? `&locator=${encodeURIComponent(locator)}` : ''}`;
      const res: Response = await this.call('bulk query results', async (): Promise<Response> => {
        const r: Response = await fetch(url, { headers: { Authorization: `Bearer ${this.conn.accessToken}`, Accept: 'text/csv', 'Accept-Encoding': 'gzip' } });
        this.seen.status = r.status;
        this.seen.usage = parseLimitInfo(r.headers.get('sforce-limit-info') ?? undefined) ?? this.seen.usage;
        if (!r.ok) {
          const text = await r.text();
          let body: unknown;
          try {
            body = JSON.parse(text);
          } catch {
            body = undefined;
          }
          const first = Array.isArray(body) ? (body[0] as { errorCode?: string; message?: string }) : undefined;
          throw Object.assign(new Error(first?.message ?? `HTTP ${r.status}: ${text.slice(0, 300)}`), { errorCode: first?.errorCode ?? `HTTP_${r.status}` });
        }
        return r;
      });
      if (res.headers.get('content-encoding') === 'gzip') gzipPages++;
      pages++;
      let header = true;
      // fetch has already undone the gzip transfer encoding; the body arrives as a stream.
      const parser = Readable.fromWeb(res.body! as import('node:stream/web').ReadableStream).pipe(parse({ relax_column_count: false, bom: true }));
      for await (const rec of parser as AsyncIterable<string[]>) {
        if (header) {
          if (pages === 1) onHeader(rec);
          header = false;
          continue;
        }
        rows++;
        if (onRow(rec)) await onPause();
      }
      const next: string | null = res.headers.get('sforce-locator');
      if (!next || next === 'null') break;
      locator = next;
    }
    return { pages, rows, gzipPages };
  }
}

/**
 * TEST DOUBLE of Salesforce, a service that cannot run here. A local HTTP server (127.0.0.1,
 * port picked by the OS) speaking the documented endpoints the salesforce source uses, with
 * their documented shapes:
 *   POST /services/oauth2/token                      client_credentials and JWT bearer grants
 *   GET  /services/data/vXX.X/sobjects/{obj}/describe
 *   GET  /services/data/vXX.X/query?q= | /queryAll?q=  { totalSize, done, nextRecordsUrl, records }
 *   GET  {nextRecordsUrl}                            queryMore
 *   GET  /services/data/vXX.X/sobjects/{obj}/deleted/?start=&end=   { deletedRecords, earliestDateAvailable, latestDateCovered }
 *   GET  /services/data/vXX.X/limits
 *   GET  /services/data/vXX.X/limits/recordCount?sObjects=   { sObjects: [{ count, name }] }
 *   POST /services/data/vXX.X/jobs/query             Bulk API 2.0 query job (query | queryAll)
 *   GET  /services/data/vXX.X/jobs/query/{id}        UploadComplete → InProgress → JobComplete
 *   GET  /services/data/vXX.X/jobs/query/{id}/results?maxRecords=&locator=   CSV, Sforce-Locator, gzip
 *   DELETE /services/data/vXX.X/jobs/query/{id}
 * Errors come as Salesforce sends them: `[{ "message", "errorCode" }]` (REQUEST_LIMIT_EXCEEDED
 * with 403, INVALID_FIELD / MALFORMED_QUERY with 400, INVALID_SESSION_ID with 401). Every
 * response carries `Sforce-Limit-Info: api-usage=n/max`.
 *
 * It serves one generated Account object: row i is computed from i (so a million rows cost no
 * memory here), with updates, deletes (IsDeleted, recycle bin) and a purge cut-off of the delete
 * log. Its SOQL is the subset the source emits: a field list, AND-ed comparisons of a field with
 * a dateTime literal or NULL, COUNT(), ORDER BY one field, LIMIT.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createPublicKey, createVerify } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';

export interface SfRow {
  Id: string;
  Name: string;
  AnnualRevenue: string | null;
  NumberOfEmployees: number | null;
  IsActive__c: boolean;
  BillingCity: string | null;
  IsDeleted: boolean;
  CreatedDate: string;
  LastModifiedDate: string;
  SystemModstamp: string;
}

const FIELDS = [
  { name: 'Id', type: 'id', length: 18 },
  { name: 'IsDeleted', type: 'boolean' },
  { name: 'Name', type: 'string', length: 255 },
  { name: 'AnnualRevenue', type: 'currency', precision: 18, scale: 2 },
  { name: 'NumberOfEmployees', type: 'int', digits: 8 },
  { name: 'IsActive__c', type: 'boolean' },
  { name: 'BillingCity', type: 'string', length: 40, compoundFieldName: 'BillingAddress' },
  { name: 'BillingAddress', type: 'address' },
  { name: 'CreatedDate', type: 'datetime' },
  { name: 'LastModifiedDate', type: 'datetime' },
  { name: 'SystemModstamp', type: 'datetime' },
] as const;

/**
 * A formula field, in describe only when `formulaField` is set: `init` must leave it out (the
 * queries tidemark makes never select it, so the double does not serve its values).
 */
const FORMULA_FIELD = { name: 'Tier__c', type: 'string', length: 10, calculated: true };

/** Describe Global: Account is served; its history object is queryable but not replicateable. */
const OBJECTS = [
  { name: 'Account', label: 'Account', custom: false, queryable: true, replicateable: true, customSetting: false, deprecatedAndHidden: false },
  { name: 'AccountHistory', label: 'Account History', custom: false, queryable: true, replicateable: false, customSetting: false, deprecatedAndHidden: false },
];

/** `expire`: the session ends (every issued token is refused from now on, 401 INVALID_SESSION_ID). */
export type Fault = 'limit' | '429' | '503' | 'drop' | 'expire';

const sfTime = (ms: number) => new Date(ms).toISOString().replace('Z', '+0000');

export class SalesforceDouble {
  readonly requests: Array<{ method: string; path: string }> = [];
  readonly faults: Array<{ fault: Fault; match: RegExp }> = [];
  gzipResponses = 0;
  apiUsed = 0;
  apiMax = 100_000;
  restPageSize = 2000;
  /** Describe Account with a formula field (Tier__c) too. */
  formulaField = false;
  /** Deleted rows whose deletedDate is older than this are purged: queryAll no longer shows them. */
  purgedBefore = 0;
  /**
   * What `limits/recordCount` answers for Account: 'live' counts the rows not deleted now; a
   * number is a stale figure (Salesforce refreshes its counts periodically); 'missing' leaves
   * Account out of the answer, as Salesforce does for an object it has no figure for.
   */
  recordCount: 'live' | 'missing' | number = 'live';
  private readonly updates = new Map<number, Partial<SfRow> & { at: number }>();
  private readonly deletes = new Map<number, number>();
  private readonly cursors = new Map<string, { rows: SfRow[]; fields: string[]; pos: number }>();
  private readonly jobs = new Map<string, { soql: string; all: boolean; polls: number; matched?: Uint32Array }>();
  private seq = 0;
  private tokens = 0;
  private validToken = '';
  logins = 0;
  private server!: Server;
  url = '';

  constructor(
    public rows: number,
    /** tokenPrefix: what the issued access tokens start with (default TOKEN), so a test can look for them. */
    readonly credentials: { clientId: string; secret: string; publicKeyPem?: string; username?: string; tokenPrefix?: string },
    readonly base: number = Date.parse('2026-01-01T00:00:00Z'),
  ) {}

  static async start(rows: number, credentials: SalesforceDouble['credentials'], base?: number): Promise<SalesforceDouble> {
    const d = new SalesforceDouble(rows, credentials, base);
    d.server = createServer((req, res) => {
      d.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) d.json(res, 500, [{ message: String(err), errorCode: 'UNKNOWN_EXCEPTION' }]);
        else res.destroy();
      });
    });
    await new Promise<void>((r) => d.server.listen(0, '127.0.0.1', r));
    d.url = `http://127.0.0.1:${(d.server.address() as AddressInfo).port}`;
    return d;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  /** Row i as it is now (undefined: purged from the recycle bin). */
  row(i: number): SfRow | undefined {
    const created = this.base + i * 1000;
    const r: SfRow = {
      Id: `001${i.toString(36).padStart(12, '0')}AAA`,
      Name: `Account ${i}`,
      AnnualRevenue: i % 7 === 0 ? null : `${i}.${String(i % 100).padStart(2, '0')}`,
      NumberOfEmployees: i % 11 === 0 ? null : i % 5000,
      IsActive__c: i % 2 === 0,
      BillingCity: i % 3 === 0 ? 'Zürich, "Altstadt"' : `City ${i % 50}`,
      IsDeleted: false,
      CreatedDate: sfTime(created),
      LastModifiedDate: sfTime(created),
      SystemModstamp: sfTime(created),
    };
    const u = this.updates.get(i);
    if (u) Object.assign(r, u, { LastModifiedDate: sfTime(u.at), SystemModstamp: sfTime(u.at) });
    const d = this.deletes.get(i);
    if (d !== undefined) {
      if (d < this.purgedBefore) return undefined;
      r.IsDeleted = true;
      r.SystemModstamp = sfTime(d);
    }
    delete (r as Partial<SfRow> & { at?: number }).at;
    return r;
  }

  idOf(i: number): string {
    return `001${i.toString(36).padStart(12, '0')}AAA`;
  }

  update(indexes: number[], at: number, change: Partial<SfRow>): void {
    for (const i of indexes) this.updates.set(i, { ...change, at });
  }

  remove(indexes: number[], at: number): void {
    for (const i of indexes) this.deletes.set(i, at);
  }

  /** The recycle bin empties everything deleted before `t` (and the delete log with it). */
  purge(t: number): void {
    this.purgedBefore = t;
  }

  failNext(fault: Fault, match = /./, times = 1): void {
    for (let k = 0; k < times; k++) this.faults.push({ fault, match });
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json;charset=UTF-8', 'Sforce-Limit-Info': `api-usage=${this.apiUsed}/${this.apiMax}` });
    res.end(text);
  }

  private async body(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url!, this.url);
    const path = u.pathname;
    this.requests.push({ method: req.method!, path: `${path}${u.search}` });
    const f = this.faults.findIndex((x) => x.match.test(`${req.method} ${path}`));
    if (f >= 0) {
      const { fault } = this.faults.splice(f, 1)[0]!;
      if (fault === 'drop') return void req.socket.destroy();
      if (fault === 'expire') {
        this.validToken = '';
        return this.json(res, 401, [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }]);
      }
      if (fault === 'limit') return this.json(res, 403, [{ message: 'TotalRequests Limit exceeded.', errorCode: 'REQUEST_LIMIT_EXCEEDED' }]);
      if (fault === '429') return this.json(res, 429, [{ message: 'Too many requests', errorCode: 'REQUEST_LIMIT_EXCEEDED' }]);
      return this.json(res, 503, [{ message: 'Service unavailable', errorCode: 'SERVER_UNAVAILABLE' }]);
    }
    if (req.method === 'POST' && path === '/services/oauth2/token') return this.token(res, new URLSearchParams(await this.body(req)));
    if (!this.validToken || req.headers.authorization !== `Bearer ${this.validToken}`) return this.json(res, 401, [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }]);
    this.apiUsed++;
    const m = /^\/services\/data\/v(\d+\.0)(\/.*)$/.exec(path);
    if (!m) return this.json(res, 404, [{ message: `The requested resource does not exist: ${path}`, errorCode: 'NOT_FOUND' }]);
    const rest = m[2]!;
    if (rest === '/sobjects') return this.json(res, 200, { encoding: 'UTF-8', maxBatchSize: 200, sobjects: OBJECTS });
    if (rest === '/sobjects/Account/describe') return this.json(res, 200, { name: 'Account', fields: this.formulaField ? [...FIELDS, FORMULA_FIELD] : FIELDS });
    if (/^\/sobjects\/[^/]+\/describe$/.test(rest)) return this.json(res, 404, [{ message: "The requested resource does not exist", errorCode: 'NOT_FOUND' }]);
    if (rest === '/limits') return this.json(res, 200, { DailyApiRequests: { Max: this.apiMax, Remaining: this.apiMax - this.apiUsed } });
    if (rest === '/query' || rest === '/queryAll') return this.query(res, u.searchParams.get('q') ?? '', rest === '/queryAll', m[1]!);
    if (rest === '/limits/recordCount') return this.recordCounts(res, (u.searchParams.get('sObjects') ?? '').split(',').filter(Boolean));
    const more = /^\/(query|queryAll)\/([^/]+)$/.exec(rest);
    if (more) return this.more(res, more[2]!, m[1]!, more[1] === 'queryAll');
    if (rest === '/sobjects/Account/deleted/') return this.deleted(res, u.searchParams);
    if (rest === '/jobs/query' && req.method === 'POST') return this.createJob(res, JSON.parse(await this.body(req)) as { operation: string; query: string });
    const job = /^\/jobs\/query\/([^/]+)(\/results)?$/.exec(rest);
    if (job) {
      const j = this.jobs.get(job[1]!);
      if (!j) return this.json(res, 404, [{ message: 'Job not found', errorCode: 'NOT_FOUND' }]);
      if (req.method === 'DELETE') {
        this.jobs.delete(job[1]!);
        res.writeHead(204).end();
        return;
      }
      if (!job[2]) return this.jobInfo(res, job[1]!, j);
      return this.results(req, res, j, u.searchParams);
    }
    return this.json(res, 404, [{ message: `The requested resource does not exist: ${rest}`, errorCode: 'NOT_FOUND' }]);
  }

  /** `{ sObjects: [{ count, name }] }` for the named objects the double has a figure for (only Account). */
  private recordCounts(res: ServerResponse, objects: string[]): void {
    const live = () => {
      let n = 0;
      for (let i = 0; i < this.rows; i++) if (this.row(i) && !this.row(i)!.IsDeleted) n++;
      return n;
    };
    const figures = objects.includes('Account') && this.recordCount !== 'missing' ? [{ count: this.recordCount === 'live' ? live() : this.recordCount, name: 'Account' }] : [];
    this.json(res, 200, { sObjects: figures });
  }

  private token(res: ServerResponse, form: URLSearchParams): void {
    const c = this.credentials;
    const ok = { access_token: `${c.tokenPrefix ?? 'TOKEN'}-${this.tokens + 1}`, instance_url: this.url, id: `${this.url}/id/00D000000000001AAA/005000000000001AAA`, token_type: 'Bearer', issued_at: String(Date.now()), signature: 'x' };
    const grant = form.get('grant_type');
    if (grant === 'client_credentials') {
      if (form.get('client_id') === c.clientId && form.get('client_secret') === c.secret) return this.issue(res, ok);
      return this.json(res, 400, { error: 'invalid_client', error_description: 'invalid client credentials' });
    }
    if (grant === 'urn:ietf:params:oauth:grant-type:jwt-bearer' && c.publicKeyPem) {
      const [h, b, s] = (form.get('assertion') ?? '').split('.');
      const claims = JSON.parse(Buffer.from(b ?? '', 'base64url').toString()) as { iss?: string; sub?: string; exp?: number };
      const valid = createVerify('RSA-SHA256').update(`${h}.${b}`).verify(createPublicKey(c.publicKeyPem), Buffer.from(s ?? '', 'base64url'));
      if (valid && claims.iss === c.clientId && claims.sub === c.username && (claims.exp ?? 0) * 1000 > Date.now()) return this.issue(res, ok);
      return this.json(res, 400, { error: 'invalid_grant', error_description: 'invalid assertion' });
    }
    return this.json(res, 400, { error: 'unsupported_grant_type', error_description: 'grant type not supported' });
  }

  private issue(res: ServerResponse, ok: { access_token: string }): void {
    this.tokens++;
    this.logins++;
    this.validToken = ok.access_token;
    this.json(res, 200, ok);
  }

  /** The SOQL subset: returns the matching row indexes in Id order (or sorted), and the fields. */
  private plan(soql: string, all: boolean): { fields: string[]; count: boolean; match: (r: SfRow) => boolean; order?: { field: keyof SfRow; desc: boolean }; limit?: number } {
    const m = /^SELECT (.+?) FROM (\w+)(?: WHERE (.+?))?(?: ORDER BY (\w+)(?: (ASC|DESC))?(?: NULLS LAST)?)?(?: LIMIT (\d+))?$/.exec(soql.trim());
    if (!m) throw Object.assign(new Error(`unexpected token in ${soql}`), { errorCode: 'MALFORMED_QUERY' });
    if (m[2] !== 'Account') throw Object.assign(new Error(`sObject type '${m[2]}' is not supported.`), { errorCode: 'INVALID_TYPE' });
    const count = m[1] === 'COUNT()';
    const fields = count ? [] : m[1]!.split(',').map((x) => x.trim());
    for (const f of fields) {
      if (!FIELDS.some((x) => x.name === f) || f === 'BillingAddress') {
        throw Object.assign(new Error(`\n${soql}\n^\nERROR at Row:1:Column:8\nNo such column '${f}' on entity 'Account'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name.`), { errorCode: 'INVALID_FIELD' });
      }
    }
    const conds = (m[3] ?? '').split(' AND ').filter(Boolean).map((c) => {
      const x = /^(\w+) (>|>=|<|<=|=|!=) (\S+)$/.exec(c.trim());
      if (!x) throw Object.assign(new Error(`unexpected condition ${c}`), { errorCode: 'MALFORMED_QUERY' });
      const field = x[1] as keyof SfRow;
      if (x[3] === 'NULL') return (r: SfRow) => (x[2] === '!=' ? r[field] !== null : r[field] === null);
      const v = Date.parse(x[3]!);
      return (r: SfRow) => {
        const t = Date.parse(String(r[field]).replace('+0000', 'Z'));
        switch (x[2]) {
          case '>': return t > v;
          case '>=': return t >= v;
          case '<': return t < v;
          case '<=': return t <= v;
          default: return t === v;
        }
      };
    });
    const match = (r: SfRow) => (all || !r.IsDeleted) && conds.every((c) => c(r));
    return { fields, count, match, ...(m[4] ? { order: { field: m[4] as keyof SfRow, desc: m[5] === 'DESC' } } : {}), ...(m[6] ? { limit: Number(m[6]) } : {}) };
  }

  private fail(res: ServerResponse, err: unknown): void {
    const e = err as { message: string; errorCode?: string };
    this.json(res, 400, [{ message: e.message, errorCode: e.errorCode ?? 'MALFORMED_QUERY' }]);
  }

  private matching(pl: ReturnType<SalesforceDouble['plan']>): SfRow[] {
    const cmp = pl.order
      ? (a: SfRow, b: SfRow) => {
          const { field, desc } = pl.order!;
          return (String(a[field]) < String(b[field]) ? -1 : String(a[field]) > String(b[field]) ? 1 : 0) * (desc ? -1 : 1);
        }
      : undefined;
    let out: SfRow[] = [];
    for (let i = 0; i < this.rows; i++) {
      const r = this.row(i);
      if (!r || !pl.match(r)) continue;
      // ORDER BY … LIMIT k keeps only the best k, so the double's own memory stays small.
      if (cmp && pl.limit !== undefined) {
        if (out.length < pl.limit) out.push(r);
        else if (cmp(r, out[out.length - 1]!) < 0) out[out.length - 1] = r;
        else continue;
        out.sort(cmp);
      } else out.push(r);
    }
    if (cmp && pl.limit === undefined) out.sort(cmp);
    if (pl.limit !== undefined) out = out.slice(0, pl.limit);
    return out;
  }

  private record(r: SfRow, fields: string[]): Record<string, unknown> {
    const o: Record<string, unknown> = { attributes: { type: 'Account', url: `/services/data/v62.0/sobjects/Account/${r.Id}` } };
    for (const f of fields) {
      const v = r[f as keyof SfRow];
      // REST JSON carries numbers as numbers, like Salesforce.
      o[f] = f === 'AnnualRevenue' && v !== null ? Number(v) : v;
    }
    return o;
  }

  private query(res: ServerResponse, soql: string, all: boolean, version: string): void {
    let pl;
    try {
      pl = this.plan(soql, all);
    } catch (err) {
      return this.fail(res, err);
    }
    if (pl.count) {
      let n = 0;
      for (let i = 0; i < this.rows; i++) {
        const r = this.row(i);
        if (r && pl.match(r)) n++;
      }
      return this.json(res, 200, { totalSize: n, done: true, records: [] });
    }
    const rows = this.matching(pl);
    const id = `01g${String(++this.seq).padStart(15, '0')}`;
    this.cursors.set(id, { rows, fields: pl.fields, pos: 0 });
    this.more(res, id, version, all);
  }

  private more(res: ServerResponse, cursorAndPos: string, version: string, all = false): void {
    const [id] = cursorAndPos.split('-');
    const c = this.cursors.get(id!);
    if (!c) return this.json(res, 400, [{ message: 'invalid query locator', errorCode: 'INVALID_QUERY_LOCATOR' }]);
    const pos = cursorAndPos.includes('-') ? Number(cursorAndPos.split('-')[1]) : 0;
    const page = c.rows.slice(pos, pos + this.restPageSize);
    const next = pos + this.restPageSize;
    const done = next >= c.rows.length;
    if (done) this.cursors.delete(id!);
    this.json(res, 200, {
      totalSize: c.rows.length,
      done,
      ...(done ? {} : { nextRecordsUrl: `/services/data/v${version}/${all ? 'queryAll' : 'query'}/${id}-${next}` }),
      records: page.map((r) => this.record(r, c.fields)),
    });
  }

  private deleted(res: ServerResponse, q: URLSearchParams): void {
    const start = Date.parse(q.get('start') ?? '');
    const end = Date.parse(q.get('end') ?? '');
    if (Number.isNaN(start) || Number.isNaN(end)) return this.json(res, 400, [{ message: 'start and end are required', errorCode: 'MALFORMED_QUERY' }]);
    const deletedRecords = [...this.deletes].filter(([, t]) => t >= Math.max(start, this.purgedBefore) && t <= end).map(([i, t]) => ({ id: this.idOf(i), deletedDate: sfTime(t) }));
    this.json(res, 200, { deletedRecords, earliestDateAvailable: sfTime(this.purgedBefore || this.base), latestDateCovered: sfTime(end) });
  }

  private createJob(res: ServerResponse, body: { operation: string; query: string }): void {
    try {
      this.plan(body.query, body.operation === 'queryAll');
    } catch (err) {
      return this.fail(res, err);
    }
    const id = `750${String(++this.seq).padStart(15, '0')}`;
    this.jobs.set(id, { soql: body.query, all: body.operation === 'queryAll', polls: 0 });
    this.jobInfo(res, id, this.jobs.get(id)!);
  }

  private jobInfo(res: ServerResponse, id: string, j: { soql: string; all: boolean; polls: number; matched?: Uint32Array }): void {
    const state = j.polls === 0 ? 'UploadComplete' : j.polls === 1 ? 'InProgress' : 'JobComplete';
    if (state === 'JobComplete' && !j.matched) {
      const pl = this.plan(j.soql, j.all);
      const idx: number[] = [];
      for (let i = 0; i < this.rows; i++) {
        const r = this.row(i);
        if (r && pl.match(r)) idx.push(i);
      }
      j.matched = Uint32Array.from(idx);
    }
    j.polls++;
    this.json(res, 200, {
      id,
      operation: j.all ? 'queryAll' : 'query',
      object: 'Account',
      createdById: '005000000000001AAA',
      createdDate: sfTime(Date.now()),
      systemModstamp: sfTime(Date.now()),
      state,
      concurrencyMode: 'Parallel',
      contentType: 'CSV',
      apiVersion: 62.0,
      lineEnding: 'LF',
      columnDelimiter: 'COMMA',
      ...(state === 'JobComplete' ? { numberRecordsProcessed: j.matched!.length, retries: 0, totalProcessingTime: 10 } : {}),
    });
  }

  private results(req: IncomingMessage, res: ServerResponse, j: { soql: string; all: boolean; matched?: Uint32Array }, q: URLSearchParams): void {
    if (!j.matched) return this.json(res, 400, [{ message: 'job is not complete', errorCode: 'INVALIDJOBSTATE' }]);
    const fields = this.plan(j.soql, j.all).fields;
    const max = Number(q.get('maxRecords') ?? 50_000);
    const start = Number(q.get('locator') ?? 0);
    const end = Math.min(j.matched.length, start + max);
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    if (gzip) this.gzipResponses++;
    res.writeHead(200, {
      'Content-Type': 'text/csv',
      'Sforce-Locator': end < j.matched.length ? String(end) : 'null',
      'Sforce-NumberOfRecords': String(end - start),
      'Sforce-Limit-Info': `api-usage=${this.apiUsed}/${this.apiMax}`,
      ...(gzip ? { 'Content-Encoding': 'gzip' } : {}),
    });
    const matched = j.matched;
    const cell = (v: unknown) => {
      if (v === null || v === undefined) return '';
      const s = String(v);
      return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
    };
    let i = start;
    let header = true;
    // Generated as read: the response streams with back-pressure, like a real results page.
    const body = new Readable({
      read: () => {
        if (header) {
          header = false;
          body.push(`${fields.map((f) => `"${f}"`).join(',')}\n`);
          return;
        }
        let chunk = '';
        for (let k = 0; k < 500 && i < end; k++, i++) {
          const r = this.row(matched[i]!);
          // A row purged between completion and download is gone, as in Salesforce.
          if (r) chunk += `${fields.map((f) => cell(r[f as keyof SfRow])).join(',')}\n`;
        }
        body.push(chunk.length ? chunk : null);
        if (i >= end && chunk.length) body.push(null);
      },
    });
    (gzip ? body.pipe(createGzip({ level: 1 })) : body).pipe(res);
  }
}

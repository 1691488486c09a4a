import { join } from 'node:path';
import { duckExec, makeProject } from './project.js';
import type { QueueServiceClient } from '@azure/storage-queue';
import { loadProject } from '../../shared/config/load.js';
import { createContext, projectPath, type EngineContext, type SourceFactory, type WarehouseFactory } from '../../shared/engine/context.js';
import { defaultSourceFor, defaultWarehouseFor } from '../../shared/engine/factories.js';
import type { ExtractRequest, Source } from '../../shared/extract/source.js';
import { LocalHost } from '../../shared/local/host.js';
import { DuckDbWarehouse, type StatementExecutor } from '../../shared/merge/duckdb/warehouse.js';
import type { Warehouse, WarehouseSql } from '../../shared/merge/warehouse.js';
import { thisProcessOwner } from '../../shared/state/lease-owner.js';
import { AzureBlobStore, AzureQueuePort } from '../../shared/storage/azure-storage.js';
import { AzureTableStore } from '../../shared/state/azure-tables.js';
import { expandConnectionString } from '../../shared/storage/connection.js';
import { CONTAINERS, QUEUES, TABLES, POISON_SUFFIX } from '../../shared/storage/layout.js';
import type { BlobStore, QueuePort, TableEntity, TableStore } from '../../shared/storage/ports.js';
import { connectionStringStorage, createStorageClients } from '../../shared/storage/clients.js';

/**
 * The enumerated crash harness (issue #13 point 7). Every port a run uses — blobs, queue sends,
 * the host's message acknowledgements, tables, the source, the warehouse (merge, generic SQL and
 * each statement of DuckDB's merge transaction) — goes through one CrashSwitch per simulated
 * process. The switch numbers the calls; told to crash at call k, it "kills the process" there:
 * `before` = the call never happens, `after` = the call took effect and the process dies before
 * its caller sees the answer. From then on every call of that process throws ProcessDeath, so
 * no `finally`, catch or retry of the dead process reaches storage or the warehouse: its
 * in-memory state is abandoned as a real death abandons it. Recovery is a new process (a new
 * context, host and lease owner) using the normal paths: redelivery of the messages still in
 * the queues, the blob trigger's next scan, lease takeover by the next start.
 */
export class ProcessDeath extends Error {
  constructor(readonly at: string) {
    super(`process died ${at}`);
    this.name = 'ProcessDeath';
  }
}

export type Side = 'before' | 'after';
export interface CallRecord {
  op: string;
  target: string;
  /** False when the real call failed: it has no 'after' side (its caller saw the error). */
  ok?: boolean;
  ms?: number;
}

export class CrashSwitch {
  readonly calls: CallRecord[] = [];
  dead = false;
  diedAt: string | undefined;

  /** `k`: the k-th call of this process; `match`: the first call it matches (for tests that name a call, not count it). */
  constructor(
    private readonly crash?: { k: number; side: Side } | { match: (c: CallRecord) => boolean; side: Side },
    /** Awaited before each call: lets a test hold a process at a chosen call while another acts. */
    private readonly beforeCall?: (c: CallRecord) => Promise<void>,
  ) {}

  private armed(k: number, c: CallRecord, side: Side): boolean {
    if (!this.crash || this.crash.side !== side) return false;
    if ('k' in this.crash) return this.crash.k === k;
    if (this.matched !== undefined) return this.matched === k;
    if (this.crash.match(c)) this.matched = k;
    return this.matched === k;
  }
  private matched: number | undefined;

  private die(at: string): never {
    this.dead = true;
    this.diedAt = at;
    throw new ProcessDeath(at);
  }

  async around<T>(op: string, target: string, fn: () => Promise<T>): Promise<T> {
    if (this.dead) throw new ProcessDeath(`(already dead at ${this.diedAt})`);
    const k = this.calls.length;
    const call: CallRecord = { op, target };
    this.calls.push(call);
    await this.beforeCall?.(call);
    if (this.armed(k, call, 'before')) this.die(`before call ${k} ${op} ${target}`);
    const t0 = Date.now();
    let out: T;
    try {
      out = await fn();
    } catch (err) {
      call.ok = false;
      throw err;
    }
    call.ok = true;
    call.ms = Date.now() - t0;
    // Died while this call ran (a concurrent call crashed): the caller never sees the answer.
    if (this.dead) throw new ProcessDeath(`(already dead at ${this.diedAt})`);
    if (this.armed(k, call, 'after')) this.die(`after call ${k} ${op} ${target}`);
    return out;
  }
}

/** Calls that change nothing outside the process: a death just before or just after one leaves the same state behind. */
const READS = new Set(['blob.downloadToFile', 'blob.getText', 'blob.exists', 'blob.list', 'table.get', 'table.list', 'source.extract', 'source.keyStats', 'warehouse.query', 'warehouse.readOnly', 'warehouse.describe', 'warehouse.currentRowCount', 'warehouse.checksum', 'warehouse.asOf']);

export interface CrashPoint {
  k: number;
  side: Side;
}

/**
 * Every call × both sides, grouped by the state a death there leaves behind. Between the end of
 * one call and the start of the next the process touches nothing outside itself, so "after k"
 * and "before k+1" leave the same state; a read changes nothing, so "before" and "after" it do
 * too. Each group is one distinct crash state; `representative` is the point run for it (the
 * "after" of the write that opens the group, or "before call 0"). A failed call has no "after".
 */
export function crashStates(calls: readonly CallRecord[]): Array<{ representative: CrashPoint; points: CrashPoint[]; write: CallRecord | undefined }> {
  const states: Array<{ representative: CrashPoint; points: CrashPoint[]; write: CallRecord | undefined }> = [
    { representative: { k: 0, side: 'before' }, points: [], write: undefined },
  ];
  calls.forEach((c, k) => {
    states.at(-1)!.points.push({ k, side: 'before' });
    if (!c.ok) return;
    if (READS.has(c.op)) states.at(-1)!.points.push({ k, side: 'after' });
    else states.push({ representative: { k, side: 'after' }, points: [{ k, side: 'after' }], write: c });
  });
  return states;
}

const key = (t: string, e: Pick<TableEntity, 'partitionKey' | 'rowKey'>) => `${t}/${e.partitionKey}/${e.rowKey}`;

function crashBlobs(inner: BlobStore, s: CrashSwitch): BlobStore {
  return {
    ensureContainers: (names) => inner.ensureContainers(names),
    uploadFile: (c, n, p) => s.around('blob.uploadFile', `${c}/${n}`, () => inner.uploadFile(c, n, p)),
    downloadToFile: (c, n, p) => s.around('blob.downloadToFile', `${c}/${n}`, () => inner.downloadToFile(c, n, p)),
    putText: (c, n, t) => s.around('blob.putText', `${c}/${n}`, () => inner.putText(c, n, t)),
    getText: (c, n) => s.around('blob.getText', `${c}/${n}`, () => inner.getText(c, n)),
    exists: (c, n) => s.around('blob.exists', `${c}/${n}`, () => inner.exists(c, n)),
    list: (c, prefix) =>
      (async function* () {
        const items = await s.around('blob.list', `${c}/${prefix}`, async () => {
          const all = [];
          for await (const b of inner.list(c, prefix)) all.push(b);
          return all;
        });
        yield* items;
      })(),
    deletePrefix: (c, prefix) => s.around('blob.deletePrefix', `${c}/${prefix}`, () => inner.deletePrefix(c, prefix)),
  };
}

function crashQueues(inner: QueuePort, s: CrashSwitch): QueuePort {
  return {
    ensureQueues: (names) => inner.ensureQueues(names),
    send: (q, body, o) => s.around('queue.send', q, () => inner.send(q, body, o)),
  };
}

function crashTables(inner: TableStore, s: CrashSwitch): TableStore {
  return {
    ensureTables: (names) => inner.ensureTables(names),
    get: (t, pk, rk) => s.around('table.get', `${t}/${pk}/${rk}`, () => inner.get(t, pk, rk)),
    insert: (t, e) => s.around('table.insert', key(t, e), () => inner.insert(t, e)),
    replace: (t, e, etag) => s.around('table.replace', key(t, e), () => inner.replace(t, e, etag)),
    upsert: (t, e) => s.around('table.upsert', key(t, e), () => inner.upsert(t, e)),
    list: (t, pk) => s.around('table.list', `${t}/${pk ?? ''}`, () => inner.list(t, pk)),
    delete: (t, pk, rk, etag) => s.around('table.delete', `${t}/${pk}/${rk}`, () => inner.delete(t, pk, rk, etag)),
  };
}

function crashSourceFor(inner: SourceFactory, s: CrashSwitch): SourceFactory {
  return (ctx, conn, pipeline) => {
    const source = inner(ctx, conn, pipeline);
    const wrapped: Source = {
      extract: (req: ExtractRequest) => s.around('source.extract', pipeline.name, () => source.extract(req)),
      ...(source.keyStats ? { keyStats: (req: Parameters<NonNullable<Source['keyStats']>>[0]) => s.around('source.keyStats', pipeline.name, () => source.keyStats!(req)) } : {}),
      close: () => source.close(),
    };
    return wrapped;
  };
}

function crashSql(inner: WarehouseSql, s: CrashSwitch): WarehouseSql {
  return {
    query: (st) => s.around('warehouse.query', st.sql.slice(0, 60), () => inner.query(st)),
    execute: (sts) => s.around('warehouse.execute', sts[0]?.sql.slice(0, 60) ?? '', () => inner.execute(sts)),
    transaction: (sts) => s.around('warehouse.transaction', sts[0]?.sql.slice(0, 60) ?? '', () => inner.transaction(sts)),
    readOnly: (st) => s.around('warehouse.readOnly', st.sql.slice(0, 60), () => inner.readOnly(st)),
  };
}

function crashWarehouseFor(inner: WarehouseFactory, s: CrashSwitch): WarehouseFactory {
  return (ctx, wh, pipeline) => {
    const w = inner(ctx, wh, pipeline);
    const wrapped: Warehouse = {
      dialect: w.dialect,
      describe: (t) => s.around('warehouse.describe', pipeline.name, () => w.describe(t)),
      merge: (p, f, blob) => s.around('warehouse.merge', pipeline.name, () => w.merge(p, f, blob)),
      currentRowCount: (t) => s.around('warehouse.currentRowCount', pipeline.name, () => w.currentRowCount(t)),
      checksum: (t, c, k, sc) => s.around('warehouse.checksum', pipeline.name, () => w.checksum(t, c, k, sc)),
      asOf: (t, c, a) => s.around('warehouse.asOf', pipeline.name, () => w.asOf(t, c, a)),
      ...(w.sql ? { sql: crashSql(w.sql, s) } : {}),
      // Closing releases this process's handle; a real death releases it too.
      close: () => w.close(),
    };
    return wrapped;
  };
}

/** Each statement of DuckDB's merge transaction: a death there leaves an open transaction that never commits. */
function crashExecutor(s: CrashSwitch): StatementExecutor {
  return (session, st) => s.around('warehouse.statement', st.sql.slice(0, 60), () => session.exec(st));
}

/**
 * The host's view of the queues. Receiving is not a crash point (a message received by a
 * process that dies becomes visible again); a dead process receives nothing. Acknowledging a
 * handled message (delete) is a crash point: a death before it is a redelivery of finished
 * work. A failed handler's message is made visible again at once, which is what the
 * visibility timeout does after a death, compressed.
 */
function crashQueueService(svc: QueueServiceClient, s: CrashSwitch): QueueServiceClient {
  return new Proxy(svc, {
    get(target, prop, recv) {
      if (prop !== 'getQueueClient') return Reflect.get(target, prop, recv);
      return (name: string) => {
        const q = target.getQueueClient(name);
        return new Proxy(q, {
          get(qt, qp, qr) {
            if (qp === 'receiveMessages') {
              return async (...args: Parameters<typeof q.receiveMessages>) => (s.dead ? { receivedMessageItems: [] } : qt.receiveMessages(...args));
            }
            if (qp === 'deleteMessage') {
              return (id: string, pop: string) => s.around('queue.ack', name, () => qt.deleteMessage(id, pop));
            }
            if (qp === 'sendMessage') {
              return (text: string) => s.around('queue.poison', name, () => qt.sendMessage(text));
            }
            const v = Reflect.get(qt, qp, qr) as unknown;
            return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(qt) : v;
          },
        });
      };
    },
  });
}

export interface SimProcess {
  ctx: EngineContext;
  host: LocalHost;
  crash: CrashSwitch;
}

let processes = 0;

/**
 * One simulated process on the project: its own context (ports wrapped by its switch), its own
 * local host, and its own lease owner — this pid with a start time no real process has, so
 * every later process judges it gone (lease-owner.ts) exactly as it judges a dead pid.
 */
export function simProcess(o: { dir: string; connectionString: string; now: () => Date; crash?: ConstructorParameters<typeof CrashSwitch>[0]; beforeCall?: (c: CallRecord) => Promise<void>; env?: NodeJS.ProcessEnv }): SimProcess {
  const crash = new CrashSwitch(o.crash, o.beforeCall);
  const project = loadProject(o.dir);
  const cs = expandConnectionString(o.connectionString);
  const env = { ...process.env, TIDEMARK_WORK_DIR: join(o.dir, 'work'), ...o.env };
  const storage = createStorageClients(connectionStringStorage(project.config.storage, cs), env);
  const warehouseFor: WarehouseFactory = (ctx, wh, pipeline) =>
    wh.kind === 'duckdb' ? new DuckDbWarehouse(projectPath(ctx, wh.path), ctx.duck, crashExecutor(crash)) : defaultWarehouseFor(ctx, wh, pipeline);
  const ctx = createContext({
    project,
    env,
    storage,
    workDir: join(o.dir, 'work'),
    now: o.now,
    sourceFor: crashSourceFor(defaultSourceFor, crash),
    warehouseFor: crashWarehouseFor(warehouseFor, crash),
    ports: {
      blobs: crashBlobs(new AzureBlobStore(storage.blob), crash),
      queues: crashQueues(new AzureQueuePort(storage.queue), crash),
      tables: crashTables(new AzureTableStore(storage), crash),
    },
  });
  // The dead process's stage claims have lapsed by the time its messages are redelivered (the
  // claim lasts functionTimeout; the redelivery comes after the visibility timeout), so here
  // they lapse at once: one process at a time, nothing to exclude.
  ctx.stageClaimTtlMs = 1;
  ctx.owner = { ...thisProcessOwner(), ownerStartTime: `simulated-process-${++processes}` };
  const host = new LocalHost(ctx, { queueService: crashQueueService(storage.queue, crash), maxDequeueCount: 50, retryDelaySeconds: 0, idlePollMs: 1 });
  return { ctx, host, crash };
}

/** Storage as the harness (not any process) sees it: for reading state and resetting between cases. */
export function rawStorage(connectionString: string): { tables: TableStore; blobs: BlobStore; reset(): Promise<void> } {
  const storage = createStorageClients(connectionStringStorage('AzureWebJobsStorage', connectionString), {});
  const tables = new AzureTableStore(storage);
  const blobs = new AzureBlobStore(storage.blob);
  return {
    tables,
    blobs,
    reset: async () => {
      const bs = storage.blob;
      for (const c of Object.values(CONTAINERS)) {
        const cc = bs.getContainerClient(c);
        if (!(await cc.exists())) continue;
        for await (const b of cc.listBlobsFlat()) await cc.deleteBlob(b.name);
      }
      const qs = storage.queue;
      for (const q of Object.values(QUEUES).flatMap((x) => [x, `${x}${POISON_SUFFIX}`, 'webjobs-blobtrigger-poison'])) {
        const qc = qs.getQueueClient(q);
        if (await qc.exists()) await qc.clearMessages();
      }
      for (const t of Object.values(TABLES)) {
        const tc = storage.tableClient(t);
        try {
          for await (const e of tc.listEntities()) await tc.deleteEntity(e.partitionKey!, e.rowKey!);
        } catch (err) {
          if ((err as { statusCode?: number }).statusCode !== 404) throw err;
        }
      }
    },
  };
}



/** A tiny full-compare pipeline (id, city) for tests that race or kill processes, not load data. */
export const TINY_ACCOUNTS = `name: accounts
source: { connection: SRC, table: crm.accounts, changeDetection: { mode: full } }
key: [id]
target: { warehouse: WH, table: dw.dim_account, deletes: retire }
validation: { rowCount: exact }
`;

/** A project with TINY_ACCOUNTS on DuckDB and its source seeded with `rows` (id, city). */
export async function tinyAccountsProject(rows: Array<[number, string]>): Promise<string> {
  const dir = makeProject({ pipelines: { accounts: TINY_ACCOUNTS } });
  const values = rows.map(([id, city]) => `(${id}, '${city}')`).join(', ');
  await duckExec(join(dir, 'source.duckdb'), 'create schema crm', 'create table crm.accounts (id integer, city varchar)', `insert into crm.accounts values ${values}`);
  return dir;
}

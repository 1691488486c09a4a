import type { SourceFactory, WarehouseFactory } from '../../shared/engine/context.js';
import type { ExtractRequest, Source } from '../../shared/extract/source.js';
import type { StatementExecutor } from '../../shared/merge/duckdb/warehouse.js';
import type { Warehouse } from '../../shared/merge/warehouse.js';
import type { BlobStore, QueuePort, TableEntity, TableStore } from '../../shared/storage/ports.js';

/**
 * Fault injection through the ports (never through flags in production code). A FaultPlan holds
 * rules; every wrapped port call asks the plan before and after the real operation. A rule that
 * matches throws, which is what the stage sees when its Function instance dies or a dependency
 * fails at that point: with `when: 'after'` the write has really happened, so the retry must
 * cope with its effect.
 */
export type FaultOp =
  | 'blob.uploadFile'
  | 'blob.downloadToFile'
  | 'blob.putText'
  | 'blob.getText'
  | 'blob.exists'
  | 'blob.deletePrefix'
  | 'queue.send'
  | 'table.get'
  | 'table.insert'
  | 'table.replace'
  | 'table.upsert'
  | 'table.delete'
  | 'source.extract'
  | 'warehouse.merge'
  | 'warehouse.statement';

export interface FaultRule {
  op: FaultOp;
  /** Matched against the call's target: `container/name`, the queue, `table/pk/rk`, the pipeline, or the SQL. */
  target?: RegExp;
  when: 'before' | 'after';
  /** How many matching calls fail; then the rule is spent. Default 1. */
  times?: number;
  /** Skip this many matching calls before failing. */
  skip?: number;
  error?: (op: FaultOp, target: string) => Error;
  /** Runs before the error is thrown, e.g. to stop Azurite. */
  onFire?: () => Promise<void>;
  /** false: only run onFire and let the real call go ahead (and meet the outage onFire made). */
  throws?: boolean;
}

/** What a crash looks like to the engine: not a TerminalError, so the host retries. */
export class InjectedFault extends Error {
  constructor(
    readonly op: FaultOp,
    readonly target: string,
    readonly when: 'before' | 'after',
  ) {
    super(`injected fault ${when} ${op} ${target}`);
    this.name = 'InjectedFault';
  }
}

interface LiveRule extends FaultRule {
  seen: number;
  fired: number;
}

export class FaultPlan {
  private rules: LiveRule[] = [];
  /** Every fault thrown, in order: tests assert the fault really happened. */
  readonly fired: Array<{ op: FaultOp; target: string; when: 'before' | 'after' }> = [];
  /** Every call seen, for tests that need to know what ran. */
  readonly calls: Array<{ op: FaultOp; target: string }> = [];

  add(...rules: FaultRule[]): this {
    for (const r of rules) this.rules.push({ ...r, seen: 0, fired: 0 });
    return this;
  }

  clear(): void {
    this.rules = [];
  }

  /** Rules that have not fired as often as they were told to. */
  pending(): FaultRule[] {
    return this.rules.filter((r) => r.fired < (r.times ?? 1));
  }

  async check(op: FaultOp, target: string, when: 'before' | 'after'): Promise<void> {
    if (when === 'before') this.calls.push({ op, target });
    for (const r of this.rules) {
      if (r.op !== op || r.when !== when || (r.target && !r.target.test(target))) continue;
      if (r.fired >= (r.times ?? 1)) continue;
      r.seen++;
      if (r.seen <= (r.skip ?? 0)) continue;
      r.fired++;
      this.fired.push({ op, target, when });
      await r.onFire?.();
      if (r.throws === false) return;
      throw r.error ? r.error(op, target) : new InjectedFault(op, target, when);
    }
  }

  /** Wraps one call: check before, run, check after. */
  async around<T>(op: FaultOp, target: string, fn: () => Promise<T>): Promise<T> {
    await this.check(op, target, 'before');
    const out = await fn();
    await this.check(op, target, 'after');
    return out;
  }
}

export function faultyBlobs(inner: BlobStore, plan: FaultPlan): BlobStore {
  return {
    ensureContainers: (names) => inner.ensureContainers(names),
    uploadFile: (c, n, p) => plan.around('blob.uploadFile', `${c}/${n}`, () => inner.uploadFile(c, n, p)),
    downloadToFile: (c, n, p) => plan.around('blob.downloadToFile', `${c}/${n}`, () => inner.downloadToFile(c, n, p)),
    putText: (c, n, t) => plan.around('blob.putText', `${c}/${n}`, () => inner.putText(c, n, t)),
    getText: (c, n) => plan.around('blob.getText', `${c}/${n}`, () => inner.getText(c, n)),
    exists: (c, n) => plan.around('blob.exists', `${c}/${n}`, () => inner.exists(c, n)),
    list: (c, prefix) => inner.list(c, prefix),
    deletePrefix: (c, prefix) => plan.around('blob.deletePrefix', `${c}/${prefix}`, () => inner.deletePrefix(c, prefix)),
  };
}

export function faultyQueues(inner: QueuePort, plan: FaultPlan): QueuePort {
  return {
    ensureQueues: (names) => inner.ensureQueues(names),
    send: (q, body, o) => plan.around('queue.send', q, () => inner.send(q, body, o)),
  };
}

/** Every message sent twice: the at-least-once delivery of Azure queues, made certain. */
export function duplicatingQueues(inner: QueuePort): QueuePort & { sent: Array<{ queue: string; body: unknown }> } {
  const sent: Array<{ queue: string; body: unknown }> = [];
  return {
    sent,
    ensureQueues: (names) => inner.ensureQueues(names),
    send: async (q, body, o) => {
      sent.push({ queue: q, body });
      await inner.send(q, body, o);
      await inner.send(q, body, o);
    },
  };
}

const key = (t: string, e: Pick<TableEntity, 'partitionKey' | 'rowKey'>) => `${t}/${e.partitionKey}/${e.rowKey}`;

export function faultyTables(inner: TableStore, plan: FaultPlan): TableStore {
  return {
    ensureTables: (names) => inner.ensureTables(names),
    get: (t, pk, rk) => plan.around('table.get', `${t}/${pk}/${rk}`, () => inner.get(t, pk, rk)),
    insert: (t, e) => plan.around('table.insert', key(t, e), () => inner.insert(t, e)),
    replace: (t, e, etag) => plan.around('table.replace', key(t, e), () => inner.replace(t, e, etag)),
    upsert: (t, e) => plan.around('table.upsert', key(t, e), () => inner.upsert(t, e)),
    list: (t, pk) => inner.list(t, pk),
    delete: (t, pk, rk, etag) => plan.around('table.delete', `${t}/${pk}/${rk}`, () => inner.delete(t, pk, rk, etag)),
  };
}

export function faultySourceFor(inner: SourceFactory, plan: FaultPlan): SourceFactory {
  return (ctx, conn, pipeline) => {
    const source = inner(ctx, conn, pipeline);
    const wrapped: Source = {
      extract: (req: ExtractRequest) => plan.around('source.extract', pipeline.name, () => source.extract(req)),
      close: () => source.close(),
    };
    return wrapped;
  };
}

export function faultyWarehouseFor(inner: WarehouseFactory, plan: FaultPlan): WarehouseFactory {
  return (ctx, wh, pipeline) => {
    const w = inner(ctx, wh, pipeline);
    const wrapped: Warehouse = {
      dialect: w.dialect,
      describe: (t) => w.describe(t),
      merge: (p, f, blob) => plan.around('warehouse.merge', pipeline.name, () => w.merge(p, f, blob)),
      currentRowCount: (t) => w.currentRowCount(t),
      checksum: (t, c, k, s) => w.checksum(t, c, k, s),
      asOf: (t, c, a, o) => w.asOf(t, c, a, o),
      ...(w.sql ? { sql: w.sql } : {}),
      close: () => w.close(),
    };
    return wrapped;
  };
}

/**
 * The driver-level seam of the DuckDB warehouse: runs each statement of the merge transaction
 * through the plan, so a fault lands between two statements of one open transaction.
 */
export function faultyExecutor(plan: FaultPlan): StatementExecutor {
  return async (session, st) => {
    await plan.check('warehouse.statement', st.sql, 'before');
    await session.exec(st);
    await plan.check('warehouse.statement', st.sql, 'after');
  };
}

import sql from 'mssql';
import { parseDuration } from '../../shared/config/duration.js';
import { readSetting } from '../../shared/config/load.js';
import type { WarehouseFactory } from '../../shared/engine/context.js';
import { defaultWarehouseFor } from '../../shared/engine/factories.js';
import type { Statement } from '../../shared/merge/dialect.js';
import { MssqlDriver, MssqlWarehouse, type TsqlDriver } from '../../shared/merge/synapse/warehouse.js';

/**
 * Warm connections to one T-SQL database for the length of a test file.
 *
 * On the T-SQL engine (Babelfish) a new connection is a new PostgreSQL backend: the login takes
 * about 0.3 s, and its first statements 1.5–2.5 s more (the backend parses its first T-SQL and
 * loads the `sys` catalog views cold; the same statements then take 15–60 ms). Production opens
 * one connection per warehouse object, i.e. two per run (merge, validate), and the test reads
 * one per query: most of an edge-case file's time went to warming backends. A file that plays
 * many runs keeps its connections here instead; what runs on them is unchanged: the same
 * `MssqlWarehouse` over the same `MssqlDriver`, one session per warehouse object while it lives,
 * and a session goes back only outside a transaction. test/integration/validate/lists.test.ts
 * keeps production's factory (a new connection per warehouse object) on the engine.
 */
export class TsqlConnections {
  /** Idle drivers by request timeout (a pipeline's `requestTimeout`). */
  private readonly idle = new Map<number, MssqlDriver[]>();
  private readonly drivers = new Set<MssqlDriver>();
  private reads: Promise<sql.ConnectionPool> | undefined;
  /** How many warehouse sessions were lent, and how many of those were new connections: the file can say it reused them. */
  readonly stats = { leases: 0, opened: 0 };

  constructor(readonly url: string) {
    open.set(url, this);
  }

  /** A driver for one warehouse object: a warm session when one is idle; `close()` gives it back. */
  lease(requestTimeoutMs: number): TsqlDriver {
    this.stats.leases++;
    const take = (): MssqlDriver => {
      const d = this.idle.get(requestTimeoutMs)?.pop();
      if (d) return d;
      this.stats.opened++;
      const fresh = new MssqlDriver(this.url, requestTimeoutMs);
      this.drivers.add(fresh);
      return fresh;
    };
    const give = (d: MssqlDriver) => {
      const list = this.idle.get(requestTimeoutMs) ?? [];
      list.push(d);
      this.idle.set(requestTimeoutMs, list);
    };
    return new LeasedDriver(take, give);
  }

  /**
   * The default factory, except that an mssql warehouse on this database gets a leased session.
   * Any other warehouse (or an mssql one elsewhere) is built exactly as production builds it.
   */
  warehouseFor(): WarehouseFactory {
    return (ctx, wh, pipeline) => {
      if (wh.kind !== 'mssql' || readSetting(wh.setting, ctx.env) !== this.url) return defaultWarehouseFor(ctx, wh, pipeline);
      return new MssqlWarehouse(this.lease(parseDuration(wh.requestTimeout)), ctx.duck);
    };
  }

  /** One statement for the test's own reads and setup, on a pooled connection. */
  async query(text: string, params: readonly unknown[] = []): Promise<Array<Record<string, unknown>>> {
    this.reads ??= new sql.ConnectionPool(sql.ConnectionPool.parseConnectionString(this.url)).connect();
    const req = (await this.reads).request();
    params.forEach((v, i) => req.input(`p${i + 1}`, v));
    return ((await req.query(text)).recordset ?? []) as Array<Record<string, unknown>>;
  }

  /** Closes every connection (before the database is dropped: an open session would keep it). */
  async close(): Promise<void> {
    if (open.get(this.url) === this) open.delete(this.url);
    const reads = this.reads;
    this.reads = undefined;
    await Promise.allSettled([...[...this.drivers].map((d) => d.close()), ...(reads ? [reads.then((p) => p.close())] : [])]);
    this.drivers.clear();
    this.idle.clear();
  }
}

/** Open sets by database URL: `tsqlQuery` (tsql-sql.ts) reads through one when the file opened it. */
const open = new Map<string, TsqlConnections>();

/**
 * The default warehouse factory, except that an mssql warehouse on a database whose connections
 * a test file holds open (freshTsqlDatabase) gets a warm session from them.
 */
export const warmWarehouseFor: WarehouseFactory = (ctx, wh, pipeline) => {
  const conns = wh.kind === 'mssql' ? open.get(readSetting(wh.setting, ctx.env)) : undefined;
  return conns ? conns.warehouseFor()(ctx, wh, pipeline) : defaultWarehouseFor(ctx, wh, pipeline);
};

export function openConnectionsFor(url: string): TsqlConnections | undefined {
  return open.get(url);
}

/** One warehouse object's session: taken on its first statement, given back when it closes outside a transaction. */
class LeasedDriver implements TsqlDriver {
  private d: MssqlDriver | undefined;
  private inTx = false;

  constructor(
    private readonly take: () => MssqlDriver,
    private readonly give: (d: MssqlDriver) => void,
  ) {}

  private get driver(): MssqlDriver {
    this.d ??= this.take();
    return this.d;
  }

  query(st: Statement): Promise<Record<string, unknown>[]> {
    return this.driver.query(st);
  }

  async begin(): Promise<void> {
    await this.driver.begin();
    this.inTx = true;
  }

  async commit(): Promise<void> {
    await this.driver.commit();
    this.inTx = false;
  }

  async rollback(): Promise<void> {
    await this.driver.rollback();
    this.inTx = false;
  }

  async close(): Promise<void> {
    const d = this.d;
    this.d = undefined;
    if (!d) return;
    // A session left inside a transaction is not lent again: closed, as production would close it.
    if (this.inTx) {
      this.inTx = false;
      await d.close();
      return;
    }
    this.give(d);
  }
}

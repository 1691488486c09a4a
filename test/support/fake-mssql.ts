import { EventEmitter } from 'node:events';
import type { MssqlConnector, MssqlRequestLike, MssqlTransactionLike } from '../../shared/extract/mssql/driver.js';

/**
 * A FAKE SQL Server: no SQL Server can run here. It answers statements by pattern and
 * reproduces the event shapes of an `mssql` streaming Request (tedious underneath):
 * `recordset` with column metadata, one `row` per row, then `done`, or `error` mid-stream;
 * `pause()` stops rows but, like tedious, still delivers the rest of the packet already read
 * (`rowsAfterPause`), and `resume()` continues. It records every statement with its parameters
 * so tests assert the exact SQL sent. A SNAPSHOT transaction (`beginSnapshot`) is recorded, not
 * enforced: the fake has no versions, so a test checks which statements were sent inside it
 * and that it ended with a commit or a rollback.
 */
export interface FakeAnswer {
  rows: Array<Record<string, unknown>>;
  /** Emit an error event after this many rows instead of finishing. */
  errorAfter?: { rows: number; error: unknown };
}

export interface SentStatement {
  sql: string;
  parameters: Record<string, unknown>;
  /** Index into `transactions` of the transaction it was sent in; null when sent on the pool. */
  transaction: number | null;
}

export interface FakeTransaction {
  isolation: 'SNAPSHOT';
  end: 'commit' | 'rollback' | null;
}

export class FakeMssql {
  readonly sent: SentStatement[] = [];
  pauses = 0;
  resumes = 0;
  maxRowsWhilePaused = 0;
  connects = 0;
  closed = 0;
  readonly transactions: FakeTransaction[] = [];
  /** When set, beginSnapshot() fails with it (e.g. SQL Server error 3952). */
  beginError: unknown = undefined;

  constructor(
    private readonly answer: (sql: string, parameters: Record<string, unknown>) => FakeAnswer,
    private readonly rowsAfterPause = 3,
  ) {}

  connector(): MssqlConnector {
    this.connects++;
    return {
      request: () => this.request(null),
      beginSnapshot: async () => this.begin(),
      close: async () => void this.closed++,
    };
  }

  private begin(): MssqlTransactionLike {
    if (this.beginError !== undefined) throw this.beginError;
    const id = this.transactions.push({ isolation: 'SNAPSHOT', end: null }) - 1;
    const tx = this.transactions[id]!;
    const end = (how: 'commit' | 'rollback') => {
      if (tx.end !== null) throw new Error(`FakeMssql: transaction ${id} already ended with ${tx.end}`);
      tx.end = how;
    };
    return {
      request: () => {
        if (tx.end !== null) throw new Error(`FakeMssql: request on transaction ${id} after its ${tx.end}`);
        return this.request(id);
      },
      commit: async () => end('commit'),
      rollback: async () => end('rollback'),
    };
  }

  private request(transaction: number | null): MssqlRequestLike {
    const fake = this;
    const em = new EventEmitter();
    const params: Record<string, unknown> = {};
    let paused = false;
    let sinceP = 0;
    let cancelled = false;
    let i = 0;
    let answer: FakeAnswer;
    const pump = () => {
      while (!cancelled) {
        if (paused && sinceP >= fake.rowsAfterPause) return;
        if (answer.errorAfter && i === answer.errorAfter.rows) {
          em.emit('error', answer.errorAfter.error);
          return;
        }
        if (i >= answer.rows.length) {
          em.emit('done', { rowCount: answer.rows.length });
          return;
        }
        if (paused) {
          sinceP++;
          fake.maxRowsWhilePaused = Math.max(fake.maxRowsWhilePaused, sinceP);
        }
        em.emit('row', answer.rows[i++]);
      }
    };
    const req: MssqlRequestLike = {
      stream: false,
      input(name, _type, value) {
        params[name] = value;
        return req;
      },
      on(event: string, fn: (...a: never[]) => void) {
        em.on(event, fn as (...a: unknown[]) => void);
        return req;
      },
      query(sql) {
        if (!req.stream) throw new Error('FakeMssql: the source must use request.stream = true');
        fake.sent.push({ sql, parameters: { ...params }, transaction });
        answer = fake.answer(sql, params);
        setImmediate(() => {
          const first = answer.rows[0];
          em.emit('recordset', first ? Object.fromEntries(Object.keys(first).map((k) => [k, { name: k }])) : {});
          pump();
        });
        return undefined;
      },
      pause() {
        fake.pauses++;
        paused = true;
        sinceP = 0;
        return true;
      },
      resume() {
        fake.resumes++;
        paused = false;
        setImmediate(pump);
        return true;
      },
      cancel() {
        cancelled = true;
        return true;
      },
    } as MssqlRequestLike;
    return req;
  }
}

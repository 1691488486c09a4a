import type { Dialect, Statement } from '../../../shared/merge/dialect.js';
import { duckdbDialect } from '../../../shared/merge/duckdb/dialect.js';
import type { MergePlan } from '../../../shared/merge/plan.js';
import { postgresDialect } from '../../../shared/merge/postgres/dialect.js';
import { mssqlDialect, synapseDialect } from '../../../shared/merge/synapse/dialect.js';
import type { TsqlDriver } from '../../../shared/merge/synapse/warehouse.js';

export const dialects: Dialect[] = [duckdbDialect, postgresDialect, synapseDialect('hash'), mssqlDialect()];

export function plan(over: Partial<MergePlan> = {}): MergePlan {
  return {
    pipeline: 'accounts',
    runId: '20260101T000000Z-abcd',
    boundary: '2026-01-01T00:00:00.000Z',
    target: { schema: 'dw', name: 'dim_account' },
    stage: { schema: 'dw', name: '_tm_stage_accounts' },
    keys: ['id'],
    columns: [
      { name: 'id', type: { kind: 'integer', bits: 32 } },
      { name: 'name', type: { kind: 'text' } },
      { name: 'email', type: { kind: 'text' } },
      { name: 'amount', type: { kind: 'decimal', precision: 12, scale: 2 } },
      { name: 'seen_at', type: { kind: 'timestamptz' } },
    ],
    type1Columns: ['email'],
    deletes: 'retire',
    scd: 2,
    counts: { inserted: 3, updated: 2, deleted: 1, type1: 1 },
    commit: { baseRunId: '20251231T000000Z-0000', runSeq: 7, readTo: '2026-01-01T00:00:00.000Z', snapshot: 'accounts/20260101T000000Z-abcd.json' },
    ...over,
  };
}

/** Every statement a dialect renders for the fixture plans, labelled for golden files and parse lists. */
export function renderAll(d: Dialect): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const add = (label: string, sts: ReadonlyArray<{ sql: string }>) => sts.forEach((s, i) => out.push([`${label}#${i + 1}`, s.sql]));
  // A new target (hash rule 4: 16-byte hashes), and one for changes written under rules 1–3.
  add('create', d.ensureTarget(plan({ hashFormat: 'binary' }), []));
  add('create-hex-hashes', d.ensureTarget(plan({ hashFormat: 'hex' }), []).filter((s) => s.sql.includes('CREATE TABLE') && s.sql.includes('dim_account')));
  const existing = [
    { name: 'id', type: d.typeName({ kind: 'integer', bits: 16 }) },
    { name: 'name', type: d.typeName({ kind: 'text' }) },
    { name: 'amount', type: d.typeName({ kind: 'decimal', precision: 12, scale: 2 }) },
    { name: 'seen_at', type: d.typeName({ kind: 'timestamptz' }) },
    ...['_tm_valid_from', '_tm_valid_to', '_tm_is_current', '_tm_is_deleted', '_tm_row_hash', '_tm_run_id', '_tm_version_key'].map((n) => ({ name: n, type: 'x' })),
  ];
  add('evolve', d.ensureTarget(plan({ allowTypeWidening: true }), existing));
  add('ledger-check', [d.ledgerCheck(plan())]);
  add('ledger-head', [d.ledgerHead(plan().target, plan().pipeline)]);
  add('scd2-retire', d.mergeSteps(plan()));
  add('scd2-mark', d.mergeSteps(plan({ deletes: 'mark' })));
  add('scd2-ignore', d.mergeSteps(plan({ deletes: 'ignore', type1Columns: [] })));
  // DuckDB's close of a target bigger than its memory limit (shared/merge/duckdb/warehouse.ts).
  if (d.name === 'duckdb') {
    add('scd2-retire-close-by-copy', d.mergeSteps(plan(), { closeByCopy: true }));
    add('scd2-mark-close-by-copy', d.mergeSteps(plan({ deletes: 'mark' }), { closeByCopy: true }));
  }
  add('scd1-retire', d.mergeSteps(plan({ scd: 1, type1Columns: [] })));
  add('scd1-mark', d.mergeSteps(plan({ scd: 1, deletes: 'mark', type1Columns: [] })));
  add('describe', [d.describeTarget(plan().target)]);
  add('current-count', [d.currentRowCount(plan().target)]);
  add('as-of', [d.asOf(plan().target, plan().columns, '2026-01-01T12:00:00Z')]);
  add('as-of-limited', [d.asOf(plan().target, plan().columns, '2026-01-01T12:00:00Z', { keys: ['id', 'name'], limit: 50 })]);
  add('as-of-count', [d.asOfCount(plan().target, '2026-01-01T12:00:00Z')]);
  add('key-history', [d.keyHistory(plan().target, plan().columns, [{ name: 'id', value: '7' }, { name: 'name', value: "O'Brien" }], '2026-01-01T12:00:00Z')]);
  return out;
}

/**
 * FAKE DRIVER: no SQL Server or Synapse can run here (docs/design.md §15). This fake records what the
 * Synapse warehouse sends through its driver port, so the tests check the exact statements
 * and where the transaction begins and ends; the SQL itself is pinned by the golden file and
 * parsed in synapse-parse.test.ts.
 */
export class RecordingDriver implements TsqlDriver {
  readonly log: string[] = [];
  constructor(
    private readonly answer: (st: Statement) => Record<string, unknown>[] = () => [],
    private readonly failOn?: RegExp,
    /** What the ledger head query answers: by default the fixture plan's base is the head. */
    private readonly head: Record<string, unknown>[] = [{ run_id: plan().commit.baseRunId }],
  ) {}
  async query(st: Statement) {
    this.log.push(st.sql);
    if (this.failOn?.test(st.sql)) throw new Error('Arithmetic overflow (simulated)');
    if (st.sql.startsWith('SELECT TOP 1 [run_id]')) return this.head;
    return this.answer(st);
  }
  async begin() {
    this.log.push('BEGIN TRANSACTION');
  }
  async commit() {
    this.log.push('COMMIT');
  }
  async rollback() {
    this.log.push('ROLLBACK');
  }
  async close() {
    this.log.push('CLOSE');
  }
}

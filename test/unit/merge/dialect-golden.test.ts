import { describe, expect, it } from 'vitest';
import { dialects, plan, renderAll } from './fixtures.js';

/**
 * Exact SQL of every dialect, pinned in test/unit/merge/golden/<dialect>.sql. A change to the
 * rendered SQL shows up as a diff of that file in review; it is never regenerated silently
 * (vitest only writes a missing snapshot, and CI runs with --ci semantics that refuse to).
 */
describe.each(dialects.map((d) => [d.name, d] as const))('%s dialect', (name, d) => {
  it('renders the golden SQL', async () => {
    const text = renderAll(d)
      .map(([label, sql]) => `-- ${label}\n${sql};\n`)
      .join('\n');
    await expect(text).toMatchFileSnapshot(`./golden/${name}.sql`);
  });

  it('binds values as parameters and never inlines them', () => {
    const steps = d.mergeSteps(plan());
    const ledger = steps.at(-1)!;
    expect(ledger.parameters).toEqual([
      'accounts',
      '20260101T000000Z-abcd',
      'dw.dim_account',
      '2026-01-01 00:00:00.000',
      3,
      2,
      1,
      7,
      '20251231T000000Z-0000',
      '2026-01-01T00:00:00.000Z',
      'accounts/20260101T000000Z-abcd.json',
    ]);
    expect(d.ledgerHead(plan().target, 'accounts').parameters).toEqual(['accounts']);
    for (const s of steps) expect(s.sql).not.toContain('20260101T000000Z-abcd');
    expect(d.ledgerCheck(plan()).parameters).toEqual(['accounts', '20260101T000000Z-abcd']);
    // A key's history binds the instant and the key's values; the point-in-time read binds its limit.
    const history = d.keyHistory(plan().target, plan().columns, [{ name: 'id', value: '7' }, { name: 'name', value: "O'Brien" }], '2026-01-01T12:00:00Z');
    expect(history.sql).not.toContain('Brien');
    expect(history.parameters.slice(1)).toEqual(['7', "O'Brien"]);
    expect(d.asOf(plan().target, plan().columns, '2026-01-01T12:00:00Z', { limit: 50 }).parameters).toHaveLength(2);
    expect(d.asOf(plan().target, plan().columns, '2026-01-01T12:00:00Z', { limit: 50 }).sql).not.toContain('50');
  });

  it('reads _tm_run_id in the close only under deletes: mark, whose deleted-flagged copy of this run must stay current', () => {
    const close = (deletes: 'retire' | 'mark' | 'ignore') => {
      const found = d.mergeSteps(plan({ deletes })).filter((s) => s.sql.startsWith('UPDATE') && /_tm_valid_to/.test(s.sql.split('FROM')[0]!));
      expect(found, deletes).toHaveLength(1);
      return found[0]!;
    };
    for (const deletes of ['retire', 'ignore'] as const) {
      expect(close(deletes).sql).not.toContain('_tm_run_id');
      expect(close(deletes).parameters).toEqual([]);
    }
    expect(close('mark').sql).toContain(`${d.quoteIdent('_tm_run_id')} <> ${d.param(1)}`);
    expect(close('mark').parameters).toEqual(['20260101T000000Z-abcd']);
  });

  it('orders the SCD2 steps: mark copy, close, type 1, insert, ledger', () => {
    const kinds = d.mergeSteps(plan({ deletes: 'mark' })).map((s) =>
      s.sql.startsWith('INSERT') ? (s.sql.includes('_tm_ledger') ? 'ledger' : s.sql.includes("= 'delete'") ? 'mark' : 'insert') : s.sql.includes('_tm_valid_to') ? 'close' : 'type1',
    );
    expect(kinds).toEqual(['mark', 'close', 'type1', 'insert', 'ledger']);
  });

  it('creates the target with every SCD2 column of docs/design.md §8', () => {
    const create = d.ensureTarget(plan(), []).find((s) => s.sql.includes('dim_account') && /CREATE TABLE/.test(s.sql))!;
    for (const c of ['_tm_valid_from', '_tm_valid_to', '_tm_is_current', '_tm_is_deleted', '_tm_row_hash', '_tm_run_id', '_tm_version_key']) {
      expect(create.sql).toContain(d.quoteIdent(c));
    }
  });

  it('types the row hash and version key by the plan\'s hash format, and refuses a target whose hash columns disagree', () => {
    const binary = { duckdb: 'BLOB', postgres: 'bytea', synapse: 'binary(16)', mssql: 'binary(16)' }[d.name];
    const text = { duckdb: 'VARCHAR', postgres: 'text', synapse: 'varchar(64)', mssql: 'varchar(64)' }[d.name];
    const create = (p: ReturnType<typeof plan>) => d.ensureTarget(p, []).find((s) => s.sql.includes('dim_account') && /CREATE TABLE/.test(s.sql))!.sql;
    const typed = (sql: string, types: string[]) =>
      ['_tm_row_hash', '_tm_run_id', '_tm_version_key'].forEach((c, i) => expect(sql).toContain(`${d.quoteIdent(c)} ${types[i]}`));
    typed(create(plan({ hashFormat: 'binary' })), [binary, text, binary]);
    typed(create(plan()), [text, text, text]);
    const scd = (hash: string) =>
      ['_tm_valid_from', '_tm_valid_to', '_tm_is_current', '_tm_is_deleted', '_tm_row_hash', '_tm_run_id', '_tm_version_key'].map((n) => ({ name: n, type: n === '_tm_row_hash' || n === '_tm_version_key' ? hash : 'x' }));
    const existing = (hash: string) => [...plan().columns.map((c) => ({ name: c.name, type: d.typeName(c.type) })), ...scd(hash)];
    // Same format: nothing to change; the other one: refused before any write, naming the fix.
    expect(() => d.ensureTarget(plan({ hashFormat: 'binary' }), existing(binary))).not.toThrow();
    expect(() => d.ensureTarget(plan(), existing(text))).not.toThrow();
    expect(() => d.ensureTarget(plan({ hashFormat: 'binary' }), existing(text))).toThrow(
      `target dw.dim_account._tm_row_hash is ${text}, but this run's changes hold 16-byte (hash rule 4) hashes: the pipeline's snapshot and its target disagree on the hash rule; restore the state the target was built with, or drop dw.dim_account and run --full to rebuild it`,
    );
    expect(() => d.ensureTarget(plan({ hashFormat: 'hex' }), existing(binary))).toThrow(`target dw.dim_account._tm_row_hash is ${binary}, but this run's changes hold hex-text (hash rule 1–3) hashes`);
  });

  it('fails a type change with table, column, old and new type, unless widening is allowed and safe', () => {
    const scd = ['_tm_valid_from', '_tm_valid_to', '_tm_is_current', '_tm_is_deleted', '_tm_row_hash', '_tm_run_id', '_tm_version_key'].map((n) => ({ name: n, type: 'x' }));
    const existing = [{ name: 'id', type: d.typeName({ kind: 'integer', bits: 64 }) }, ...scd];
    const narrowing = plan({ columns: [{ name: 'id', type: { kind: 'integer', bits: 32 } }] });
    const old = d.typeName({ kind: 'integer', bits: 64 }).toUpperCase();
    const neu = d.typeName({ kind: 'integer', bits: 32 }).toUpperCase();
    expect(() => d.ensureTarget(narrowing, existing)).toThrow(`type change in dw.dim_account.id: target has ${old}, source now gives ${neu}`);
    expect(() => d.ensureTarget({ ...narrowing, allowTypeWidening: true }, existing)).toThrow(/not a widening/);
    const textToInt = [{ name: 'id', type: d.typeName({ kind: 'text' }) }, ...scd];
    expect(() => d.ensureTarget(plan({ columns: [{ name: 'id', type: { kind: 'integer', bits: 32 } }] }), textToInt)).toThrow(/migrate the column, or set target.allowTypeWidening/);
  });

  it('adds a new source column nullable and leaves a dropped one in place', () => {
    const scd = ['_tm_valid_from', '_tm_valid_to', '_tm_is_current', '_tm_is_deleted', '_tm_row_hash', '_tm_run_id', '_tm_version_key'].map((n) => ({ name: n, type: 'x' }));
    const existing = [
      { name: 'id', type: d.typeName({ kind: 'integer', bits: 32 }) },
      { name: 'gone', type: d.typeName({ kind: 'text' }) },
      ...scd,
    ];
    const sts = d.ensureTarget(plan({ columns: [{ name: 'id', type: { kind: 'integer', bits: 32 } }, { name: 'tier', type: { kind: 'text' } }] }), existing);
    // The ledger's commit-protocol columns are ALTERed in too (IF NOT EXISTS); only the target's count here.
    const alters = sts.filter((s) => s.sql.startsWith('ALTER') && !s.sql.includes('_tm_ledger'));
    expect(alters).toHaveLength(1);
    expect(alters[0]!.sql).toContain(d.quoteIdent('tier'));
    expect(alters[0]!.sql).not.toMatch(/NOT NULL/);
    expect(sts.some((s) => s.sql.includes(d.quoteIdent('gone')))).toBe(false);
  });
});

describe('identifier length limits', () => {
  it.each(dialects.map((d) => [d.name, d] as const))('%s refuses a name over its limit instead of truncating it', (_n, d) => {
    const long = 'c'.repeat(d.capabilities.maxIdentifierLength + 1);
    expect(() => d.ensureTarget(plan({ columns: [{ name: long, type: { kind: 'text' } }] }), [])).toThrow(
      `identifier ${long} is longer than ${d.capabilities.maxIdentifierLength} bytes, the ${d.name} limit`,
    );
    const ok = 'c'.repeat(d.capabilities.maxIdentifierLength);
    expect(() => d.ensureTarget(plan({ columns: [{ name: ok, type: { kind: 'text' } }] }), [])).not.toThrow();
  });
});

import { describe, expect, it } from 'vitest';
import { pipelineSchema } from '../../../shared/config/schema.js';
import { synapseCreateTarget, synapseDialect } from '../../../shared/merge/synapse/dialect.js';
import nodeSqlParser from 'node-sql-parser';
import { dialects, plan } from './fixtures.js';

const EVIL = 'x]; drop table y; --';
const EVIL_DQ = 'x"; drop table y; --';

const pipeline = (over: Record<string, unknown>) => ({
  name: 'accounts',
  source: { connection: 'SRC', table: 'crm.accounts' },
  key: ['id'],
  target: { warehouse: 'DW', table: 'dw.dim_account' },
  ...over,
});

describe('identifiers from config', () => {
  it.each([
    ['key', pipeline({ key: [EVIL] }), 'key.0'],
    ['target.table', pipeline({ target: { warehouse: 'DW', table: `dw.${EVIL}` } }), 'target.table'],
    ['target.type1Columns', pipeline({ target: { warehouse: 'DW', table: 'dw.t', type1Columns: [EVIL] } }), 'target.type1Columns.0'],
    ['target.trackedColumns', pipeline({ target: { warehouse: 'DW', table: 'dw.t', trackedColumns: [EVIL_DQ] } }), 'target.trackedColumns.0'],
    ['validation.checksumColumns', pipeline({ validation: { checksumColumns: [EVIL] } }), 'validation.checksumColumns.0'],
  ])('a column named like an injection is refused in %s', (_field, input, path) => {
    const r = pipelineSchema.safeParse(input);
    expect(r.success).toBe(false);
    const issue = r.error!.issues.find((i) => i.path.join('.') === path);
    expect(issue?.message).toMatch(/safe identifier|letters, digits and _/);
  });
});

describe.each(dialects.map((d) => [d.name, d] as const))('%s quoting, were a bad name to get through', (_name, d) => {
  it('keeps the whole name inside one quoted identifier', () => {
    const quoted = d.quoteIdent(EVIL);
    const quotedDq = d.quoteIdent(EVIL_DQ);
    if (d.name === 'synapse' || d.name === 'mssql') {
      expect(quoted).toBe('[x]]; drop table y; --]');
      expect(quotedDq).toBe('[x"; drop table y; --]');
    } else {
      expect(quoted).toBe('"x]; drop table y; --"');
      expect(quotedDq).toBe('"x""; drop table y; --"');
    }
  });

  it('renders a merge whose only statement boundaries are its own', () => {
    const p = plan({ keys: [EVIL], columns: [{ name: EVIL, type: { kind: 'integer', bits: 32 } }, { name: EVIL_DQ, type: { kind: 'text' } }], type1Columns: [] });
    for (const st of d.mergeSteps(p)) {
      // Remove quoted identifiers and string literals; what remains must hold no statement break.
      const bare = st.sql
        .replace((d.name === 'synapse' || d.name === 'mssql') ? /\[(?:[^\]]|\]\])*\]/g : /"(?:[^"]|"")*"/g, 'I')
        .replace(/'(?:[^']|'')*'/g, 'L');
      expect(bare).not.toMatch(/;|--|drop/i);
    }
  });
});

describe('synapse quoting checked by the T-SQL parser', () => {
  // node-sql-parser does not implement `]]` inside [identifiers] (it stops at the first `]`),
  // so it can only show that the text never parses into a second statement.
  it('never yields a DROP statement from an evil column name', () => {
    const p = plan({ keys: [EVIL], columns: [{ name: EVIL, type: { kind: 'integer', bits: 32 } }], type1Columns: [] });
    const close = synapseDialect().mergeSteps(p)[0]!;
    let types: string[] = [];
    try {
      const ast = new nodeSqlParser.Parser().astify(close.sql, { database: 'TransactSQL' });
      types = (Array.isArray(ast) ? ast : [ast]).map((a) => String((a as { type?: unknown }).type));
    } catch {
      types = ['unparsed'];
    }
    expect(types).not.toContain('drop');
    expect(close.sql).toContain('[x]]; drop table y; --]');
  });
});

describe('synapse distribution', () => {
  it.each([
    ['hash', 'DISTRIBUTION = HASH([id])'],
    ['replicate', 'DISTRIBUTION = REPLICATE'],
    ['round_robin', 'DISTRIBUTION = ROUND_ROBIN'],
  ] as const)('%s', (dist, clause) => {
    const sql = synapseCreateTarget(plan(), dist);
    expect(sql).toContain(`WITH (${clause}, CLUSTERED COLUMNSTORE INDEX)`);
    expect(sql).toContain('PRIMARY KEY NONCLUSTERED ([_tm_version_key]) NOT ENFORCED');
  });
});

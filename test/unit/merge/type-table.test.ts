import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { logicalFromDuck } from '../../../shared/merge/plan.js';
import { dialects } from './fixtures.js';

/**
 * Issue #14 point 8 ("every row of the type tables"): the README's warehouse column table is
 * what the code builds. Each row's DuckDB / Parquet types go through logicalFromDuck and each
 * dialect's typeName; the table is parsed from the README itself, so a claim that drifts from
 * the code fails here.
 */
const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
const header = '| DuckDB / Parquet | duckdb warehouse | postgres warehouse | mssql warehouse | synapse warehouse |';

function tableRows(): string[][] {
  const lines = readme.split('\n');
  const at = lines.indexOf(header);
  expect(at, 'the README warehouse type table').toBeGreaterThan(0);
  const rows: string[][] = [];
  for (const line of lines.slice(at + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(line.split('|').slice(1, -1).map((c) => c.trim()));
  }
  return rows;
}

/** The backquoted names of a cell: `A`, `B` (p,s) … → ['A', 'B']. */
const codes = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);

describe('README warehouse type table', () => {
  const rows = tableRows();
  const name = (kind: string) => dialects.find((d) => d.name === kind)!;

  it('has every row, and each claim is what the dialects create', () => {
    expect(rows.length).toBe(19);
    for (const [raw, duck, pg, mssql, synapse] of rows) {
      for (const t of codes(raw!).map((x) => x.replace('(p,s)', '(12,3)'))) {
        const logical = logicalFromDuck(t);
        const sub = (cell: string) => codes(cell)[0]!.replace('(p,s)', '(12,3)');
        expect({ t, duck: name('duckdb').typeName(logical) }).toEqual({ t, duck: sub(duck!) });
        expect({ t, pg: name('postgres').typeName(logical) }).toEqual({ t, pg: sub(pg!) });
        expect({ t, synapse: name('synapse').typeName(logical), mssql: name('mssql').typeName(logical) }).toEqual({ t, synapse: sub(synapse!), mssql: sub(mssql!) });
      }
    }
  });

  it('lands TIME_NS, TIMETZ, structs and lists of unportable types as text, as the last row says', () => {
    for (const t of ['TIME_NS', 'TIME WITH TIME ZONE', 'STRUCT(a INTEGER)', 'INTERVAL', 'VARCHAR[][]', 'STRUCT(a INTEGER)[]', 'TIME[]', 'BLOB[]', 'JSON[]', 'INTERVAL[]']) {
      expect({ t, type: logicalFromDuck(t) }).toEqual({ t, type: { kind: 'text' } });
    }
  });

  it('a list of any other scalar of the table is a list of that row\'s type (the sentence after the table)', () => {
    const scalars = rows.flatMap(([raw]) => codes(raw!)).map((x) => x.replace('(p,s)', '(12,3)')).filter((t) => !t.endsWith('[]') && !['TIME', 'BLOB', 'JSON', 'VARCHAR'].includes(t) && logicalFromDuck(t).kind !== 'text');
    expect(scalars.length).toBeGreaterThan(15);
    for (const t of [...scalars, 'VARCHAR']) {
      const element = logicalFromDuck(t);
      const list = logicalFromDuck(`${t}[]`);
      expect({ t, list }).toEqual({ t, list: { kind: 'list', element } });
      expect({ t, duck: name('duckdb').typeName(list), pg: name('postgres').typeName(list), mssql: name('mssql').typeName(list), synapse: name('synapse').typeName(list) }).toEqual({
        t,
        duck: `${name('duckdb').typeName(element)}[]`,
        pg: `${name('postgres').typeName(element)}[]`,
        mssql: 'nvarchar(max)',
        synapse: 'nvarchar(4000)',
      });
    }
  });
});

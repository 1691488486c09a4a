import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuckSession } from '../../../shared/duckdb/session.js';
import { HASH_RULE, canonicalRowExpr, canonicalText, hashColumnOrder, hashFormatOf, rowHashExpr, versionKeyExpr, type HashRule, type TypedColumn } from '../../../shared/canonical/row-hash.js';

/**
 * The row hash of docs/design.md §7, evaluated by DuckDB exactly as the transform does. Changing any
 * expected text here means every stored `_tm_row_hash` changes and every row would open a new
 * version on the next run: such a change needs a migration, not a test update.
 */
let s: DuckSession;
beforeAll(async () => {
  s = await DuckSession.open(':memory:', { memoryLimit: '128MB', threads: 1, tempDir: '.tidemark/test-spill' });
  // A non-UTC session: canonical times must not depend on it.
  await s.run(`SET TimeZone = 'America/New_York'`);
});
afterAll(() => s.close());

async function text(cols: TypedColumn[], values: string, rule: HashRule = HASH_RULE): Promise<string> {
  const r = await s.one<{ t: string }>(`SELECT ${canonicalRowExpr(cols, undefined, rule)} AS t FROM (SELECT ${values}) AS x`);
  return r!.t;
}
/** The row hash as hex text, whatever the rule stores (rule 4: 16 bytes, shown as their hex). */
async function hash(cols: TypedColumn[], values: string, rule: HashRule = HASH_RULE): Promise<string> {
  const e = rowHashExpr(cols, undefined, rule);
  const r = await s.one<{ h: string }>(`SELECT ${hashFormatOf(rule) === 'binary' ? `lower(hex(${e}))` : e} AS h FROM (SELECT ${values}) AS x`);
  return r!.h;
}
async function one(type: string, literal: string, rule: HashRule = HASH_RULE): Promise<string> {
  const r = await s.one<{ t: string }>(`SELECT ${canonicalText({ name: 'v', type }, undefined, rule)} AS t FROM (SELECT CAST(${literal} AS ${type}) AS v) AS x`);
  return r!.t;
}

const AB: TypedColumn[] = [
  { name: 'a', type: 'VARCHAR' },
  { name: 'b', type: 'VARCHAR' },
];

describe('row hash: NULL and separators', () => {
  it("keeps NULL, '' and 'NULL' apart", async () => {
    const col: TypedColumn[] = [{ name: 'a', type: 'VARCHAR' }];
    expect(await text(col, `CAST(NULL AS VARCHAR) AS a`)).toBe('');
    expect(await text(col, `'' AS a`)).toBe('a=0:');
    expect(await text(col, `'NULL' AS a`)).toBe('a=4:NULL');
    const hashes = new Set([await hash(col, `CAST(NULL AS VARCHAR) AS a`), await hash(col, `'' AS a`), await hash(col, `'NULL' AS a`)]);
    expect(hashes.size).toBe(3);
  });

  it("tells ('a','bc') from ('ab','c'), also with the separator inside a value", async () => {
    expect(await text(AB, `'a' AS a, 'bc' AS b`)).toBe('a=1:a|b=2:bc');
    expect(await text(AB, `'ab' AS a, 'c' AS b`)).toBe('a=2:ab|b=1:c');
    expect(await hash(AB, `'a' AS a, 'bc' AS b`)).not.toBe(await hash(AB, `'ab' AS a, 'c' AS b`));
    expect(await hash(AB, `'a|b=1:c' AS a, CAST(NULL AS VARCHAR) AS b`)).not.toBe(await hash(AB, `'a' AS a, 'c' AS b`));
  });

  it('a NULL column leaves the text as if the column were absent (adding a nullable column changes no hash)', async () => {
    expect(await text(AB, `'x' AS a, CAST(NULL AS VARCHAR) AS b`)).toBe(await text([AB[0]!], `'x' AS a`));
  });
});

describe('row hash: canonical text per type', () => {
  it.each([
    ['FLOAT', '0.1', '0.1'],
    ['DOUBLE', '0.1', '0.1'],
    ['DOUBLE', '3', '3.0'],
    ['DOUBLE', '1e20', '1e+20'],
    ['DOUBLE', '-2.5e-7', '-2.5e-07'],
    ['DECIMAL(10,2)', '1.5', '1.5'],
    ['DECIMAL(18,4)', '1.5', '1.5'],
    ['DECIMAL(18,4)', '-0.1', '-0.1'],
    ['DECIMAL(12,2)', '2', '2'],
    ['DECIMAL(12,2)', '-0.00', '0'],
    ['DECIMAL(12,2)', '100', '100'],
    ['DECIMAL(18,4)', '-100.0500', '-100.05'],
    ['DOUBLE', "'-0.0'", '0.0'],
    ['DOUBLE', '0.0', '0.0'],
    ['DECIMAL(38,0)', '12345678901234567890123456789', '12345678901234567890123456789'],
    ['HUGEINT', '170141183460469231731687303715884105727', '170141183460469231731687303715884105727'],
    ['INTEGER', '-42', '-42'],
    ['BOOLEAN', 'true', 'true'],
    ['BOOLEAN', 'false', 'false'],
    ['DATE', "'2026-01-02'", '2026-01-02'],
    ['TIMESTAMP', "'2026-01-02 03:04:05.123456'", '2026-01-02T03:04:05.123456Z'],
    ['TIMESTAMP', "'2026-01-02 03:04:05'", '2026-01-02T03:04:05.000000Z'],
    ['TIMESTAMP_MS', "'2026-01-02 03:04:05.123'", '2026-01-02T03:04:05.123000Z'],
    ['TIMESTAMPTZ', "'2026-01-02 03:04:05+02'", '2026-01-02T01:04:05.000000Z'],
    ['TIMESTAMPTZ', "'2026-07-01 23:30:00-04:30'", '2026-07-02T04:00:00.000000Z'],
    ['TIME', "'13:14:15.5'", '13:14:15.5'],
    ['BLOB', "'\\xAB\\x01z'", 'ab017a'],
    ['UUID', "'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'", 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'],
    ['VARCHAR', "'Ünïcode ✓'", 'Ünïcode ✓'],
  ])('%s %s → %s', async (type, literal, expected) => {
    expect(await one(type, literal)).toBe(expected);
  });

  // Hash rule 1 (targets created before #14) keeps its text, so their hashes stay valid.
  it.each([
    ['DECIMAL(10,2)', '1.5', '1.50'],
    ['DECIMAL(18,4)', '-0.1', '-0.1000'],
    ['DOUBLE', "'-0.0'", '-0.0'],
  ])('rule 1: %s %s → %s', async (type, literal, expected) => {
    expect(await one(type, literal, 1)).toBe(expected);
  });

  it('counts characters, not bytes, in the length prefix', async () => {
    expect(await text([{ name: 'a', type: 'VARCHAR' }], `'✓é' AS a`)).toBe('a=2:✓é');
  });
});

describe('row hash: column order', () => {
  const cols: TypedColumn[] = [
    { name: 'zeta', type: 'VARCHAR' },
    { name: 'alpha', type: 'VARCHAR' },
    { name: 'id', type: 'INTEGER' },
  ];
  it("'all' sorts by name, so reordering the transform's SELECT changes nothing; keys excluded", () => {
    expect(hashColumnOrder('all', cols, new Set(['id'])).map((c) => c.name)).toEqual(['alpha', 'zeta']);
    expect(hashColumnOrder('all', [...cols].reverse(), new Set(['id'])).map((c) => c.name)).toEqual(['alpha', 'zeta']);
  });
  it('a trackedColumns list is taken in its own order, and that order is part of the hash', async () => {
    const za = hashColumnOrder(['zeta', 'alpha'], cols, new Set());
    expect(za.map((c) => c.name)).toEqual(['zeta', 'alpha']);
    const az = hashColumnOrder(['alpha', 'zeta'], cols, new Set());
    const values = `'1' AS zeta, '2' AS alpha`;
    expect(await hash(za, values)).not.toBe(await hash(az, values));
  });
  it('names a tracked column the transform does not output', () => {
    expect(() => hashColumnOrder(['nope'], cols, new Set())).toThrow('tracked column nope is not in the transform\'s output (columns: zeta, alpha, id)');
  });
});

describe('row hash: golden value', () => {
  it('is pinned for a fixed row (rule 1, the hashes of targets created before #14)', async () => {
    const row: TypedColumn[] = [
      { name: 'amount', type: 'DECIMAL(12,2)' },
      { name: 'active', type: 'BOOLEAN' },
      { name: 'born', type: 'DATE' },
      { name: 'email', type: 'VARCHAR' },
      { name: 'nick', type: 'VARCHAR' },
      { name: 'score', type: 'DOUBLE' },
      { name: 'seen', type: 'TIMESTAMP WITH TIME ZONE' },
      { name: 'photo', type: 'BLOB' },
    ];
    const values = `CAST(1234.5 AS DECIMAL(12,2)) AS amount, true AS active, DATE '1990-05-17' AS born, 'ann@x.com' AS email,
      CAST(NULL AS VARCHAR) AS nick, CAST(0.1 AS DOUBLE) AS score, TIMESTAMPTZ '2026-01-02 03:04:05.5+01' AS seen, '\\x00\\xFF'::BLOB AS photo`;
    expect(await text(row, values, 1)).toBe(
      'amount=7:1234.50|active=4:true|born=10:1990-05-17|email=9:ann@x.com|score=3:0.1|seen=27:2026-01-02T02:04:05.500000Z|photo=4:00ff',
    );
    // md5 of the text above, also checked outside DuckDB (node:crypto) below.
    expect(await hash(row, values, 1)).toBe('7d76c7ec61c2450bd327090f4e87397f');
    expect(createHash('md5').update(await text(row, values, 1)).digest('hex')).toBe('7d76c7ec61c2450bd327090f4e87397f');
    // Rule 2 on: the decimal's scale is not part of its text.
    const t2 = 'amount=6:1234.5|active=4:true|born=10:1990-05-17|email=9:ann@x.com|score=3:0.1|seen=27:2026-01-02T02:04:05.500000Z|photo=4:00ff';
    expect(await text(row, values)).toBe(t2);
    expect(await hash(row, values)).toBe(createHash('md5').update(t2).digest('hex'));
  });
});

describe('row hash: lists (hash rule 3)', () => {
  it.each([
    ['VARCHAR[]', `['a', 'b']`, '["a","b"]'],
    ['VARCHAR[]', `[]`, '[]'],
    ['VARCHAR[]', `[NULL, '', 'NULL']`, '[null,"","NULL"]'],
    ['VARCHAR[]', `['it''s "q"', 'x,y', '[b]', '{c}', 'back\\slash', 'é✓😀']`, '["it\'s \\"q\\"","x,y","[b]","{c}","back\\\\slash","é✓😀"]'],
    ['INTEGER[]', `[1, NULL, -3]`, '[1,null,-3]'],
    ['DECIMAL(10,2)[]', `[1.50, 2, -0.05]`, '[1.5,2,-0.05]'],
    ['BOOLEAN[]', `[true, false, NULL]`, '[true,false,null]'],
    ['DOUBLE[]', `[3.0, -0.0, 0.1]`, '["3.0","0.0","0.1"]'],
    ['DATE[]', `['2026-01-02']`, '["2026-01-02"]'],
    ['TIMESTAMPTZ[]', `['2026-07-01 23:30:00-04:30']`, '["2026-07-02T04:00:00.000000Z"]'],
  ])('%s %s → %s', async (type, literal, expected) => {
    expect(await one(type, literal)).toBe(expected);
  });

  it('a NULL list is left out like any NULL column; the empty list is not', async () => {
    const cols: TypedColumn[] = [{ name: 'tags', type: 'VARCHAR[]' }];
    expect(await text(cols, `CAST(NULL AS VARCHAR[]) AS tags`)).toBe('');
    expect(await text(cols, `CAST([] AS VARCHAR[]) AS tags`)).toBe('tags=2:[]');
  });

  it('rule 2 (targets created before lists landed as lists) keeps DuckDB list text', async () => {
    expect(await one('VARCHAR[]', `['a', 'b, c']`, 2)).toBe("[a, 'b, c']");
  });

  it('is pinned for a fixed row, and equals md5 of the JSON text outside DuckDB', async () => {
    const row: TypedColumn[] = [
      { name: 'tags', type: 'VARCHAR[]' },
      { name: 'n', type: 'INTEGER[]' },
    ];
    const values = `['a"b', NULL]::VARCHAR[] AS tags, [1, 2]::INTEGER[] AS n`;
    expect(await text(row, values)).toBe('tags=13:["a\\"b",null]|n=5:[1,2]');
    expect(await hash(row, values)).toBe(createHash('md5').update('tags=13:["a\\"b",null]|n=5:[1,2]').digest('hex'));
  });
});

describe('row hash: storage (hash rule 4)', () => {
  const row: TypedColumn[] = [
    { name: 'id', type: 'INTEGER' },
    { name: 'name', type: 'VARCHAR' },
  ];
  const values = `7 AS id, 'Ann' AS name`;

  it('rule 4 stores the 16 md5 bytes of rule 3\'s text; rules 1–3 the 32 hex characters', async () => {
    expect(HASH_RULE).toBe(4);
    const pinned = createHash('md5').update('id=1:7|name=3:Ann').digest();
    const r = await s.one<{ t: string; n: bigint; h: string; h3: string; t3: string }>(
      `SELECT typeof(${rowHashExpr(row, undefined, 4)}) AS t, octet_length(${rowHashExpr(row, undefined, 4)}) AS n, lower(hex(${rowHashExpr(row, undefined, 4)})) AS h,
        ${rowHashExpr(row, undefined, 3)} AS h3, typeof(${rowHashExpr(row, undefined, 3)}) AS t3 FROM (SELECT ${values}) AS x`,
    );
    expect(r).toEqual({ t: 'BLOB', n: 16n, h: pinned.toString('hex'), h3: pinned.toString('hex'), t3: 'VARCHAR' });
    expect(await text(row, values, 4)).toBe(await text(row, values, 3));
  });

  it('the version key keeps rule 1\'s text under every rule; rule 4 stores its bytes', async () => {
    const key: TypedColumn[] = [{ name: 'id', type: 'INTEGER' }];
    const at = `TIMESTAMP '2026-01-02 03:04:05'`;
    const expected = createHash('md5').update('id=1:7@2026-01-02T03:04:05.000000Z').digest('hex');
    const r = await s.one<{ hex: string; bin: string; t: string }>(
      `SELECT ${versionKeyExpr(key, at, undefined, 3)} AS hex, lower(hex(${versionKeyExpr(key, at, undefined, 4)})) AS bin, typeof(${versionKeyExpr(key, at, undefined, 4)}) AS t FROM (SELECT 7 AS id) AS x`,
    );
    expect(r).toEqual({ hex: expected, bin: expected, t: 'BLOB' });
  });
});

import { quoteDuck } from '../duckdb/session.js';

/**
 * The row hash (docs/design.md §7), persisted in `_tm_row_hash`. Changing anything here changes every
 * stored hash and would open a new version for every row: a golden test pins it.
 *
 * Canonical text of one column value:
 *   NULL              → the column is left out entirely (so adding a nullable column, or a
 *                       column dropped from the source, does not change existing hashes)
 *   otherwise         → `<name>=<length>:<text>`; the length prefix makes the encoding
 *                       unambiguous ('a','bc' ≠ 'ab','c'), and '' ≠ 'NULL' ≠ NULL
 * Columns are joined with `|` in the configured order (`trackedColumns` list order; for
 * `all`, sorted by name so that reordering the transform's SELECT changes nothing).
 *
 * Canonical text per type:
 *   integers, HUGEINT       decimal digits
 *   DECIMAL(p,s)            the number, not its declared scale: trailing fractional zeros and
 *                           a bare point dropped ('1.50' and '1.5000' → '1.5', '2.00' → '2'),
 *                           so widening a column's scale changes no hash
 *   FLOAT / DOUBLE          shortest round-trip text ('0.1', '1e+20', '3.0'), cast from the
 *                           declared type, never via a wider float (no 0.10000000149 noise);
 *                           -0.0 is 0.0
 *   BOOLEAN                 'true' / 'false'
 *   DATE                    YYYY-MM-DD
 *   TIMESTAMP (naive)       taken as UTC: YYYY-MM-DDTHH:MM:SS.ffffffZ
 *   TIMESTAMPTZ             converted to UTC, same form
 *   TIME                    HH:MM:SS[.ffffff]
 *   BLOB                    lowercase hex
 *   UUID                    lowercase 8-4-4-4-12
 *   list of scalars         hash rule 3: JSON text, `[` elements `]` joined by `,` with no
 *                           spaces; an element is `null`, or its canonical text above, bare
 *                           for integers, decimals and booleans (`[1,2.5,true]`), else as a
 *                           JSON string (`["a","it's \"q\"",null]`, floats too: `["3.0"]`,
 *                           as inf / nan are no JSON numbers); `[]` is the empty list.
 *                           Rules 1 and 2: DuckDB's VARCHAR cast (`[a, b]`), and the transform
 *                           lands the list as that text (run-transform.ts)
 *   anything else           DuckDB's VARCHAR cast (structs, JSON, intervals, nested lists)
 */
/**
 * Hash rules, recorded per target in its snapshot manifest (`hashRule`; absent = 1):
 *   1  decimals kept their declared scale, -0.0 was not 0.0, and `trackedColumns: all` also
 *      tracked the change-detection column
 *   2  the number rules above, and `all` leaves out the change-detection column
 *   3  lists of scalars are lists in the warehouse, hashed as their JSON text (above); under
 *      1 and 2 they stay DuckDB's list text, in the hash and in the warehouse column
 *   4  rule 3's canonical text; the row hash, the type 1 hash and the version key are the 16
 *      md5 bytes (DuckDB BLOB, PostgreSQL bytea, T-SQL binary(16), what HASHBYTES('MD5', …)
 *      returns) instead of 32 hex characters: half the bytes per hash in Parquet and in the
 *      warehouse. Under 1–3 they stay lowercase hex text
 * A target keeps the rule it was created under, so an upgrade opens no versions; a first load
 * (or a rebuild) takes the current rule. Checksums and samples are compared fresh each run,
 * so they always use the current rule.
 */
export type HashRule = 1 | 2 | 3 | 4;
export const HASH_RULE: HashRule = 4;

/** How a rule stores its hashes: 16 bytes from rule 4 on, 32 hex characters before. */
export type HashFormat = 'hex' | 'binary';
export const hashFormatOf = (rule: HashRule): HashFormat => (rule >= 4 ? 'binary' : 'hex');

/** The rule a first load (a new target) takes: the current one, or rule 3 for `target.hashFormat: hex`. */
export const firstLoadHashRule = (format: HashFormat): HashRule => (format === 'hex' ? 3 : HASH_RULE);

/** DuckDB type of a stored hash under the format (a NULL hash is cast to it). */
export const hashDuckType = (format: HashFormat): string => (format === 'binary' ? 'BLOB' : 'VARCHAR');

/** md5 of a text expression, as the rule stores it. Never md5_number: a HUGEINT reaches Parquet as a lossy DOUBLE. */
export function digestExpr(text: string, rule: HashRule): string {
  return hashFormatOf(rule) === 'binary' ? `unhex(md5(${text}))` : `md5(${text})`;
}

/** The element type of a list type that hash rule 3 hashes as JSON (`VARCHAR[]` → `VARCHAR`). */
export function listElementType(type: string): string | undefined {
  const m = /^(.+)\[\]$/.exec(type.trim());
  if (!m) return undefined;
  const e = m[1]!.trim().toUpperCase();
  const scalar =
    /^(VARCHAR(\(\d+\))?|BOOLEAN|U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)|DECIMAL\(\d+,\s*\d+\)|FLOAT|DOUBLE|REAL|DATE|UUID|TIMESTAMP(_NS|_MS|_S)?|TIMESTAMPTZ|TIMESTAMP WITH TIME ZONE)$/;
  return scalar.test(e) ? e : undefined;
}

/** Element types written bare in a list's JSON text: their canonical text is a JSON literal. */
export function isBareJsonElement(type: string): boolean {
  return /^(BOOLEAN|U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)|DECIMAL\(\d+,\s*\d+\))$/.test(type.toUpperCase());
}

export interface TypedColumn {
  name: string;
  type: string;
}

const TS_FORMAT = "'%Y-%m-%dT%H:%M:%S.%fZ'";

export function canonicalText(column: TypedColumn, qualifier?: string, rule: HashRule = HASH_RULE): string {
  return valueText(qualified(column.name, qualifier), column.type, rule);
}

function valueText(c: string, type: string, rule: HashRule): string {
  const t = type.toUpperCase();
  const element = rule >= 3 ? listElementType(t) : undefined;
  if (element !== undefined) {
    const text = valueText('_tm_e', element, rule);
    const json = isBareJsonElement(element) ? text : `CAST(to_json(${text}) AS VARCHAR)`;
    return `'[' || array_to_string(list_transform(${c}, _tm_e -> CASE WHEN _tm_e IS NULL THEN 'null' ELSE ${json} END), ',') || ']'`;
  }
  if (rule >= 2 && t.startsWith('DECIMAL')) return canonicalNumberText(`CAST(${c} AS VARCHAR)`);
  if (rule >= 2 && (t === 'DOUBLE' || t === 'FLOAT' || t === 'REAL')) return `CASE WHEN ${c} = 0 THEN '0.0' ELSE CAST(${c} AS VARCHAR) END`;
  if (t === 'VARCHAR' || t.startsWith('VARCHAR(')) return c;
  if (t === 'BOOLEAN') return `CASE WHEN ${c} THEN 'true' ELSE 'false' END`;
  if (t === 'DATE') return `strftime(${c}, '%Y-%m-%d')`;
  if (t === 'TIMESTAMP WITH TIME ZONE' || t === 'TIMESTAMPTZ') return `strftime(timezone('UTC', ${c}), ${TS_FORMAT})`;
  if (t.startsWith('TIMESTAMP')) return `strftime(CAST(${c} AS TIMESTAMP), ${TS_FORMAT})`;
  if (t === 'BLOB') return `lower(hex(${c}))`;
  if (t === 'UUID') return `lower(CAST(${c} AS VARCHAR))`;
  return `CAST(${c} AS VARCHAR)`;
}

/**
 * Decimal text without its scale: trailing fractional zeros, then a bare point, are dropped.
 * DuckDB and PostgreSQL share this SQL (rtrim, strpos); it serves the row hash, the checksum
 * and the sample alike.
 */
export function canonicalNumberText(text: string): string {
  return `CASE WHEN strpos(${text}, '.') > 0 THEN rtrim(rtrim(${text}, '0'), '.') ELSE ${text} END`;
}

function qualified(name: string, qualifier?: string): string {
  return qualifier ? `${qualifier}.${quoteDuck(name)}` : quoteDuck(name);
}

function encoded(column: TypedColumn, qualifier?: string, rule: HashRule = HASH_RULE): string {
  const text = canonicalText(column, qualifier, rule);
  const tag = column.name.replace(/'/g, "''");
  return `CASE WHEN ${qualified(column.name, qualifier)} IS NULL THEN NULL ELSE '${tag}=' || CAST(length(${text}) AS VARCHAR) || ':' || ${text} END`;
}

/** SQL text (DuckDB) of the canonical row text; concat_ws skips NULLs, which is the point. */
export function canonicalRowExpr(columns: readonly TypedColumn[], qualifier?: string, rule: HashRule = HASH_RULE): string {
  if (columns.length === 0) return `''`;
  return `concat_ws('|', ${columns.map((c) => encoded(c, qualifier, rule)).join(', ')})`;
}

/** md5 (bytes from rule 4, hex before): stable, documented, and available as HASHBYTES('MD5') / md5() on the warehouses. */
export function rowHashExpr(columns: readonly TypedColumn[], qualifier?: string, rule: HashRule = HASH_RULE): string {
  return digestExpr(canonicalRowExpr(columns, qualifier, rule), rule);
}

/** Orders tracked columns as the hash expects them. */
export function hashColumnOrder(tracked: 'all' | readonly string[], available: readonly TypedColumn[], exclude: ReadonlySet<string>): TypedColumn[] {
  if (tracked === 'all') {
    return available.filter((c) => !exclude.has(c.name)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
  const byName = new Map(available.map((c) => [c.name, c]));
  return tracked.map((name) => {
    const c = byName.get(name);
    if (!c) throw new Error(`tracked column ${name} is not in the transform's output (columns: ${available.map((a) => a.name).join(', ')})`);
    return c;
  });
}

/**
 * `_tm_version_key`: deterministic surrogate of key + valid_from, so a retried merge writes
 * the same key and a version can be addressed without the warehouse generating identities.
 */
export function versionKeyExpr(keyColumns: readonly TypedColumn[], validFromSql: string, qualifier: string | undefined, rule: HashRule): string {
  // Hash rule 1's text, always: a version key names rows already written, and must not change.
  // Only its storage follows the target's rule (bytes from rule 4 on).
  return digestExpr(`${canonicalRowExpr(keyColumns, qualifier, 1)} || '@' || strftime(CAST(${validFromSql} AS TIMESTAMP), ${TS_FORMAT})`, rule);
}

/**
 * Order-independent checksum `count:sum` over the canonical text of the given columns: the
 * first 60 bits of md5 per row, summed. Every warehouse dialect computes the same figure.
 */
export function checksumSql(columns: readonly TypedColumn[], relation: string): string {
  return `SELECT count(*)::BIGINT AS n, coalesce(sum(('0x' || substr(md5(${canonicalRowExpr(columns)}), 1, 15))::BIGINT), 0)::HUGEINT AS s FROM ${relation}`;
}

import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { DuckSession, type DuckSettings } from '../shared/duckdb/session.js';

/** The generated CRM-like table: schema-qualified so the pipeline reads `crm.accounts`. */
export const SOURCE_TABLE = 'crm.accounts';
export const KEY = 'account_id';
export const CHANGE_COLUMN = 'modified_at';

/**
 * 12 columns: integers, text, decimal, boolean, timestamp, date and a nullable text. Every value
 * is a hash of (row id, seed), so a seed gives the same table on every machine.
 */
export async function generateSource(file: string, rows: number, seed: number, at: string, duck: DuckSettings): Promise<void> {
  rmSync(file, { force: true });
  rmSync(`${file}.wal`, { force: true });
  mkdirSync(dirname(file), { recursive: true });
  const s = await DuckSession.open(file, duck);
  try {
    await s.run(`SET TimeZone = 'UTC'`);
    await s.run('CREATE SCHEMA crm');
    await s.run(
      `CREATE TABLE crm.accounts AS
SELECT i AS account_id,
  CAST(hash(i, $3, 'no') % 1000000 AS INTEGER) AS account_no,
  'Account ' || i AS name,
  'a' || i || '@example' || CAST(hash(i, $3, 'dom') % 97 AS BIGINT) || '.com' AS email,
  ['Oslo','Rome','Lima','Kyiv','Austin','Lagos','Osaka','Quito','Perth','Porto'][1 + CAST(hash(i, $3, 'city') % 10 AS BIGINT)] AS city,
  ['SMB','Mid-Market','Enterprise'][1 + CAST(hash(i, $3, 'seg') % 3 AS BIGINT)] AS segment,
  CAST(CAST(hash(i, $3, 'rev') % 100000000 AS BIGINT) / 100.0 AS DECIMAL(18,2)) AS revenue,
  CAST(hash(i, $3, 'emp') % 50000 AS INTEGER) AS employees,
  hash(i, $3, 'act') % 10 <> 0 AS is_active,
  DATE '2015-01-01' + CAST(hash(i, $3, 'created') % 3000 AS INTEGER) AS created_on,
  CAST($1 AS TIMESTAMP) - to_seconds(CAST(hash(i, $3, 'mod') % 2592000 AS BIGINT)) AS modified_at,
  CASE WHEN hash(i, $3, 'nt') % 3 = 0 THEN NULL ELSE 'note ' || CAST(hash(i, $3, 'nt') % 100000 AS BIGINT) END AS notes
FROM range(1, $2 + 1) t(i)`,
      [at, rows, seed],
    );
  } finally {
    await s.close();
  }
}

export interface ChangeMix {
  updated: number;
  touched: number;
  deleted: number;
  inserted: number;
}

/**
 * How `changes` rows split. With `deletes`, a tenth are hard deletes; the bench's pipeline
 * reads incrementally (timestamp mode), which by design does not see hard deletes (docs/design.md §6)
 * and whose exact row-count validation then fails, so the default mix has none: 60 % real
 * updates, 20 % touched-but-unchanged, 20 % new keys.
 */
export function changeMix(changes: number, deletes = false): ChangeMix {
  const updated = Math.round(changes * (deletes ? 0.5 : 0.6));
  const touched = Math.round(changes * 0.2);
  const deleted = deletes ? Math.round(changes * 0.1) : 0;
  return { updated, touched, deleted, inserted: changes - updated - touched - deleted };
}

/**
 * Applies one round of changes to the source at time `at`. Which rows change is a hash of the
 * key and the round, so the changes scatter over the whole table (every row group), as a day
 * of CRM activity does, and the kinds of change never overlap.
 */
export async function applyChanges(
  file: string,
  round: number,
  mix: ChangeMix,
  at: string,
  duck: DuckSettings,
): Promise<ChangeMix> {
  const s = await DuckSession.open(file, duck);
  try {
    await s.run(`SET TimeZone = 'UTC'`);
    const r = await s.one<{ n: bigint; maxId: bigint }>(`SELECT count(*)::BIGINT AS n, max(account_id)::BIGINT AS "maxId" FROM crm.accounts`);
    const n = Number(r?.n ?? 0);
    const maxId = Number(r?.maxId ?? 0);
    // A bucket in [0, n) per row; the kinds take disjoint bucket ranges, so counts are close to the mix.
    const bucket = `CAST(hash(account_id, ${round}::BIGINT, 'round') % ${n} AS BIGINT)`;
    const u = mix.updated;
    const t = u + mix.touched;
    const d = t + mix.deleted;
    await s.run('BEGIN TRANSACTION');
    await s.run(
      `UPDATE crm.accounts SET city = 'Bergen', revenue = revenue + 1, notes = 'changed in round ' || ${round}, modified_at = CAST($1 AS TIMESTAMP) WHERE ${bucket} < ${u}`,
      [at],
    );
    await s.run(`UPDATE crm.accounts SET modified_at = CAST($1 AS TIMESTAMP) WHERE ${bucket} >= ${u} AND ${bucket} < ${t}`, [at]);
    await s.run(`DELETE FROM crm.accounts WHERE ${bucket} >= ${t} AND ${bucket} < ${d}`);
    await s.run(
      `INSERT INTO crm.accounts SELECT i, 7, 'New account ' || i, 'new' || i || '@example.com', 'Oslo', 'SMB', 1000.00, 10, true, DATE '2026-11-24', CAST($1 AS TIMESTAMP), NULL
FROM range($2, $3) t(i)`,
      [at, maxId + 1, maxId + 1 + mix.inserted],
    );
    await s.run('COMMIT');
    // Report what the source really saw (hash buckets give close, not exact, counts).
    const seen = await s.one<{ updated: bigint; touched: bigint }>(
      `SELECT count(*) FILTER (WHERE notes = 'changed in round ' || ${round})::BIGINT AS updated,
  count(*) FILTER (WHERE modified_at = CAST($1 AS TIMESTAMP) AND account_id <= ${maxId} AND notes IS DISTINCT FROM 'changed in round ' || ${round})::BIGINT AS touched
FROM crm.accounts`,
      [at],
    );
    const after = Number((await s.one<{ n: bigint }>('SELECT count(*)::BIGINT AS n FROM crm.accounts'))?.n ?? 0);
    return {
      updated: Number(seen?.updated ?? 0),
      touched: Number(seen?.touched ?? 0),
      inserted: mix.inserted,
      deleted: n + mix.inserted - after,
    };
  } finally {
    await s.close();
  }
}

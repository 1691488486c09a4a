import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { DuckSession, type DuckSettings } from '../duckdb/session.js';

/** A new, empty DuckDB file (any old one and its WAL removed), in UTC: where generated sources start. */
export async function freshDuckFile(file: string, duck: DuckSettings): Promise<DuckSession> {
  rmSync(file, { force: true });
  rmSync(`${file}.wal`, { force: true });
  mkdirSync(dirname(file), { recursive: true });
  const s = await DuckSession.open(file, duck);
  await s.run(`SET TimeZone = 'UTC'`);
  return s;
}

export interface DemoSize {
  accounts: number;
  contacts: number;
  opportunities: number;
}

export const DEFAULT_DEMO_SIZE: DemoSize = { accounts: 100_000, contacts: 200_000, opportunities: 150_000 };

/**
 * Generates the CRM demo source (docs/design.md §13) entirely in DuckDB SQL: deterministic (hash-based
 * pseudo-randomness, no RNG state), so the demo prints the same figures on every machine.
 */
export async function generateDemoSource(file: string, size: DemoSize, duck: DuckSettings, at: string): Promise<void> {
  const s = await freshDuckFile(file, duck);
  try {
    await s.run('CREATE SCHEMA crm');
    await s.run(`CREATE TABLE crm.accounts AS
SELECT i AS AccountId,
  'Account ' || i AS Name,
  'contact' || i || '@example' || (i % 97) || '.com' AS Email,
  ['Oslo','Rome','Lima','Kyiv','Austin','Lagos','Osaka','Quito','Perth','Porto'][1 + CAST(hash(i, 'city') % 10 AS BIGINT)] AS City,
  ['NO','IT','PE','UA','US','NG','JP','EC','AU','PT'][1 + CAST(hash(i, 'city') % 10 AS BIGINT)] AS Country,
  ['SMB','Mid-Market','Enterprise'][1 + CAST(hash(i, 'seg') % 3 AS BIGINT)] AS Segment,
  CAST((CAST(hash(i, 'rev') % 100000000 AS BIGINT)) / 100.0 AS DECIMAL(18,2)) AS AnnualRevenue,
  CAST(hash(i, 'act') % 10 AS BIGINT) <> 0 AS IsActive,
  DATE '2015-01-01' + CAST(CAST(hash(i, 'created') % 3000 AS BIGINT) AS INTEGER) AS CreatedAt,
  CAST($1 AS TIMESTAMPTZ) - to_seconds(CAST(hash(i, 'mod') % 2592000 AS BIGINT)) AS ModifiedAt
FROM range(1, $2 + 1) t(i)`, [at, size.accounts]);
    await s.run(`CREATE TABLE crm.contacts AS
SELECT i AS ContactId,
  1 + CAST(hash(i, 'acct') % $3 AS BIGINT) AS AccountId,
  ['Ada','Bo','Cai','Dina','Eli','Fay','Gus','Hana'][1 + CAST(hash(i, 'fn') % 8 AS BIGINT)] AS FirstName,
  ['Berg','Rossi','Quispe','Koval','Smith','Okafor','Sato','Silva'][1 + CAST(hash(i, 'ln') % 8 AS BIGINT)] AS LastName,
  'c' || i || '@mail.example' AS Email,
  CASE WHEN CAST(hash(i, 'ph') % 5 AS BIGINT) = 0 THEN NULL ELSE '+47 ' || (10000000 + CAST(hash(i, 'ph') % 89999999 AS BIGINT)) END AS Phone,
  CAST($1 AS TIMESTAMPTZ) - to_seconds(CAST(hash(i, 'mod') % 2592000 AS BIGINT)) AS ModifiedAt
FROM range(1, $2 + 1) t(i)`, [at, size.contacts, size.accounts]);
    await s.run(`CREATE TABLE crm.opportunities AS
SELECT i AS OpportunityId,
  1 + CAST(hash(i, 'acct') % $3 AS BIGINT) AS AccountId,
  ['Prospect','Qualify','Propose','Negotiate','Won','Lost'][1 + CAST(hash(i, 'stage') % 6 AS BIGINT)] AS Stage,
  CAST((CAST(hash(i, 'amt') % 5000000 AS BIGINT)) / 100.0 AS DECIMAL(14,2)) AS Amount,
  DATE '2026-01-01' + CAST(CAST(hash(i, 'close') % 365 AS BIGINT) AS INTEGER) AS CloseDate,
  (CAST(hash(i, 'p') % 101 AS BIGINT)) / 100.0 AS Probability,
  CAST($1 AS TIMESTAMPTZ) - to_seconds(CAST(hash(i, 'mod') % 2592000 AS BIGINT)) AS ModifiedAt
FROM range(1, $2 + 1) t(i)`, [at, size.opportunities, size.accounts]);
  } finally {
    await s.close();
  }
}

/**
 * `updated` counts the rows an UPDATE wrote; `alreadyNew` of them had the new values already
 * (the generator gave them the same city / phone / stage), so for the pipeline they are no change.
 */
export interface DayOfChanges {
  accounts: { updated: number; alreadyNew: number; touched: number; deleted: number; inserted: number };
  contacts: { updated: number; alreadyNew: number; touched: number; inserted: number };
  opportunities: { updated: number; alreadyNew: number; touched: number; deleted: number; inserted: number };
}

/**
 * A day of CRM activity: real updates, rows touched without a change (ModifiedAt bumped, data
 * the same), deletes and inserts. Returns what it did so the demo can show the pipeline saw it.
 */
export async function simulateDay(file: string, size: DemoSize, duck: DuckSettings, at: string): Promise<DayOfChanges> {
  const s = await DuckSession.open(file, duck);
  const pct = (n: number, p: number) => Math.max(1, Math.floor((n * p) / 100));
  try {
    await s.run(`SET TimeZone = 'UTC'`);
    const count = async (sql: string, params: readonly number[]) => Number((await s.one<{ n: bigint }>(sql, params))?.n ?? 0);
    const a = { updated: pct(size.accounts, 2), alreadyNew: 0, touched: pct(size.accounts, 1), deleted: pct(size.accounts, 0.3), inserted: pct(size.accounts, 0.5) };
    // Disjoint id ranges per kind of change keep the expected counts exact.
    a.alreadyNew = await count(`SELECT count(*) AS n FROM crm.accounts WHERE AccountId <= $1 AND City = 'Bergen' AND Country = 'NO'`, [a.updated]);
    await s.run(`UPDATE crm.accounts SET City = 'Bergen', Country = 'NO', ModifiedAt = CAST($1 AS TIMESTAMPTZ) WHERE AccountId <= $2`, [at, a.updated]);
    await s.run(`UPDATE crm.accounts SET ModifiedAt = CAST($1 AS TIMESTAMPTZ) WHERE AccountId > $2 AND AccountId <= $3`, [at, a.updated, a.updated + a.touched]);
    await s.run(`DELETE FROM crm.accounts WHERE AccountId > $1`, [size.accounts - a.deleted]);
    await s.run(
      `INSERT INTO crm.accounts SELECT i, 'New account ' || i, 'new' || i || '@example.com', 'Oslo', 'NO', 'SMB', 1000.00, true, DATE '2026-11-24', CAST($1 AS TIMESTAMPTZ) FROM range($2, $3) t(i)`,
      [at, size.accounts + 1, size.accounts + 1 + a.inserted],
    );

    const c = { updated: pct(size.contacts, 1), alreadyNew: 0, touched: pct(size.contacts, 1), inserted: pct(size.contacts, 0.5) };
    c.alreadyNew = await count(`SELECT count(*) AS n FROM crm.contacts WHERE ContactId <= $1 AND Phone = '+47 99999999'`, [c.updated]);
    await s.run(`UPDATE crm.contacts SET Phone = '+47 99999999', ModifiedAt = CAST($1 AS TIMESTAMPTZ) WHERE ContactId <= $2`, [at, c.updated]);
    await s.run(`UPDATE crm.contacts SET ModifiedAt = CAST($1 AS TIMESTAMPTZ) WHERE ContactId > $2 AND ContactId <= $3`, [at, c.updated, c.updated + c.touched]);
    await s.run(
      `INSERT INTO crm.contacts SELECT i, 1, 'New', 'Contact', 'n' || i || '@mail.example', NULL, CAST($1 AS TIMESTAMPTZ) FROM range($2, $3) t(i)`,
      [at, size.contacts + 1, size.contacts + 1 + c.inserted],
    );

    const o = { updated: pct(size.opportunities, 3), alreadyNew: 0, touched: pct(size.opportunities, 1), deleted: pct(size.opportunities, 0.2), inserted: pct(size.opportunities, 1) };
    o.alreadyNew = await count(`SELECT count(*) AS n FROM crm.opportunities WHERE OpportunityId <= $1 AND Stage = 'Won' AND Probability = 1.0`, [o.updated]);
    await s.run(`UPDATE crm.opportunities SET Stage = 'Won', Probability = 1.0, ModifiedAt = CAST($1 AS TIMESTAMPTZ) WHERE OpportunityId <= $2`, [at, o.updated]);
    await s.run(`UPDATE crm.opportunities SET ModifiedAt = CAST($1 AS TIMESTAMPTZ) WHERE OpportunityId > $2 AND OpportunityId <= $3`, [at, o.updated, o.updated + o.touched]);
    await s.run(`DELETE FROM crm.opportunities WHERE OpportunityId > $1`, [size.opportunities - o.deleted]);
    await s.run(
      `INSERT INTO crm.opportunities SELECT i, 1, 'Prospect', 500.00, DATE '2026-12-31', 0.1, CAST($1 AS TIMESTAMPTZ) FROM range($2, $3) t(i)`,
      [at, size.opportunities + 1, size.opportunities + 1 + o.inserted],
    );
    return { accounts: a, contacts: c, opportunities: o };
  } finally {
    await s.close();
  }
}

import { TerminalError } from '../../errors.js';
import type { KeyRange } from '../source.js';

const NAME = /^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$/;

export interface SoqlShape {
  object: string;
  fields: string[];
  /** The user's own condition of a `soql:` source, kept in parentheses. */
  where?: string;
}

/**
 * Reads a `source.soql`: `SELECT f1, f2, Parent.Name FROM Object [WHERE …]`. tidemark adds the
 * window to the WHERE, and Bulk API 2.0 refuses ORDER BY, LIMIT, OFFSET, GROUP BY and
 * subqueries, so those are refused here with the reason instead of by the server mid-run.
 */
export function parseSoql(text: string): SoqlShape {
  if (/\b(order\s+by|limit|offset|group\s+by)\b/i.test(text) || /\(\s*select\b/i.test(text)) {
    throw new TerminalError('source.soql: ORDER BY, LIMIT, OFFSET, GROUP BY and subqueries are not allowed (Bulk API 2.0 refuses them and tidemark adds its own window)');
  }
  const m = /^\s*select\s+([\s\S]+?)\s+from\s+([A-Za-z][A-Za-z0-9_]*)(?:\s+where\s+([\s\S]+?))?\s*$/i.exec(text);
  if (!m) throw new TerminalError('source.soql must be SELECT <fields> FROM <object> [WHERE <condition>]');
  const fields = m[1]!.split(',').map((f) => f.trim());
  for (const f of fields) {
    if (!NAME.test(f)) throw new TerminalError(`source.soql: ${JSON.stringify(f)} is not a field name (functions, aliases and subqueries are not supported)`);
  }
  const where = m[3];
  return { object: m[2]!, fields, ...(where ? { where } : {}) };
}

/** SOQL dateTime literal (unquoted, second precision: Salesforce stores no finer). */
export function soqlDateTime(iso: string, round: 'floor' | 'ceil' = 'floor'): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) throw new Error(`${JSON.stringify(iso)} is not a timestamp`);
  const s = round === 'floor' ? Math.floor(t / 1000) : Math.ceil(t / 1000);
  return new Date(s * 1000).toISOString().replace('.000Z', 'Z');
}

export interface SoqlWindow {
  column: string;
  /** Exclusive lower bound (the watermark minus lag); null: from the beginning. */
  from: string | null;
  /** Inclusive upper bound captured before the read. */
  to: string | null;
}

/**
 * The SOQL of one read. Window values are typed literals built from parsed timestamps and
 * integers, never text from config; names are checked against NAME (and against describe by
 * the caller), since SOQL has no bind parameters.
 */
export function planSoql(shape: SoqlShape, o: { window?: SoqlWindow; range?: KeyRange; extraFields?: string[] }): string {
  const fields = [...shape.fields];
  for (const f of o.extraFields ?? []) if (!fields.some((x) => x.toLowerCase() === f.toLowerCase())) fields.push(f);
  for (const f of [...fields, shape.object]) if (!NAME.test(f)) throw new TerminalError(`${JSON.stringify(f)} is not a Salesforce API name`);
  const where: string[] = [];
  if (shape.where) where.push(`(${shape.where})`);
  if (o.window) {
    if (!NAME.test(o.window.column)) throw new TerminalError(`${JSON.stringify(o.window.column)} is not a Salesforce API name`);
    // Floor the exclusive lower bound: it only widens the window (re-read rows are unchanged).
    if (o.window.from !== null) where.push(`${o.window.column} > ${soqlDateTime(o.window.from, 'floor')}`);
    if (o.window.to !== null) where.push(`${o.window.column} <= ${soqlDateTime(o.window.to, 'ceil')}`);
  }
  if (o.range) where.push(...rangeWhere(o.range));
  return `SELECT ${fields.join(', ')} FROM ${shape.object}${where.length ? ` WHERE ${where.join(' AND ')}` : ''}`;
}

/**
 * A partition of a datetime column: bounds are epoch seconds (integers, so the shared
 * splitter cuts them), rendered back as dateTime literals.
 */
export function rangeWhere(r: KeyRange): string[] {
  if (!NAME.test(r.column)) throw new TerminalError(`${JSON.stringify(r.column)} is not a Salesforce API name`);
  const lit = (s: string) => new Date(Number(BigInt(s)) * 1000).toISOString().replace('.000Z', 'Z');
  // The last range is open above: a row updated during the load (SystemModstamp moved past
  // the captured max) is still read rather than missing from the snapshot.
  return r.last ? [`${r.column} >= ${lit(r.lo)}`] : [`${r.column} >= ${lit(r.lo)}`, `${r.column} < ${lit(r.hi)}`];
}

export function countSoql(soql: string): string {
  return soql.replace(/^SELECT [\s\S]+? FROM /, 'SELECT COUNT() FROM ');
}

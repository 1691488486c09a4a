import type { SalesforceClient } from '../../extract/salesforce/client.js';
import { selectFields, type SfField } from '../../extract/salesforce/types.js';
import type { TableProfile } from '../profile.js';

/** What the statistics ask of an org (SalesforceClient serves it; tests may pass a double's client). */
export type SalesforceOrg = Pick<SalesforceClient, 'describe' | 'recordCounts' | 'query'>;

/**
 * Fields Salesforce indexes on every object: Id, Name, OwnerId, CreatedDate, SystemModstamp,
 * lookups (reference fields), and external-id / unique fields. LastModifiedDate is not one of
 * them, which is why SystemModstamp is the change column to prefer.
 */
const STANDARD_INDEXED = new Set(['Id', 'Name', 'OwnerId', 'CreatedDate', 'SystemModstamp']);

function indexed(f: SfField & { externalId?: boolean; unique?: boolean }): boolean {
  return STANDARD_INDEXED.has(f.name) || f.type === 'reference' || f.externalId === true || f.unique === true;
}

/** A field's type as the plan shows it and logicalFromSource maps it: `currency(18,2)`, `datetime`, … */
export function sfProfileType(f: SfField): string {
  return (f.type === 'currency' || f.type === 'percent' || f.type === 'double') && f.precision ? `${f.type}(${f.precision},${f.scale ?? 0})` : f.type;
}

/**
 * The plan's table profile of Salesforce objects, one per request in its order (two pipelines
 * may read different fields of one object): the fields the pipeline reads (describe,
 * the same selection as the source's), Id as the key, the indexed fields, and record counts.
 * Counts come from `limits/recordCount` in one call for every object (Salesforce's periodic,
 * approximate figure); an object it has no figure for is counted by `SELECT COUNT()`. Salesforce
 * does not say bytes per object, so `bytes` is null.
 */
export async function salesforceStatistics(
  org: SalesforceOrg,
  objects: ReadonlyArray<{ object: string; fields?: 'all' | readonly string[] }>,
): Promise<{ profiles: TableProfile[]; notes: string[] }> {
  const names = [...new Set(objects.map((o) => o.object))];
  const notes: string[] = [];
  const counts = new Map<string, number>();
  if (names.length) {
    for (const r of (await org.recordCounts(names)).sObjects) counts.set(r.name.toLowerCase(), r.count);
    const counted = names.filter((n) => counts.has(n.toLowerCase()));
    if (counted.length) notes.push(`record counts of ${counted.join(', ')} from limits/recordCount: Salesforce refreshes them periodically, so they are approximate`);
  }
  const profiles: TableProfile[] = [];
  const described = new Map<string, Awaited<ReturnType<SalesforceOrg['describe']>>>();
  for (const o of objects) {
    const d = described.get(o.object) ?? (await org.describe(o.object));
    described.set(o.object, d);
    let rows = counts.get(o.object.toLowerCase());
    if (rows === undefined) {
      rows = (await org.query(`SELECT COUNT() FROM ${d.name}`, false)).totalSize;
      counts.set(o.object.toLowerCase(), rows);
      notes.push(`${d.name}: no figure in limits/recordCount, counted with SELECT COUNT() (exact)`);
    }
    const fields = selectFields(d, o.fields ?? 'all', d.name);
    profiles.push({
      schema: null,
      name: d.name,
      columns: fields.map((f) => ({ name: f.name, type: sfProfileType(f), temporal: f.type === 'datetime' })),
      primaryKey: fields.some((f) => f.name === 'Id') ? ['Id'] : [],
      rowCount: rows,
      bytes: null,
      indexedColumns: fields.filter(indexed).map((f) => f.name),
    });
  }
  return { profiles, notes };
}

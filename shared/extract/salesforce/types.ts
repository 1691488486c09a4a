import { TerminalError } from '../../errors.js';
import { castFromText, type ColumnPlan } from '../column-plan.js';

/** The parts of a `describe` field this source reads (REST sObject Describe, `fields[]`). */
export interface SfField {
  name: string;
  type: string;
  precision?: number;
  scale?: number;
  length?: number;
  digits?: number;
  /** Set on the components of a compound field (BillingStreet → BillingAddress). */
  compoundFieldName?: string | null;
  /** Field-level security: false when the running user may not read the field. */
  permissionable?: boolean;
  /** Not in describe itself; the source sets it from FLS when it knows (see selectFields). */
  readable?: boolean;
  /** A formula (or roll-up) field: computed when read, so its changes do not move SystemModstamp. */
  calculated?: boolean;
  label?: string;
}

export interface SfDescribe {
  name: string;
  fields: SfField[];
}

/** Compound types: Bulk API 2.0 refuses them, their components are separate fields anyway. */
const COMPOUND = new Set(['address', 'location']);
/** Types with no value a CSV / JSON row can carry. */
const UNREADABLE = new Set(['base64', 'anyType', 'complexvalue']);

/**
 * The Salesforce → DuckDB type table (README "Salesforce types"). Values arrive as text (CSV
 * from Bulk 2.0, JSON rendered back to text from REST), so the cast happens in DuckDB and no
 * currency passes through a JS number.
 */
export function sfColumnPlan(f: SfField): ColumnPlan {
  const base = { name: f.name, sourceType: f.type };
  switch (f.type) {
    case 'id':
    case 'reference':
    case 'string':
    case 'textarea':
    case 'picklist':
    case 'multipicklist':
    case 'combobox':
    case 'phone':
    case 'email':
    case 'url':
    case 'encryptedstring':
      return { ...base, duckType: 'VARCHAR', fromText: (c) => c };
    case 'boolean':
      return { ...base, duckType: 'BOOLEAN', fromText: (c) => `(lower(${c}) = 'true')` };
    case 'int':
      return { ...base, duckType: 'INTEGER', fromText: castFromText('INTEGER') };
    case 'long':
      return { ...base, duckType: 'BIGINT', fromText: castFromText('BIGINT') };
    case 'double':
    case 'currency':
    case 'percent': {
      // precision / scale are the field's definition (e.g. currency(18,2)); a DOUBLE would
      // round money, so DECIMAL when it fits DuckDB's 38 digits.
      const p = f.precision ?? 0;
      const s = f.scale ?? 0;
      if (p > 0 && p <= 38 && s <= p) return { ...base, duckType: `DECIMAL(${p},${s})`, fromText: castFromText(`DECIMAL(${p},${s})`) };
      return { ...base, duckType: 'DOUBLE', fromText: castFromText('DOUBLE') };
    }
    case 'date':
      return { ...base, duckType: 'DATE', fromText: castFromText('DATE') };
    // 2026-01-05T10:00:00.000Z (Bulk CSV) or 2026-01-05T10:00:00.000+0000 (REST JSON): both UTC.
    case 'datetime':
      return { ...base, duckType: 'TIMESTAMPTZ', fromText: (c) => `CAST(replace(${c}, '+0000', 'Z') AS TIMESTAMPTZ)` };
    case 'time':
      return { ...base, duckType: 'TIME', fromText: (c) => `CAST(replace(${c}, 'Z', '') AS TIME)` };
    default:
      // Unknown future types stay text: nothing lost, and the README says so.
      return { ...base, duckType: 'VARCHAR', fromText: (c) => c };
  }
}

/**
 * Fields to read. `all`: every field of the object except compound fields (their components
 * are fields of their own), types a row cannot carry, and fields the user may not read (the
 * describe of the running user omits those already; `readable === false` is honoured too).
 * An explicit list is checked against describe so a typo names the field before any job runs.
 */
/** Why a field is not read under `all` (undefined: it is read). */
export function unreadableReason(f: SfField): string | undefined {
  if (COMPOUND.has(f.type)) return `compound ${f.type} field: its components are fields of their own`;
  if (UNREADABLE.has(f.type)) return `${f.type} field: the query APIs cannot return it`;
  if (f.readable === false) return 'the connection\'s user may not read it';
  return undefined;
}

export function selectFields(d: SfDescribe, wanted: 'all' | readonly string[], object: string): SfField[] {
  const usable = (f: SfField) => !COMPOUND.has(f.type) && !UNREADABLE.has(f.type) && f.readable !== false;
  if (wanted === 'all') return d.fields.filter(usable);
  const byName = new Map(d.fields.map((f) => [f.name.toLowerCase(), f]));
  return wanted.map((w) => {
    const f = byName.get(w.toLowerCase());
    if (!f) throw new TerminalError(`source.fields: ${object} has no field ${w} the connection's user can read (check the API name and field-level security)`);
    if (!usable(f)) throw new TerminalError(`source.fields: ${object}.${f.name} is a ${f.type} field, which the query APIs cannot return; list its components instead`);
    return f;
  });
}

import { describe, expect, it } from 'vitest';
import { assembleProfiles } from '../../../shared/plan/introspect/port.js';

describe('assembleProfiles (the DuckDB and PostgreSQL introspectors)', () => {
  const col = (table: string, column_name: string, data_type: string) => ({ schema_name: 's', table_name: table, column_name, data_type });
  const ix = (table: string, column_name: string, ord: number, is_primary = false) => ({ schema_name: 's', table_name: table, column_name, ord, is_primary });

  it('takes each table its own columns, the key in key order, the columns that lead an index; per-table stats win', async () => {
    const seen: string[] = [];
    const out = await assembleProfiles(
      [{ schema: 's', name: 'lines' }, { schema: 's', name: 'bare' }],
      {
        columns: [col('lines', 'order_id', 'integer'), col('lines', 'line_no', 'integer'), col('lines', 'changed_at', 'timestamp with time zone'), col('other', 'x', 'text'), col('bare', 'v', 'text')],
        // The primary key's rows arrive out of key order; a second index leads with changed_at, a third repeats order_id.
        indexes: [ix('lines', 'line_no', 2, true), ix('lines', 'order_id', 1, true), ix('lines', 'changed_at', 1), ix('lines', 'order_id', 1), ix('other', 'x', 1, true)],
        temporal: (t) => t.startsWith('timestamp'),
      },
      async (t) => {
        seen.push(t.name);
        return t.name === 'bare' ? { rowCount: null, bytes: null, zoneMaps: true, indexedColumns: [] } : { rowCount: 7, bytes: 8192 };
      },
    );
    expect(seen).toEqual(['lines', 'bare']);
    expect(out).toEqual([
      {
        schema: 's',
        name: 'lines',
        columns: [
          { name: 'order_id', type: 'integer', temporal: false },
          { name: 'line_no', type: 'integer', temporal: false },
          { name: 'changed_at', type: 'timestamp with time zone', temporal: true },
        ],
        primaryKey: ['order_id', 'line_no'],
        indexedColumns: ['order_id', 'changed_at'],
        rowCount: 7,
        bytes: 8192,
      },
      { schema: 's', name: 'bare', columns: [{ name: 'v', type: 'text', temporal: false }], primaryKey: [], indexedColumns: [], rowCount: null, bytes: null, zoneMaps: true },
    ]);
  });
});

import { describe, expect, it } from 'vitest';
import { TerminalError } from '../../../shared/errors.js';
import { checkSchemaDrift, compareSchemas } from '../../../shared/transform/schema-drift.js';

const before = [
  { name: 'id', type: 'INTEGER' },
  { name: 'a', type: 'VARCHAR' },
  { name: 'b', type: 'INTEGER' },
];

describe('schema drift', () => {
  it('names added, dropped and retyped columns (names compared case-insensitively)', () => {
    expect(
      compareSchemas(before, [
        { name: 'ID', type: 'INTEGER' },
        { name: 'b', type: 'BIGINT' },
        { name: 'c', type: 'DATE' },
      ]),
    ).toEqual({ added: [{ name: 'c', type: 'DATE' }], dropped: [{ name: 'a', type: 'VARCHAR' }], retyped: [{ name: 'b', from: 'INTEGER', to: 'BIGINT' }] });
    expect(compareSchemas(before, before)).toEqual({ added: [], dropped: [], retyped: [] });
  });

  it('evolve passes every change (the merge decides types); fail refuses any change', () => {
    const addDrop = compareSchemas(before, [{ name: 'id', type: 'INTEGER' }, { name: 'b', type: 'INTEGER' }, { name: 'c', type: 'DATE' }]);
    expect(() => checkSchemaDrift('p', 'evolve', addDrop)).not.toThrow();
    expect(() => checkSchemaDrift('p', 'fail', addDrop)).toThrow(
      new TerminalError(
        'the source of p changed its columns since the last committed run (added c DATE, dropped a) and pipelines/p.yaml has source.schemaDrift: fail; nothing was changed. Update the pipeline for the new columns, or set source.schemaDrift: evolve',
      ),
    );
    const retyped = compareSchemas(before, [{ name: 'id', type: 'BIGINT' }, ...before.slice(1)]);
    expect(() => checkSchemaDrift('p', 'evolve', retyped)).not.toThrow();
    expect(() => checkSchemaDrift('p', 'fail', retyped)).toThrow(/\(id changed from INTEGER to BIGINT\) and pipelines\/p.yaml has source.schemaDrift: fail/);
    expect(() => checkSchemaDrift('p', 'fail', compareSchemas(before, before))).not.toThrow();
  });

  it("leaves tidemark's _tm_ columns out: a CDC / Change Tracking window read after a re-snapshot is no drift", () => {
    const window = [...before, { name: '_tm_source_op', type: 'VARCHAR' }];
    const snapshot = before;
    expect(compareSchemas(snapshot, window)).toEqual({ added: [], dropped: [], retyped: [] });
    expect(compareSchemas(window, snapshot)).toEqual({ added: [], dropped: [], retyped: [] });
    expect(compareSchemas([...before, { name: '_TM_SOURCE_OP', type: 'VARCHAR' }], [...before, { name: '_tm_source_op', type: 'INTEGER' }])).toEqual({ added: [], dropped: [], retyped: [] });
    expect(() => checkSchemaDrift('p', 'fail', compareSchemas(snapshot, window))).not.toThrow();
    // A real user column next to it is still drift.
    expect(compareSchemas(window, [...window, { name: 'c', type: 'DATE' }]).added).toEqual([{ name: 'c', type: 'DATE' }]);
  });
});

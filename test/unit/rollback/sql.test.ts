import { describe, expect, it } from 'vitest';
import pkg from 'node-sql-parser';
import { backupTableName, renderBackup, renderDropBackup, renderLedgerRows, renderRestore, renderUndoRun } from '../../../shared/rollback/sql.js';
import { postgresRollbackStyle, synapseRollbackStyle } from '../../../shared/rollback/styles.js';
import { newestFirst } from '../../../shared/rollback/undo-runs.js';

const T = { schema: 'dw', name: 'dim_account' };
const RUN = '20261124T021500Z-7f3a';

/** No Synapse runs here (docs/design.md §15): its T-SQL is pinned exactly and parsed as T-SQL. */
describe('rollback SQL for synapse (golden)', () => {
  const undo = renderUndoRun(synapseRollbackStyle, { target: T, keys: ['AccountId', 'Region'], pipeline: 'crm', runId: RUN, boundary: '2026-11-24 02:15:00' });

  it('reopens what the run closed, deletes what it inserted and its ledger row; values bound', () => {
    expect(undo).toEqual([
      {
        sql: 'UPDATE [dw].[dim_account] SET [_tm_valid_to] = NULL, [_tm_is_current] = 1 WHERE [_tm_version_key] IN (SELECT v.[_tm_version_key] FROM [dw].[dim_account] v WHERE v.[_tm_run_id] <> @p1 AND v.[_tm_is_current] = 0 AND (v.[_tm_valid_to] = CAST(@p2 AS DATETIME2) OR EXISTS (SELECT 1 FROM [dw].[dim_account] w WHERE w.[_tm_run_id] = @p1 AND w.[AccountId] = v.[AccountId] AND w.[Region] = v.[Region] AND w.[_tm_valid_from] = v.[_tm_valid_to])) AND NOT EXISTS (SELECT 1 FROM [dw].[dim_account] n WHERE n.[_tm_run_id] <> @p1 AND n.[AccountId] = v.[AccountId] AND n.[Region] = v.[Region] AND n.[_tm_valid_from] > v.[_tm_valid_from]))',
        parameters: [RUN, '2026-11-24 02:15:00'],
      },
      { sql: 'DELETE FROM [dw].[dim_account] WHERE [_tm_run_id] = @p1', parameters: [RUN] },
      { sql: 'DELETE FROM [dw].[_tm_ledger] WHERE [pipeline] = @p1 AND [run_id] = @p2', parameters: ['crm', RUN] },
    ]);
  });

  it('backs up with CTAS (own statement, no transaction) and restores by delete + insert of listed columns', () => {
    const bk = backupTableName(T, RUN);
    expect(bk).toEqual({ schema: 'dw', name: 'dim_account__tm_bk_20261124t021500z_7f3a' });
    expect(renderBackup(synapseRollbackStyle, T, bk).map((s) => s.sql)).toEqual([
      "IF OBJECT_ID(N'[dw].[dim_account__tm_bk_20261124t021500z_7f3a]') IS NOT NULL DROP TABLE [dw].[dim_account__tm_bk_20261124t021500z_7f3a]",
      'CREATE TABLE [dw].[dim_account__tm_bk_20261124t021500z_7f3a] WITH (DISTRIBUTION = ROUND_ROBIN, HEAP) AS SELECT * FROM [dw].[dim_account]',
    ]);
    expect(renderRestore(synapseRollbackStyle, { target: T, backup: bk, columns: ['AccountId', '_tm_run_id'], pipeline: 'crm', dropRunIds: [RUN] })).toEqual([
      { sql: 'DELETE FROM [dw].[dim_account]', parameters: [] },
      { sql: 'INSERT INTO [dw].[dim_account] ([AccountId], [_tm_run_id]) SELECT [AccountId], [_tm_run_id] FROM [dw].[dim_account__tm_bk_20261124t021500z_7f3a]', parameters: [] },
      { sql: 'DELETE FROM [dw].[_tm_ledger] WHERE [pipeline] = @p1 AND [run_id] = @p2', parameters: ['crm', RUN] },
    ]);
    expect(renderDropBackup(synapseRollbackStyle, bk).sql).toMatch(/^IF OBJECT_ID/);
  });

  it('the DML parses as T-SQL', () => {
    const parser = new pkg.Parser();
    const restore = renderRestore(synapseRollbackStyle, { target: T, backup: backupTableName(T, RUN), columns: ['AccountId'], pipeline: 'crm', dropRunIds: [RUN] });
    for (const st of [...undo, ...restore]) expect(() => parser.astify(st.sql, { database: 'transactsql' })).not.toThrow();
  });

  it('quotes identifiers so a hostile name cannot break out', () => {
    const s = renderUndoRun(synapseRollbackStyle, { target: { name: 'a]b' }, keys: ['k]'], pipeline: 'p', runId: RUN, boundary: 'x' });
    expect(s[1]!.sql).toBe('DELETE FROM [a]]b] WHERE [_tm_run_id] = @p1');
    expect(s[0]!.sql).toContain('w.[k]]] = v.[k]]]');
  });
});

describe('rollback SQL for postgres', () => {
  it('uses $n parameters and double-quoted identifiers', () => {
    const [reopen, del] = renderUndoRun(postgresRollbackStyle, { target: T, keys: ['id'], pipeline: 'p', runId: RUN, boundary: 'b' });
    expect(del).toEqual({ sql: 'DELETE FROM "dw"."dim_account" WHERE "_tm_run_id" = $1', parameters: [RUN] });
    expect(reopen!.sql).toContain('CAST($2 AS TIMESTAMP)');
    expect(reopen!.sql).toContain('SET "_tm_valid_to" = NULL, "_tm_is_current" = true');
  });
});

describe('rollback order is commit order, not run-id text', () => {
  it('undoes two runs started in the same second newest first, whatever their random suffixes', () => {
    const [a, b] = ['20260101T000100Z-ffff', '20260101T000100Z-0001'];
    // a committed first, then b; as text b sorts first, which undid them in the wrong order.
    expect(newestFirst(['20260101T000000Z-1111', a, b], ['20260101T000000Z-1111', a, b], new Set([a, b]))).toEqual([b, a]);
    // A run in the ledger the checkpoint never heard of (checkpoint write lost) is the newest.
    const lost = '20260101T000100Z-0000';
    expect(newestFirst([a], [a, lost], new Set([a, lost]))).toEqual([lost, a]);
    expect(renderLedgerRows(postgresRollbackStyle, { schema: 'dw', name: 'd' }, 'p')).toEqual({
      sql: 'SELECT "run_id" FROM "dw"."_tm_ledger" WHERE "pipeline" = $1 ORDER BY "committed_at", "run_id"',
      parameters: ['p'],
    });
  });
});

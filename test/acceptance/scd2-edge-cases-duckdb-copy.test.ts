import { describeScenarios } from '../support/scd-harness.js';
import { SCD2_EDGE_CASES, SCD2_EDGE_TITLE } from '../support/scd2-edge-cases.js';

/**
 * The SCD2 edge cases once more on DuckDB, with the merge closing versions by closed copies and
 * a delete: the form a DuckDB target bigger than its memory limit gets (closeByCopy in
 * shared/merge/duckdb/warehouse.ts), which the small tables here would never choose. Each case
 * must end with the same expected table as under the UPDATE (scd2-edge-cases.test.ts).
 */
describeScenarios(SCD2_EDGE_TITLE, SCD2_EDGE_CASES, undefined, ['duckdb'], { duckdbCloseBy: 'copy' });

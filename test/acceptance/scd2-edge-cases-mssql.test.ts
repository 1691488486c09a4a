import { describeScenarios } from '../support/scd-harness.js';
import { SCD2_EDGE_CASES, SCD2_EDGE_TITLE } from '../support/scd2-edge-cases.js';
import { tsqlEngine } from '../support/tsql-engine.js';

/**
 * The SCD2 edge cases (test/support/scd2-edge-cases.ts) through the whole chain on the mssql
 * warehouse, on the T-SQL engine (test/support/tsql-engine.ts; skipped with the reason printed
 * where none runs). Each case must end with the same exact dimension as on DuckDB and
 * PostgreSQL (scd2-edge-cases.test.ts); split from that file so the two run in parallel.
 */
const engine = await tsqlEngine();

describeScenarios(SCD2_EDGE_TITLE, SCD2_EDGE_CASES, engine, ['mssql']);

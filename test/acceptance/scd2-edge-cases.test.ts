import { describeScenarios } from '../support/scd-harness.js';
import { SCD2_EDGE_CASES, SCD2_EDGE_TITLE } from '../support/scd2-edge-cases.js';

/**
 * docs/design.md §8 and issue #3, case by case, through the real chain (Azurite queues and blobs, a
 * DuckDB source, the transform, the merge, validation) on DuckDB and PostgreSQL: each case
 * asserts the whole dimension, and both end with identical tables and counts. The same cases on
 * the mssql warehouse (T-SQL engine) are in scd2-edge-cases-mssql.test.ts, a file of their own so
 * that vitest's two workers run them in parallel; every warehouse ends with the case's one
 * expected table, hence with DuckDB's.
 */
describeScenarios(SCD2_EDGE_TITLE, SCD2_EDGE_CASES, undefined, ['duckdb', 'postgres']);

import { redactValue } from '../telemetry/redact.js';
import { TABLES } from '../storage/layout.js';
import type { TableEntity, TableStore } from '../storage/ports.js';

export interface ValidationResult {
  check: string;
  passed: boolean;
  expected: string | number | null;
  actual: string | number | null;
  detail?: string;
}

export interface ValidationRow extends TableEntity, ValidationResult {
  pipeline: string;
  runId: string;
  checkedAt: string;
}

/** Upsert: re-validating a run overwrites its own rows (stages are idempotent by run id). */
export async function writeValidations(
  tables: TableStore,
  pipeline: string,
  runId: string,
  results: readonly ValidationResult[],
  now: Date,
): Promise<void> {
  for (const r of results) {
    const row: ValidationRow = {
      partitionKey: pipeline,
      rowKey: `${runId}__${r.check}`,
      pipeline,
      runId,
      checkedAt: now.toISOString(),
      // Details quote database messages, which may quote a connection string.
      ...redactValue(r),
    };
    await tables.upsert(TABLES.validations, row);
  }
}

export async function readValidations(tables: TableStore, pipeline: string, runId: string): Promise<ValidationResult[]> {
  const rows = await tables.list<ValidationRow>(TABLES.validations, pipeline);
  return rows
    .filter((r) => r.runId === runId)
    .map(({ check, passed, expected, actual, detail }) => ({ check, passed, expected, actual, ...(detail ? { detail } : {}) }));
}

/**
 * Identifiers from config end up in SQL. They are checked against a conservative pattern here
 * (letters, digits, underscore; must not start with a digit) and additionally quoted by every
 * dialect, so that a bypass of one layer still cannot inject SQL.
 */
export const IDENTIFIER_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/** `schema.table` or `table`, each part a safe identifier. */
export const QUALIFIED_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,127}(\.[A-Za-z_][A-Za-z0-9_]{0,127})?$/;

/** Pipeline names become blob prefixes, queue payloads and table partition keys. */
export const PIPELINE_NAME_PATTERN = /^[a-z][a-z0-9_]{0,62}$/;

/** `20261124T021500Z-7f3a` */
export const RUN_ID_PATTERN = /^\d{8}T\d{6}Z-[0-9a-f]{4}$/;

export function isIdentifier(s: string): boolean {
  return IDENTIFIER_PATTERN.test(s);
}

export interface QualifiedName {
  schema?: string;
  name: string;
}

export function splitQualified(qualified: string): QualifiedName {
  if (!QUALIFIED_NAME_PATTERN.test(qualified)) {
    throw new Error(`unsafe table name ${JSON.stringify(qualified)}: use schema.table with letters, digits and _`);
  }
  const parts = qualified.split('.');
  return parts.length === 2 ? { schema: parts[0]!, name: parts[1]! } : { name: parts[0]! };
}

export function assertPipelineName(name: string): string {
  if (!PIPELINE_NAME_PATTERN.test(name)) {
    throw new Error(
      `invalid pipeline name ${JSON.stringify(name)}: use lowercase letters, digits and _ (start with a letter, at most 63)`,
    );
  }
  return name;
}

export function assertRunId(runId: string): string {
  if (!RUN_ID_PATTERN.test(runId)) {
    throw new Error(`invalid run id ${JSON.stringify(runId)}: expected the form 20261124T021500Z-7f3a`);
  }
  return runId;
}

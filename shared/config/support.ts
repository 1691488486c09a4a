import { NotSupportedError } from '../errors.js';
import type { ResolvedProject } from './load.js';
import { connectionOf } from './load.js';
import type { PipelineConfig } from './schema.js';

/**
 * Fields the schema accepts (so configs written for the whole design validate today) but that
 * this release cannot execute. They are refused when a run starts, never silently ignored.
 * Each entry is removed by the change that implements it.
 */
export function unsupportedFields(project: ResolvedProject, p: PipelineConfig): NotSupportedError[] {
  const out: NotSupportedError[] = [];
  const conn = connectionOf(project, p);
  const mode = p.source.changeDetection.mode;
  // rowversion, cdc and changeTracking are SQL Server features; other sources read full or timestamp.
  if (conn.kind !== 'mssql' && mode !== 'full' && mode !== 'timestamp') {
    out.push(new NotSupportedError(`source.changeDetection.mode: ${mode}`, `${mode} needs a connection of kind mssql; ${p.source.connection} is ${conn.kind}`));
  }
  /* salesforce source (issue 18) */
  const sfFields = p.source.object !== undefined || p.source.soql !== undefined;
  if (conn.kind === 'salesforce' && !sfFields) {
    out.push(new NotSupportedError('source.table / source.query', `${p.source.connection} is a salesforce connection: read source.object (with fields) or source.soql`));
  }
  if (conn.kind !== 'salesforce' && sfFields) {
    out.push(new NotSupportedError('source.object / source.soql', `they read a salesforce connection; ${p.source.connection} is ${conn.kind}: use source.table or source.query`));
  }
  /* end salesforce source */
  if (p.buckets > 1) out.push(new NotSupportedError('buckets'));
  return out;
}

export function assertSupported(project: ResolvedProject, p: PipelineConfig): void {
  const problems = unsupportedFields(project, p);
  if (problems.length === 1) throw problems[0]!;
  if (problems.length > 1) {
    throw new NotSupportedError(problems.map((e) => e.field).join(', '), `pipelines/${p.name}.yaml`);
  }
}

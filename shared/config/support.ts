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
  if (conn.kind !== 'duckdb') out.push(new NotSupportedError(`connections.${p.source.connection}.kind: ${conn.kind}`));
  const mode = p.source.changeDetection.mode;
  if (mode !== 'full' && mode !== 'timestamp') out.push(new NotSupportedError(`source.changeDetection.mode: ${mode}`));
  if (p.validation.rules.length > 0) out.push(new NotSupportedError('validation.rules'));
  if (p.validation.sample > 0) out.push(new NotSupportedError('validation.sample'));
  if (p.buckets > 1) out.push(new NotSupportedError('buckets'));
  if (p.dependsOn.length > 0) out.push(new NotSupportedError('dependsOn'));
  return out;
}

export function assertSupported(project: ResolvedProject, p: PipelineConfig): void {
  const problems = unsupportedFields(project, p);
  if (problems.length === 1) throw problems[0]!;
  if (problems.length > 1) {
    throw new NotSupportedError(problems.map((e) => e.field).join(', '), `pipelines/${p.name}.yaml`);
  }
}

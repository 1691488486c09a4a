import type { MigrationPlan } from './model.js';

const n = (v: number | null) => (v === null ? 'unknown' : v.toLocaleString('en-US'));
const cell = (s: string) => s.replace(/\|/g, '\\|');

function mdTable(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
}

function duration(s: number | null): string {
  if (s === null) return 'unknown';
  if (s < 90) return `${s} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** The plan in the shape of a data migration plan document. */
export function renderMarkdown(p: MigrationPlan): string {
  const out: string[] = [];
  out.push('# Data migration plan', '', `Generated ${p.generatedAt} for ${p.project}.`, '');
  out.push('## Summary', '');
  out.push(`- Sources: ${p.summary.sources.map((s) => `${s.name} (${s.kind})`).join(', ') || 'none'}`);
  out.push(`- Target: ${p.summary.targets.map((s) => `${s.name} (${s.kind})`).join(', ') || 'none'}`);
  out.push(`- Pipelines: ${p.summary.pipelines}`);
  out.push(`- Initial volume: ${n(p.summary.initialRecords)} records (source statistics)`);
  out.push(`- Daily volume: ${p.summary.dailyRecords === null ? 'no runs in the last 7 days' : `${n(p.summary.dailyRecords)} records/day (recent runs)`}`);
  out.push(`- Estimated initial load: ${duration(p.estimate.seconds)}${p.estimate.rowsPerSecond ? ` at ${n(p.estimate.rowsPerSecond)} rows/s` : ''}; throughput: ${p.estimate.basis}`, '');
  out.push('## Scope', '');
  out.push(mdTable(['Object', 'Pipeline', 'Records', 'Load type', 'Change detection', 'Schedule', 'Priority'], p.scope.map((s) => [s.object, s.pipeline, n(s.records), s.loadType, s.changeDetection, s.schedule ?? 'on demand', `P${s.priority}`])), '');
  out.push('## Migration approach', '', '### Phase 1: initial load', '');
  for (const s of p.phases.initialLoad) out.push(`- ${s.pipeline}: full read${s.partitions ? ` in ${s.partitions}` : ''}; ${s.backup ? 'target backed up first' : 'no backup'}; SCD2 versions opened at the run boundary; validated before the checkpoint moves`);
  out.push('', '### Phase 2: incremental sync', '');
  for (const s of p.phases.incremental) out.push(`- ${s.pipeline}: ${s.schedule ?? 'on demand'}; expected latency ${s.expectedLatency}`);
  out.push('', '## Data mapping', '');
  for (const m of p.mapping) {
    out.push(`### ${m.pipeline} → ${m.target} (${m.dialect})`, '');
    if (m.viaTransform) out.push('transform.sql reshapes these columns; the source side is shown.', '');
    out.push(m.columns.length ? mdTable(['Source column', 'Source type', 'Target type'], m.columns.map((c) => [c.source, c.sourceType, c.targetType])) : 'Source columns unknown (the source could not be read).', '');
  }
  out.push('## Validation strategy', '');
  for (const v of p.validation) out.push(`- ${v.pipeline}: ${v.checks.join('; ') || 'no checks configured'}`);
  out.push('', '## Rollback plan', '');
  for (const r of p.rollback) out.push(`- ${r.pipeline}: backup ${r.backup}; undo: ${r.undo}; point in time: ${r.pointInTime}`);
  out.push('', '## Risks', '');
  out.push(...(p.risks.length ? p.risks.map((r) => `- ${r.pipeline ? `${r.pipeline}: ` : ''}${r.risk}`) : ['- none found']));
  out.push('', '## Dependencies', '', '```mermaid', p.mermaid, '```', '');
  return out.join('\n');
}

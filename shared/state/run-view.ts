import type { Counts } from '../storage/manifest.js';
import type { ResumeNote, RunRecord } from './runs.js';
import type { ValidationResult } from './validations.js';

/**
 * How a run record is shown: one mapping for the CLI (`runs`, `run`), the HTTP API and the page,
 * so a field added to runs appears the same way everywhere.
 */
export interface RunSummary {
  runId: string;
  trigger: RunRecord['trigger'];
  mode: RunRecord['mode'];
  status: RunRecord['status'];
  stage: RunRecord['stage'];
  createdAt: string;
  finishedAt: string | null;
  counts: Counts;
  /** Table Storage drops null properties, so absent reads back as undefined: shown as null. */
  error: string | null;
  /** Each takeover of the run after its process died (shared/engine/resume.ts); absent when none. */
  resumes?: ResumeNote[];
}

export function runSummary(r: RunRecord): RunSummary {
  return {
    runId: r.runId,
    trigger: r.trigger,
    mode: r.mode,
    status: r.status,
    stage: r.stage,
    createdAt: r.createdAt,
    finishedAt: r.finishedAt ?? null,
    counts: r.counts,
    error: r.error ?? null,
    ...(r.resumes?.length ? { resumes: r.resumes } : {}),
  };
}

/** The counts a person reads: `updated` is type 2 updates plus type 1 overwrites, both change the current row. */
export type ShownCounts = Omit<Counts, 'type1'>;

export function shownCounts(c: Counts): ShownCounts {
  return {
    extracted: c.extracted,
    inserted: c.inserted,
    updated: c.updated + (c.type1 ?? 0),
    deleted: c.deleted,
    unchanged: c.unchanged,
    stale: c.stale,
    quarantined: c.quarantined,
  };
}

/** A validation result without its storage fields; `detail` only when there is one. */
export function validationView({ check, passed, expected, actual, detail }: ValidationResult): ValidationResult {
  return { check, passed, expected, actual, ...(detail ? { detail } : {}) };
}

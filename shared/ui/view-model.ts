/**
 * The JSON the run-history page reads. Types only, no imports: the browser bundle
 * (shared/ui/web/) and the server (shared/ui/data.ts) compile against the same file.
 */

export type FreshnessState = 'fresh' | 'stale' | 'never' | 'unset';

export interface UiCounts {
  extracted: number;
  inserted: number;
  /** Type 2 updates plus type 1 overwrites: both change the current row. */
  updated: number;
  deleted: number;
  unchanged: number;
  stale: number;
  quarantined: number;
}

export interface UiValidation {
  check: string;
  passed: boolean;
  expected: string | number | null;
  actual: string | number | null;
  detail?: string;
}

export interface UiRun {
  runId: string;
  status: string;
  stage: string;
  trigger: string;
  mode: string;
  createdAt: string;
  finishedAt: string | null;
  /** createdAt → finishedAt (or → now while running), ms. */
  durationMs: number | null;
  counts: UiCounts;
  /** Milliseconds per stage, as recorded by the workers. */
  timings: Partial<Record<UiStage, number>>;
  error: string | null;
  validations: UiValidation[];
}

export type UiStage = 'extract' | 'transform' | 'merge' | 'checkpoint' | 'validate';
export const UI_STAGES: readonly UiStage[] = ['extract', 'transform', 'merge', 'checkpoint', 'validate'];

export interface UiPipeline {
  name: string;
  description: string | null;
  schedule: string | null;
  /** Next timer fire time (UTC ISO), null when unscheduled. */
  nextRunAt: string | null;
  target: string;
  changeDetection: string;
  freshness: {
    state: FreshnessState;
    /** The threshold in ms and where it came from. */
    thresholdMs: number | null;
    thresholdSource: 'config' | 'schedule' | null;
    lastSuccessAt: string | null;
    /** now − lastSuccessAt, ms. */
    ageMs: number | null;
  };
  checkpoint: { watermark: string | null; lastRunId: string | null; committedAt: string | null };
  lastRun: UiRun | null;
  runCount: number;
}

export interface UiOverview {
  generatedAt: string;
  pipelines: UiPipeline[];
}

/** validation.holdOnFailure: failed validations nobody acknowledged; the next run is refused until then. */
export interface UiHold {
  runIds: string[];
  message: string;
}

/** The lease of the run in flight: who drives it and since when (a stuck run shows here). */
export interface UiLease {
  runId: string;
  /** The owner as a person reads it (host and pid, or the Functions invocation). */
  owner: string;
  ownerHost: string | null;
  ownerPid: number | null;
  /** The Functions invocation holding it, in Azure. */
  ownerInvocationId: string | null;
  acquiredAt: string;
  expiresAt: string;
  /** now − acquiredAt, ms. */
  ageMs: number;
  /** Past expiresAt: the next start takes it over and fails the run. */
  expired: boolean;
}

export interface UiPipelineDetail {
  generatedAt: string;
  pipeline: UiPipeline;
  hold: UiHold | null;
  lease: UiLease | null;
  /** Oldest first (chart order), at most `limit` of the newest runs. */
  runs: UiRun[];
  limit: number;
}

export interface UiRunDetail {
  generatedAt: string;
  pipeline: string;
  run: UiRun;
}

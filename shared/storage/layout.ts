/** Every blob, queue and table name tidemark uses, in one place (docs/design.md §4). */
export const CONTAINERS = {
  raw: 'raw',
  changes: 'changes',
  state: 'state',
  quarantine: 'quarantine',
  backups: 'backups',
} as const;

export const QUEUES = { extract: 'extract', merge: 'merge', validate: 'validate' } as const;
export const POISON_SUFFIX = '-poison';

export const TABLES = {
  checkpoints: 'checkpoints',
  runs: 'runs',
  validations: 'validations',
  leases: 'leases',
  blobReceipts: 'blobreceipts',
  backups: 'backups',
} as const;

export const MANIFEST_FILE = '_manifest.json';

export const layout = {
  rawPrefix: (pipeline: string, runId: string) => `${pipeline}/${runId}/`,
  rawPart: (pipeline: string, runId: string, index: number) =>
    `${pipeline}/${runId}/part-${String(index).padStart(5, '0')}.parquet`,
  /** Key-only parts read beside a window (RawManifest.keys). */
  rawKeysPrefix: (pipeline: string, runId: string) => `${pipeline}/${runId}/keys/`,
  rawKeysPart: (pipeline: string, runId: string, index: number) => `${pipeline}/${runId}/keys/part-${String(index).padStart(5, '0')}.parquet`,
  rawManifest: (pipeline: string, runId: string) => `${pipeline}/${runId}/${MANIFEST_FILE}`,
  changes: (pipeline: string, runId: string) => `${pipeline}/${runId}/changes.parquet`,
  changesManifest: (pipeline: string, runId: string) => `${pipeline}/${runId}/${MANIFEST_FILE}`,
  /** The snapshot manifest the checkpoint points at (SnapshotManifest). */
  snapshot: (pipeline: string, runId: string) => `${pipeline}/snapshots/${runId}.json`,
  snapshotPrefix: (pipeline: string) => `${pipeline}/snapshots/`,
  /** One layer written by a run; the attempt tag keeps a retried transform from overwriting a layer a manifest names. */
  snapshotLayer: (pipeline: string, runId: string, attempt: string) => `${pipeline}/snapshots/${runId}.${attempt}.parquet`,
  quarantine: (pipeline: string, runId: string) => `${pipeline}/${runId}/quarantine.parquet`,
  /** Sampled rows of the transformed batch, compared field by field with the warehouse. */
  sample: (pipeline: string, runId: string) => `${pipeline}/${runId}/sample.parquet`,
  /** In `state`: written once every container, queue and table exists (engine/context.ts ensureStorage); no pipeline name starts with `_`. */
  storageReady: (namesHash: string) => `_tidemark/storage-ready-${namesHash}`,
};

/** Parses `{pipeline}/{runId}/_manifest.json`, the path the blob trigger fires on. */
export function parseManifestPath(name: string): { pipeline: string; runId: string } | undefined {
  const m = /^([a-z][a-z0-9_]{0,62})\/(\d{8}T\d{6}Z-[0-9a-f]{4})\/_manifest\.json$/.exec(name);
  return m ? { pipeline: m[1]!, runId: m[2]! } : undefined;
}

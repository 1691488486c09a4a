import { ConflictError, TransientError } from '../errors.js';
import { TABLES } from '../storage/layout.js';
import type { TableEntity, TableStore } from '../storage/ports.js';

interface RunSequence extends TableEntity {
  /** The last sequence number handed out for the pipeline. */
  last: number;
}

const ROW = 'run-sequence';

/**
 * The next run sequence number of a pipeline (1, 2, …), taken with ETag concurrency when the
 * run starts. Run order is this number, never the run id's text: two ids of the same second
 * sort by their random suffix. Two starters racing for one number both re-read; one gets n,
 * the other n + 1.
 */
export async function nextRunSeq(tables: TableStore, pipeline: string): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const stored = await tables.get<RunSequence>(TABLES.checkpoints, pipeline, ROW);
    const next = (stored?.entity.last ?? 0) + 1;
    const row: RunSequence = { partitionKey: pipeline, rowKey: ROW, last: next };
    try {
      if (stored) await tables.replace(TABLES.checkpoints, row, stored.etag);
      else await tables.insert(TABLES.checkpoints, row);
      return next;
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
    }
  }
  throw new TransientError(`could not take a run sequence number for ${pipeline}: too many concurrent starts`);
}

import { randomUUID } from 'node:crypto';
import { ConflictError, StageBusyError } from '../errors.js';
import { TABLES } from '../storage/layout.js';
import type { TableEntity, TableStore } from '../storage/ports.js';
import { isLocalOwnerGone, thisProcessOwner } from './lease-owner.js';
import type { LeaseOwner } from './leases.js';

interface StageClaim extends TableEntity, LeaseOwner {
  token: string;
  expiresAt: string;
}

export interface ClaimHandle {
  release(): Promise<void>;
}

const rowKey = (runId: string, stage: string) => `claim-${runId}-${stage}`;

/**
 * One delivery of a stage at a time (docs/design.md §5.2 under concurrent duplicates). Azure delivers a
 * message or blob event twice, sometimes to two instances at once; two copies of one stage
 * writing the same run's blobs at the same moment could pair one copy's manifest with the
 * other's parts. A claim row (ETag insert) lets the first copy work; a concurrent copy fails
 * with a StageBusyError, so its message comes back (deferred until the claim would expire) and
 * finds the stage done.
 *
 * A claim names its owner (host, pid, process start time, as a lease does). One left by a local
 * process that is gone is taken over at once (a resumed run, shared/engine/resume.ts, must not
 * wait for it); any other expires after `ttlMs` of wall-clock time (not the engine clock: this
 * measures how long an invocation has been silent), after which the redelivery takes over.
 */
export async function claimStage(
  tables: TableStore,
  args: { pipeline: string; runId: string; stage: string; ttlMs: number; /** Default: this process. */ owner?: LeaseOwner },
): Promise<ClaimHandle> {
  const token = randomUUID();
  const rk = rowKey(args.runId, args.stage);
  const claim: StageClaim = {
    partitionKey: args.pipeline,
    rowKey: rk,
    ...(args.owner ?? thisProcessOwner()),
    token,
    expiresAt: new Date(Date.now() + args.ttlMs).toISOString(),
  };
  const busy = (holder: string, cause?: unknown) =>
    new StageBusyError(
      `stage ${args.stage} of run ${args.runId} (${args.pipeline}) is being processed by another delivery${holder ? ` until ${holder}` : ''}; this one will be retried`,
      // A claim inserted concurrently lasts a whole ttl from about now.
      holder ? Math.max(0, Date.parse(holder) - Date.now()) : args.ttlMs,
      cause === undefined ? undefined : { cause },
    );
  let etag: string;
  try {
    // Insert first: a released claim is deleted, so the row is normally absent and the read
    // before the insert only cost a round trip. A conflict means a row is there: it is read
    // and judged (live: busy; expired or its owner gone: taken over with its ETag) as before.
    etag = (await tables.insert(TABLES.leases, claim)).etag;
  } catch (err) {
    if (!(err instanceof ConflictError)) throw err;
    const stored = await tables.get<StageClaim>(TABLES.leases, args.pipeline, rk);
    try {
      // Gone again between the insert and the read: another delivery's release, so it was busy.
      if (!stored) throw busy('', err);
      if (claimLive(stored.entity)) throw busy(stored.entity.expiresAt);
      etag = (await tables.replace(TABLES.leases, claim, stored.etag)).etag;
    } catch (e) {
      if (e instanceof ConflictError) throw busy('', e);
      throw e;
    }
  }
  return {
    release: async () => {
      await tables.delete(TABLES.leases, args.pipeline, rk, etag).catch((err: unknown) => {
        // Taken over after expiry: the new holder owns the row now.
        if (!(err instanceof ConflictError)) throw err;
      });
    },
  };
}

/** Whether a delivery of the stage holds its claim now (it is working, or died less than its claim's lifetime ago). */
export async function stageInFlight(tables: TableStore, args: { pipeline: string; runId: string; stage: string }): Promise<boolean> {
  const stored = await tables.get<StageClaim>(TABLES.leases, args.pipeline, rowKey(args.runId, args.stage));
  return stored !== undefined && claimLive(stored.entity);
}

/** Unexpired, and not held by a local process that is gone (its work died with it). */
function claimLive(c: StageClaim): boolean {
  return Date.parse(c.expiresAt) > Date.now() && !isLocalOwnerGone(c);
}

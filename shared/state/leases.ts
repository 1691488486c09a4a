import { ConflictError } from '../errors.js';
import { TABLES } from '../storage/layout.js';
import type { TableEntity, TableStore } from '../storage/ports.js';
import { forget, recall, remember } from './known-versions.js';

/**
 * Who holds a lease: the host, pid and process start time of a local process (so a reused pid
 * is not mistaken for the holder), or the Functions invocation in Azure.
 */
export interface LeaseOwner {
  ownerHost?: string;
  ownerPid?: number;
  /** The process start time as the host reports it (Linux: `/proc/<pid>/stat` field 22); absent where it cannot be read. */
  ownerStartTime?: string;
  ownerInvocationId?: string;
}

/** The owner as a person reads it: `build-7 pid 4242`, or the Functions invocation. */
export function leaseOwnerText(o: LeaseOwner): string {
  if (o.ownerHost !== undefined || o.ownerPid !== undefined) return `${o.ownerHost ?? 'unknown host'} pid ${o.ownerPid ?? '?'}`;
  if (o.ownerInvocationId !== undefined) return `Functions invocation ${o.ownerInvocationId}`;
  return 'unknown owner';
}

export interface Lease extends TableEntity, LeaseOwner {
  runId: string;
  acquiredAt: string;
  expiresAt: string;
}

const ROW = 'lease';

/**
 * One run per pipeline in flight (docs/design.md §5.1). The lease row is taken with ETag concurrency;
 * an expired lease belongs to a stuck run, which `onStale` marks failed before it is taken over.
 */
export async function acquireLease(
  tables: TableStore,
  args: {
    pipeline: string;
    runId: string;
    now: Date;
    ttlMs: number;
    isActive: (runId: string) => Promise<boolean>;
    /** `expired`: the lease ran out; `owner-gone`: `isOwnerGone` says its process is dead. */
    onStale: (runId: string, why: 'expired' | 'owner-gone', holder: Lease) => Promise<void>;
    owner?: LeaseOwner;
    isOwnerGone?: (holder: LeaseOwner) => boolean;
  },
): Promise<void> {
  const lease: Lease = {
    partitionKey: args.pipeline,
    rowKey: ROW,
    runId: args.runId,
    ...args.owner,
    acquiredAt: args.now.toISOString(),
    expiresAt: new Date(args.now.getTime() + args.ttlMs).toISOString(),
  };
  const insert = async () => {
    try {
      remember(tables, TABLES.leases, { entity: lease, etag: (await tables.insert(TABLES.leases, lease)).etag });
    } catch (err) {
      if (err instanceof ConflictError) throw new ConflictError(`another run of ${args.pipeline} started at the same moment`, { cause: err });
      throw err;
    }
  };
  let stored = await tables.get<Lease>(TABLES.leases, args.pipeline, ROW);
  if (!stored) return insert();
  const holder = stored.entity;
  if (holder.runId !== args.runId && (await args.isActive(holder.runId))) {
    const expired = new Date(holder.expiresAt).getTime() <= args.now.getTime();
    const gone = !expired && (args.isOwnerGone?.(holder) ?? false);
    if (!expired && !gone) {
      throw new ConflictError(`run ${holder.runId} of ${args.pipeline} is in flight (lease until ${holder.expiresAt})`);
    }
    await args.onStale(holder.runId, expired ? 'expired' : 'owner-gone', holder);
    // Failing the stuck run released its lease row (and so changed its ETag): take over from
    // what is there now, or every takeover of a stuck run would fail as a conflict.
    stored = await tables.get<Lease>(TABLES.leases, args.pipeline, ROW);
    if (!stored) return insert();
    if (stored.entity.runId !== holder.runId) throw new ConflictError(`another run of ${args.pipeline} took the lease first`);
  }
  try {
    remember(tables, TABLES.leases, { entity: lease, etag: (await tables.replace(TABLES.leases, lease, stored.etag)).etag });
  } catch (err) {
    if (err instanceof ConflictError) throw new ConflictError(`another run of ${args.pipeline} took the lease first`, { cause: err });
    throw err;
  }
}

/**
 * Renew and release first try the lease version this process took or last renewed
 * (known-versions.ts) instead of reading it: the write is ETag-guarded, so it only succeeds if
 * the row is still exactly the run's own lease. On 412 (renewed or taken over by someone else,
 * released) they read it and decide as before; "not ours, leave it" is only decided on that read.
 */
async function ownRememberedLease(tables: TableStore, pipeline: string, runId: string, write: (known: { entity: Lease; etag: string }) => Promise<void>): Promise<boolean> {
  const known = recall<Lease>(tables, TABLES.leases, pipeline, ROW);
  if (!known || known.entity.runId !== runId) return false;
  try {
    await write(known);
    return true;
  } catch (err) {
    forget(tables, TABLES.leases, pipeline, ROW);
    if (err instanceof ConflictError) return false;
    throw err;
  }
}

export async function renewLease(tables: TableStore, pipeline: string, runId: string, now: Date, ttlMs: number): Promise<void> {
  const expiresAt = new Date(now.getTime() + ttlMs).toISOString();
  const renew = async (s: { entity: Lease; etag: string }) => {
    const entity = { ...s.entity, expiresAt };
    remember(tables, TABLES.leases, { entity, etag: (await tables.replace(TABLES.leases, entity, s.etag)).etag });
  };
  if (await ownRememberedLease(tables, pipeline, runId, renew)) return;
  const stored = await tables.get<Lease>(TABLES.leases, pipeline, ROW);
  if (!stored || stored.entity.runId !== runId) return;
  await renew(stored).catch((err: unknown) => {
    if (!(err instanceof ConflictError)) throw err;
  });
}

export async function releaseLease(tables: TableStore, pipeline: string, runId: string): Promise<void> {
  const release = async (s: { etag: string }) => {
    await tables.delete(TABLES.leases, pipeline, ROW, s.etag);
    forget(tables, TABLES.leases, pipeline, ROW);
  };
  if (await ownRememberedLease(tables, pipeline, runId, release)) return;
  const stored = await tables.get<Lease>(TABLES.leases, pipeline, ROW);
  if (!stored || stored.entity.runId !== runId) return;
  await release(stored).catch((err: unknown) => {
    if (!(err instanceof ConflictError)) throw err;
  });
}

export async function readLease(tables: TableStore, pipeline: string): Promise<Lease | undefined> {
  return (await tables.get<Lease>(TABLES.leases, pipeline, ROW))?.entity;
}

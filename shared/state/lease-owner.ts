import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { LeaseOwner } from './leases.js';

/** A process's start time (clock ticks since boot, `/proc/<pid>/stat` field 22); undefined off Linux or when the pid is gone. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

let self: LeaseOwner | undefined;

/** This process as a lease owner; read once, since neither its pid nor its start time changes. */
export function thisProcessOwner(): LeaseOwner {
  if (!self) {
    const start = processStartTime(process.pid);
    self = { ownerHost: hostname(), ownerPid: process.pid, ...(start ? { ownerStartTime: start } : {}) };
  }
  return self;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the pid exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether a lease holder is a process of this host that no longer runs: its pid is gone, or the
 * pid now belongs to a process started at another time. Holders on other hosts, in Azure
 * (invocation only) or written before owners were recorded are never judged gone: they keep the
 * lease until it expires.
 */
export function isLocalOwnerGone(holder: LeaseOwner): boolean {
  if (holder.ownerHost !== hostname() || typeof holder.ownerPid !== 'number') return false;
  if (!pidAlive(holder.ownerPid)) return true;
  if (holder.ownerStartTime === undefined) return false;
  const now = processStartTime(holder.ownerPid);
  return now !== undefined && now !== holder.ownerStartTime;
}

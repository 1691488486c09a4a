import { readFileSync, writeFileSync } from 'node:fs';

/** A `VmRSS:`/`VmHWM:` line of /proc/<pid>/status in bytes; null off Linux or when the process is gone. */
export function procStatusBytes(pid: number | 'self', field: 'VmRSS' | 'VmHWM'): number | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    return parseProcStatusField(text, field);
  } catch {
    return null;
  }
}

export function parseProcStatusField(text: string, field: string): number | null {
  const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
  return m ? Number(m[1]) * 1024 : null;
}

/**
 * Resets the kernel's peak-RSS mark (VmHWM) of a process we own: writing 5 to clear_refs
 * (Linux ≥ 4.0). Without it VmHWM would carry the peak of an earlier scenario.
 */
function resetPeak(pid: number | 'self'): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * Peak RSS of this process (and optionally of a child, counted apart) over one measurement:
 * the kernel's VmHWM after a reset where available, and an interval sample of the current RSS
 * as the fallback and cross-check; the larger of the two is reported.
 */
export class PeakMonitor {
  private timer: NodeJS.Timeout | undefined;
  private selfPeak = 0;
  private childPeak = 0;
  private selfReset = false;
  private childReset = false;

  constructor(
    private readonly childPid: number | undefined,
    private readonly intervalMs = 50,
  ) {}

  start(): void {
    this.selfPeak = process.memoryUsage().rss;
    this.childPeak = 0;
    this.selfReset = resetPeak('self');
    this.childReset = this.childPid !== undefined && resetPeak(this.childPid);
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
  }

  private sample(): void {
    this.selfPeak = Math.max(this.selfPeak, process.memoryUsage().rss);
    if (this.childPid !== undefined) this.childPeak = Math.max(this.childPeak, procStatusBytes(this.childPid, 'VmRSS') ?? 0);
  }

  stop(): { selfBytes: number; childBytes: number | null } {
    if (this.timer) clearInterval(this.timer);
    this.sample();
    const hwm = this.selfReset ? (procStatusBytes('self', 'VmHWM') ?? 0) : 0;
    const childHwm = this.childReset && this.childPid !== undefined ? (procStatusBytes(this.childPid, 'VmHWM') ?? 0) : 0;
    return {
      selfBytes: Math.max(this.selfPeak, hwm),
      childBytes: this.childPid === undefined ? null : Math.max(this.childPeak, childHwm),
    };
  }
}

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/**
 * CPU seconds (user + system, all threads) a process has used so far, from /proc/<pid>/stat;
 * null off Linux or when the process is gone. Read before and after a measurement, the
 * difference is what the process spent on it — Azurite's share apart from tidemark's.
 */
export function cpuSeconds(pid: number | 'self'): number | null {
  try {
    return parseProcStatCpu(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

export function parseProcStatCpu(text: string): number | null {
  // The command name (field 2) is in parentheses and may hold spaces: count fields after it.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? (utime + stime) / USER_HZ : null;
}

/** CPU seconds of a process between `start()` and `stop()`; null where it cannot be read. */
export class CpuMeter {
  private readonly from: number | null;
  constructor(private readonly pid: number | 'self' | undefined) {
    this.from = pid === undefined ? null : cpuSeconds(pid);
  }
  stop(): number | null {
    if (this.pid === undefined || this.from === null) return null;
    const to = cpuSeconds(this.pid);
    return to === null ? null : to - this.from;
  }
}

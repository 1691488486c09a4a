import { app, type InvocationContext, type Timer } from '@azure/functions';
import { appContext } from '../shared/engine/app-context.js';
import { dailyHousekeeping } from '../shared/engine/housekeeping.js';
import { invocationSink } from './log-sink.js';

/**
 * Daily at 03:00 UTC: drops backup copies past their expiry (pipeline `backup.keep`), the
 * snapshot layers no committed run can be rewound to, and finished runs' data files past
 * TIDEMARK_RUN_FILES_KEEP_DAYS.
 */
export async function backupExpiryHandler(_timer: Timer, ic: InvocationContext): Promise<void> {
  const ctx = await appContext(invocationSink(ic));
  const dropped = await dailyHousekeeping(ctx);
  if (dropped.length) ic.log(`housekeeping removed: ${dropped.join(', ')}`);
}

app.timer('backupExpiry', { schedule: '0 0 3 * * *', handler: backupExpiryHandler });

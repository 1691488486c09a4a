import { app, type InvocationContext, type Timer } from '@azure/functions';
import { appContext } from '../shared/engine/app-context.js';
import { dropExpiredBackups } from '../shared/rollback/backups.js';
import { invocationSink } from './log-sink.js';

/** Daily at 03:00 UTC: drops backup copies past their expiry (pipeline `backup.keep`). */
export async function backupExpiryHandler(_timer: Timer, ic: InvocationContext): Promise<void> {
  const ctx = await appContext(invocationSink(ic));
  const dropped = await dropExpiredBackups(ctx);
  if (dropped.length) ic.log(`dropped expired backups: ${dropped.join(', ')}`);
}

app.timer('backupExpiry', { schedule: '0 0 3 * * *', handler: backupExpiryHandler });

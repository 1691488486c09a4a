import { describe, expect, it } from 'vitest';
import { deferBusyDelivery } from '../../../shared/engine/messages.js';
import { StageBusyError } from '../../../shared/errors.js';
import type { QueuePort } from '../../../shared/storage/ports.js';

function recordingQueues(): QueuePort & { sent: Array<{ queue: string; body: unknown; seconds: number | undefined }> } {
  const sent: Array<{ queue: string; body: unknown; seconds: number | undefined }> = [];
  return { sent, ensureQueues: async () => undefined, send: async (queue, body, o) => void sent.push({ queue, body, seconds: o?.visibilityTimeoutSeconds }) };
}

describe('deferBusyDelivery: a delivery turned away by a stage claim comes back when the claim would expire', () => {
  const msg = { pipeline: 'p', runId: '20260101T000000Z-abcd', partition: 2 };

  it('sends the same pointer, visible one second after the holder claim expires', async () => {
    const q = recordingQueues();
    await deferBusyDelivery(q, 'extract', msg, new StageBusyError('busy', 61_500));
    expect(q.sent).toEqual([{ queue: 'extract', body: msg, seconds: 63 }]);
  });

  it('a claim that just expired: visible after one second, never at once (no hot loop)', async () => {
    const q = recordingQueues();
    await deferBusyDelivery(q, 'merge', msg, new StageBusyError('busy', 0));
    expect(q.sent[0]!.seconds).toBe(1);
  });

  it('never past the queue limit of seven days', async () => {
    const q = recordingQueues();
    await deferBusyDelivery(q, 'merge', msg, new StageBusyError('busy', 30 * 24 * 3600_000));
    expect(q.sent[0]!.seconds).toBe(7 * 24 * 3600);
  });
});

import { z } from 'zod';
import { PIPELINE_NAME_PATTERN, RUN_ID_PATTERN } from '../config/identifiers.js';
import { TerminalError, type StageBusyError } from '../errors.js';
import type { QueuePort } from '../storage/ports.js';

/** Queue messages carry pointers, never data (64 KB cap): a pipeline and a run id. */
export const stageMessageSchema = z.strictObject({
  pipeline: z.string().regex(PIPELINE_NAME_PATTERN),
  runId: z.string().regex(RUN_ID_PATTERN),
  /** Extract only: the key-range partition of a partitioned full read (see partitioned-extract.ts). */
  partition: z.number().int().min(0).max(999).optional(),
});

export type StageMessage = z.infer<typeof stageMessageSchema>;

export function parseStageMessage(queue: string, body: unknown): StageMessage {
  const parsed = stageMessageSchema.safeParse(typeof body === 'string' ? safeJson(body) : body);
  if (!parsed.success) {
    throw new TerminalError(
      `malformed ${queue} message: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
      { cause: parsed.error },
    );
  }
  return parsed.data;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Azure Storage's longest initial visibility for a message (7 days). */
const MAX_VISIBILITY_SECONDS = 7 * 24 * 3600;

/**
 * A delivery turned away by a stage claim (StageBusyError) is not retried on the queue's short
 * schedule: a fresh copy is sent that becomes visible when the holder's claim would expire, and
 * this delivery completes. The copy keeps at-least-once (the holder may die), and the dequeue
 * count of a healthy run never climbs towards poison while another delivery works.
 */
export async function deferBusyDelivery(queues: QueuePort, queue: string, msg: StageMessage, err: StageBusyError): Promise<void> {
  const seconds = Math.min(MAX_VISIBILITY_SECONDS, Math.ceil(err.retryAfterMs / 1000) + 1);
  await queues.send(queue, msg, { visibilityTimeoutSeconds: seconds });
}

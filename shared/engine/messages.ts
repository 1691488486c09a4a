import { z } from 'zod';
import { PIPELINE_NAME_PATTERN, RUN_ID_PATTERN } from '../config/identifiers.js';
import { TerminalError } from '../errors.js';

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

import { z } from 'zod';
import { parseManifestPath } from '../storage/layout.js';
import { telemetryOf } from '../telemetry/telemetry.js';
import type { EngineContext } from './context.js';
import { failRun } from './run-lifecycle.js';

/**
 * What the Functions host writes to `webjobs-blobtrigger-poison` when a blob-triggered function
 * (our transform) failed on every attempt (Microsoft.Azure.WebJobs.Extensions.Storage:
 * BlobTriggerPoisonMessage, property names as serialized).
 */
const blobPoisonSchema = z.looseObject({
  ContainerName: z.string(),
  BlobName: z.string(),
});

/** Fails the run whose raw manifest poisoned the transform, and emits MessagePoisoned for the alert. */
export async function failPoisonedBlob(ctx: EngineContext, message: unknown): Promise<void> {
  const parsed = blobPoisonSchema.safeParse(typeof message === 'string' ? safeJson(message) : message);
  const ref = parsed.success ? parseManifestPath(parsed.data.BlobName) : undefined;
  telemetryOf(ctx).event('MessagePoisoned', { pipeline: ref?.pipeline ?? '', runId: ref?.runId ?? '', queue: 'webjobs-blobtrigger' });
  if (!parsed.success || !ref) {
    ctx.log.log('error', 'unreadable message in webjobs-blobtrigger-poison', { message: JSON.stringify(message).slice(0, 500) });
    return;
  }
  ctx.log.log('error', `transform of ${parsed.data.ContainerName}/${parsed.data.BlobName} poisoned; failing the run`, ref);
  await failRun(ctx, ref.pipeline, ref.runId, 'poisoned in the transform blob trigger: it failed on every delivery (see the transform log lines)');
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

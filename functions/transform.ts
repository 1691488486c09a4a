import { app, type InvocationContext } from '@azure/functions';
import { appContext } from '../shared/engine/app-context.js';
import { transformStage } from '../shared/engine/stages.js';
import { CONTAINERS } from '../shared/storage/layout.js';
import { invocationSink } from './log-sink.js';

/**
 * Blob trigger on `raw/{pipeline}/{runId}/_manifest.json` (written last by the extract).
 * On Flex Consumption a blob trigger must use the Event Grid source (docs/design.md §12).
 */
export async function transformHandler(_blob: unknown, ic: InvocationContext): Promise<void> {
  const ctx = await appContext(invocationSink(ic));
  const meta = ic.triggerMetadata ?? {};
  const name = `${String(meta.pipeline)}/${String(meta.runId)}/_manifest.json`;
  await transformStage(ctx, name);
}

app.storageBlob('transform', {
  path: `${CONTAINERS.raw}/{pipeline}/{runId}/_manifest.json`,
  connection: 'AzureWebJobsStorage',
  source: 'EventGrid',
  handler: transformHandler,
});

import { startAzurite, type AzuriteHandle } from '../../shared/local/azurite.js';

/** One in-memory Azurite per test file, on free ports, so files run in parallel without sharing queues. */
export async function withAzurite(): Promise<AzuriteHandle> {
  return startAzurite();
}

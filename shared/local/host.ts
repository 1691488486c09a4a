import type { QueueServiceClient } from '@azure/storage-queue';
import { functionTimeoutMs } from '../engine/stage-timeout.js';
import { errorMessage, isTerminal } from '../errors.js';
import type { EngineContext } from '../engine/context.js';
import { parseStageMessage, stageMessageSchema } from '../engine/messages.js';
import { extractStage, mergeStage, transformStage, validateStage, type StageOutcome } from '../engine/stages.js';
import { failRun } from '../engine/start-run.js';
import { decodeQueueMessage } from '../storage/azure-storage.js';
import type { TableEntity } from '../storage/ports.js';
import { CONTAINERS, POISON_SUFFIX, QUEUES, TABLES, parseManifestPath } from '../storage/layout.js';

export interface LocalHostOptions {
  queueService: QueueServiceClient;
  /** Same meaning as host.json `maxDequeueCount`. */
  maxDequeueCount?: number;
  /** Delay before a failed message is visible again (host.json `visibilityTimeout`). */
  retryDelaySeconds?: number;
  /** How long a received message stays invisible while its handler runs. */
  processingTimeoutSeconds?: number;
  idlePollMs?: number;
}

export const BLOB_POISON_QUEUE = 'webjobs-blobtrigger-poison';

interface Receipt extends TableEntity {
  partitionKey: string;
  rowKey: string;
  /** The manifest's ETag when it was handled. Not `etag`: the table store reserves that name for the entity's own. */
  blobEtag: string;
  status: 'done' | 'failed' | 'poisoned';
  failures: number;
}

/**
 * The local stand-in for the Functions host (docs/design.md §13): it polls the real Azurite queues with
 * real visibility timeouts and dequeue counts, moves messages that keep failing to `-poison`,
 * and fires the transform for new manifests in `raw` with receipts, as the blob trigger does.
 * It calls the same shared/ stage functions the Azure Functions in functions/ call.
 */
export class LocalHost {
  private readonly maxDequeueCount: number;
  private readonly retryDelaySeconds: number;
  private readonly processingTimeoutSeconds: number;
  private readonly idlePollMs: number;
  private stopped = false;

  constructor(
    readonly ctx: EngineContext,
    private readonly o: LocalHostOptions,
  ) {
    this.maxDequeueCount = o.maxDequeueCount ?? 5;
    this.retryDelaySeconds = o.retryDelaySeconds ?? 1;
    // As long as an invocation may run in Azure (functionTimeout), like the stage claim.
    this.processingTimeoutSeconds = o.processingTimeoutSeconds ?? Math.ceil(functionTimeoutMs(process.env) / 1000);
    this.idlePollMs = o.idlePollMs ?? 100;
  }

  private async handleQueue(queue: string, handler: (body: unknown) => Promise<StageOutcome>): Promise<number> {
    const client = this.o.queueService.getQueueClient(queue);
    const res = await client.receiveMessages({ numberOfMessages: 1, visibilityTimeout: this.processingTimeoutSeconds });
    let handled = 0;
    for (const m of res.receivedMessageItems) {
      handled++;
      let body: unknown;
      try {
        body = decodeQueueMessage(m.messageText);
        await handler(body);
        await client.deleteMessage(m.messageId, m.popReceipt);
      } catch (err) {
        // A malformed message fails the same way every time: straight to poison, no retries.
        if (isTerminal(err) || m.dequeueCount >= this.maxDequeueCount) {
          await this.poison(queue, m.messageText, body, err, m.dequeueCount);
          await client.deleteMessage(m.messageId, m.popReceipt);
        } else {
          await client.updateMessage(m.messageId, m.popReceipt, undefined, this.retryDelaySeconds);
        }
      }
    }
    return handled;
  }

  private async poison(queue: string, text: string, body: unknown, err: unknown, attempts: number): Promise<void> {
    await this.o.queueService.getQueueClient(`${queue}${POISON_SUFFIX}`).sendMessage(text);
    // Only a well-formed pointer names a run; anything else in a poisoned message is not trusted.
    const parsed = stageMessageSchema.safeParse(body);
    const ref = parsed.success ? parsed.data : undefined;
    this.ctx.log.log('error', `message moved to ${queue}${POISON_SUFFIX} after ${attempts} attempt(s): ${errorMessage(err)}`, {
      ...(ref ? { pipeline: ref.pipeline, runId: ref.runId } : {}),
    });
    if (ref) {
      await failRun(this.ctx, ref.pipeline, ref.runId, `poisoned in ${queue} after ${attempts} attempt(s): ${errorMessage(err)}`).catch(() => undefined);
    }
  }

  private async scanManifests(): Promise<number> {
    let handled = 0;
    for await (const b of this.ctx.blobs.list(CONTAINERS.raw, '')) {
      const ref = parseManifestPath(b.name);
      if (!ref) continue;
      const rowKey = encodeURIComponent(b.name);
      const receipt = await this.ctx.tables.get<Receipt>(TABLES.blobReceipts, CONTAINERS.raw, rowKey);
      if (receipt && receipt.entity.blobEtag === b.etag && receipt.entity.status !== 'failed') continue;
      const failures = receipt && receipt.entity.blobEtag === b.etag ? receipt.entity.failures : 0;
      handled++;
      try {
        await transformStage(this.ctx, b.name);
        await this.ctx.tables.upsert(TABLES.blobReceipts, { partitionKey: CONTAINERS.raw, rowKey, blobEtag: b.etag, status: 'done', failures });
      } catch (err) {
        const n = failures + 1;
        const poisoned = n >= this.maxDequeueCount;
        await this.ctx.tables.upsert(TABLES.blobReceipts, {
          partitionKey: CONTAINERS.raw,
          rowKey,
          blobEtag: b.etag,
          status: poisoned ? 'poisoned' : 'failed',
          failures: n,
        });
        if (poisoned) {
          await this.o.queueService.getQueueClient(BLOB_POISON_QUEUE).createIfNotExists();
          await this.poison('webjobs-blobtrigger', JSON.stringify({ container: CONTAINERS.raw, blob: b.name }), ref, err, n);
        }
      }
    }
    return handled;
  }

  /** One pass over every trigger source; returns how many items were handled. */
  async pollOnce(): Promise<number> {
    let n = 0;
    n += await this.handleQueue(QUEUES.extract, (b) => extractStage(this.ctx, parseStageMessage(QUEUES.extract, b)));
    n += await this.scanManifests();
    n += await this.handleQueue(QUEUES.merge, (b) => mergeStage(this.ctx, parseStageMessage(QUEUES.merge, b)));
    n += await this.handleQueue(QUEUES.validate, (b) => validateStage(this.ctx, parseStageMessage(QUEUES.validate, b)));
    return n;
  }

  /** Drives the triggers until `done()` holds or the timeout passes. */
  async runUntil(done: () => Promise<boolean>, timeoutMs = 10 * 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.stopped) {
      if (await done()) return;
      if (Date.now() > deadline) throw new Error(`the local host timed out after ${Math.round(timeoutMs / 1000)} s`);
      const n = await this.pollOnce();
      if (n === 0) await new Promise((r) => setTimeout(r, this.idlePollMs));
    }
  }

  /** Runs until stop(); used by `tidemark dev`. Errors of one pass are logged, not fatal. */
  async loop(): Promise<void> {
    while (!this.stopped) {
      let n = 0;
      try {
        n = await this.pollOnce();
      } catch (err) {
        this.ctx.log.log('error', `local host pass failed: ${errorMessage(err)}`);
      }
      if (n === 0) await new Promise((r) => setTimeout(r, this.idlePollMs * 5));
    }
  }

  stop(): void {
    this.stopped = true;
  }
}

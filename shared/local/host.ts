import { RestError, type QueueServiceClient } from '@azure/storage-queue';
import { functionTimeoutMs } from '../engine/stage-timeout.js';
import { StageBusyError, errorMessage, isTerminal } from '../errors.js';
import type { EngineContext } from '../engine/context.js';
import { deferBusyDelivery, parseStageMessage, stageMessageSchema } from '../engine/messages.js';
import { extractStage, mergeStage, transformStage, validateStage, type StageOutcome } from '../engine/stages.js';
import { failRun } from '../engine/run-lifecycle.js';
import { startRun } from '../engine/start-run.js';
import { decodeQueueMessage } from '../storage/azure-storage.js';
import type { BlobStore, QueuePort, TableEntity } from '../storage/ports.js';
import { CONTAINERS, POISON_SUFFIX, QUEUES, TABLES, parseManifestPath } from '../storage/layout.js';

export interface LocalHostOptions {
  queueService: QueueServiceClient;
  /** Same meaning as host.json `maxDequeueCount`. */
  maxDequeueCount?: number;
  /** Delay before a failed message is visible again (host.json `visibilityTimeout`). */
  retryDelaySeconds?: number;
  /** How long a received message stays invisible while its handler runs. */
  processingTimeoutSeconds?: number;
  /** How long an idle host waits before it looks at the queues again (work it enqueued itself wakes it at once). */
  idlePollMs?: number;
  /** How many messages and manifests are handled at once, like instances × batch size in Azure (`tidemark dev --workers N`). Default 1. */
  workers?: number;
  /** Test only: every message and manifest is handed to two workers at once, as an at-least-once queue may deliver it twice. */
  duplicateDeliveries?: boolean;
  /** Test only: the first delivery of every message lapses its visibility as soon as its handler starts, so another worker receives it while the first still works (a redelivery after the visibility timeout). */
  redeliverWhileRunning?: boolean;
}

export const BLOB_POISON_QUEUE = 'webjobs-blobtrigger-poison';

/** The blob trigger's source, as a name beside the queues' for the dispatcher's hints. */
const MANIFESTS = 'raw manifests';

/** While work keeps waking the host, it still looks at everything this often (retries coming due, other processes' work). */
const FULL_PASS_MS = 1000;

interface Receipt extends TableEntity {
  partitionKey: string;
  rowKey: string;
  /** The manifest's ETag when it was handled. Not `etag`: the table store reserves that name for the entity's own. */
  blobEtag: string;
  status: 'done' | 'failed' | 'poisoned';
  failures: number;
}

/** What one receive returns per message. */
interface Delivery {
  messageId: string;
  popReceipt: string;
  messageText: string;
  dequeueCount: number;
}

type Handler = (body: unknown) => Promise<StageOutcome>;

interface DueManifest {
  name: string;
  etag: string;
  failures: number;
}

/** A delete or visibility update that lost to another delivery of the same message (already deleted, or received again since). */
function lostToAnotherDelivery(err: unknown): boolean {
  const status = err instanceof RestError ? err.statusCode : (err as { statusCode?: number } | undefined)?.statusCode;
  return status === 404 || status === 400;
}

/**
 * The local stand-in for the Functions host (docs/design.md §13): it polls the real Azurite queues with
 * real visibility timeouts and dequeue counts, moves messages that keep failing to `-poison`,
 * and fires the transform for new manifests in `raw` with receipts, as the blob trigger does.
 * It calls the same shared/ stage functions the Azure Functions in functions/ call.
 *
 * `workers` messages are handled at once (partitions of one run in parallel, two pipelines side
 * by side), as scale-out does in Azure; the stage claims and the ledger keep that exactly-once.
 * Work this process enqueues or publishes wakes the dispatcher at once (watchQueues /
 * watchBlobs), so a run's happy path never waits on the idle poll.
 */
export class LocalHost {
  private readonly maxDequeueCount: number;
  private readonly retryDelaySeconds: number;
  private readonly processingTimeoutSeconds: number;
  private readonly idlePollMs: number;
  private readonly workers: number;
  private readonly copies: number;
  private readonly inFlight = new Set<Promise<void>>();
  /** Manifest name → copies of its transform running here. */
  private readonly transforming = new Map<string, number>();
  /** Manifest name → the ETag whose receipt says done: skipped without a table read. */
  private readonly handled = new Map<string, string>();
  /** Manifest name → earliest time to fire it again (its transform is claimed by another process). */
  private readonly deferredBlobs = new Map<string, number>();
  /** Messages whose test-only early redelivery happened. */
  private readonly redelivered = new Set<string>();
  private readonly queueOrder: Array<[string, Handler]>;
  private turn = 0;
  /** Sources (queue names, MANIFESTS) this process just gave work: looked at on the next pass without a full scan. */
  private readonly hinted = new Set<string>();
  /** Sources whose last look filled every free worker: there may be more right now. */
  private readonly backlog = new Set<string>();
  private lastFullPass = 0;
  /** Manifests this process wrote (name → ETag): transformed without listing the container. */
  private readonly ownManifests = new Map<string, string>();
  /** A worker finished since `done()` was last asked: the only moment (besides a quiet period) its answer can change here. */
  private finished = true;
  private woken = false;
  private wakeUp: (() => void) | undefined;
  private stopped = false;
  /** What the host saw, for tests and the dev banner: how busy it got and how often deliveries met. */
  readonly stats = { maxInFlight: 0, deferredBusy: 0, settledByOther: 0 };

  constructor(
    readonly ctx: EngineContext,
    private readonly o: LocalHostOptions,
  ) {
    this.maxDequeueCount = o.maxDequeueCount ?? 5;
    this.retryDelaySeconds = o.retryDelaySeconds ?? 1;
    // As long as an invocation may run in Azure (functionTimeout), like the stage claim.
    this.processingTimeoutSeconds = o.processingTimeoutSeconds ?? Math.ceil(functionTimeoutMs(process.env) / 1000);
    this.idlePollMs = o.idlePollMs ?? 100;
    this.workers = Math.max(1, Math.floor(o.workers ?? 1));
    this.copies = o.duplicateDeliveries ? 2 : 1;
    this.queueOrder = [
      [QUEUES.extract, (b) => extractStage(this.ctx, parseStageMessage(QUEUES.extract, b))],
      [QUEUES.merge, (b) => mergeStage(this.ctx, parseStageMessage(QUEUES.merge, b))],
      [QUEUES.validate, (b) => validateStage(this.ctx, parseStageMessage(QUEUES.validate, b), startRun)],
    ];
  }

  /** Lets the dispatcher look for work now instead of at the next idle poll; `source` says where (a queue, or MANIFESTS). */
  wake(source?: string): void {
    if (source) this.hinted.add(source);
    this.woken = true;
    this.wakeUp?.();
  }

  /** The queue port with every send waking this host: a message it enqueued goes to a free worker at once. */
  watchQueues(inner: QueuePort): QueuePort {
    return {
      ensureQueues: (names) => inner.ensureQueues(names),
      send: async (queue, body, options) => {
        await inner.send(queue, body, options);
        if (!options?.visibilityTimeoutSeconds) this.wake(queue);
      },
    };
  }

  /** The blob port with a written run manifest waking this host (the blob trigger's event). */
  watchBlobs(inner: BlobStore): BlobStore {
    return {
      ensureContainers: (names) => inner.ensureContainers(names),
      uploadFile: (container, name, localPath) => inner.uploadFile(container, name, localPath),
      downloadToFile: (container, name, localPath) => inner.downloadToFile(container, name, localPath),
      putText: async (container, name, text) => {
        const r = await inner.putText(container, name, text);
        if (container === CONTAINERS.raw && parseManifestPath(name)) {
          this.ownManifests.set(name, r.etag);
          this.wake(MANIFESTS);
        }
        return r;
      },
      getText: (container, name) => inner.getText(container, name),
      exists: (container, name) => inner.exists(container, name),
      list: (container, prefix) => inner.list(container, prefix),
      deletePrefix: (container, prefix) => inner.deletePrefix(container, prefix),
    };
  }

  private async receive(queue: string, max: number): Promise<Delivery[]> {
    const res = await this.o.queueService
      .getQueueClient(queue)
      .receiveMessages({ numberOfMessages: Math.min(32, max), visibilityTimeout: this.processingTimeoutSeconds });
    return res.receivedMessageItems;
  }

  /** Settles a message; losing to another delivery of it is the normal at-least-once case, not an error. */
  private async settle(queue: string, op: () => Promise<unknown>): Promise<void> {
    try {
      await op();
    } catch (err) {
      if (!lostToAnotherDelivery(err)) throw err;
      this.stats.settledByOther++;
      this.ctx.log.log('debug', `a message of ${queue} was settled by another delivery: ${errorMessage(err)}`);
    }
  }

  private async handleMessage(queue: string, m: Delivery, handler: Handler): Promise<void> {
    const client = this.o.queueService.getQueueClient(queue);
    let popReceipt = m.popReceipt;
    let body: unknown;
    try {
      body = decodeQueueMessage(m.messageText);
      if (this.o.redeliverWhileRunning && !this.redelivered.has(m.messageId)) {
        this.redelivered.add(m.messageId);
        popReceipt = (await client.updateMessage(m.messageId, popReceipt, undefined, 0)).popReceipt ?? popReceipt;
        this.wake(queue);
      }
      await handler(body);
      await this.settle(queue, () => client.deleteMessage(m.messageId, popReceipt));
    } catch (err) {
      if (err instanceof StageBusyError) {
        this.stats.deferredBusy++;
        await deferBusyDelivery(this.ctx.queues, queue, parseStageMessage(queue, body), err);
        await this.settle(queue, () => client.deleteMessage(m.messageId, popReceipt));
        return;
      }
      // A malformed message fails the same way every time: straight to poison, no retries.
      if (isTerminal(err) || m.dequeueCount >= this.maxDequeueCount) {
        await this.poison(queue, m.messageText, body, err, m.dequeueCount);
        await this.settle(queue, () => client.deleteMessage(m.messageId, popReceipt));
      } else {
        await this.settle(queue, () => client.updateMessage(m.messageId, popReceipt, undefined, this.retryDelaySeconds));
      }
    }
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

  /** Manifests in `raw` whose transform is due: new or changed since their receipt, or failed before. */
  private async dueManifests(max: number): Promise<DueManifest[]> {
    const due: DueManifest[] = [];
    if (max <= 0) return due;
    for await (const b of this.ctx.blobs.list(CONTAINERS.raw, '')) {
      if (!parseManifestPath(b.name) || this.transforming.has(b.name) || this.handled.get(b.name) === b.etag) continue;
      if ((this.deferredBlobs.get(b.name) ?? 0) > Date.now()) continue;
      const rowKey = encodeURIComponent(b.name);
      const receipt = await this.ctx.tables.get<Receipt>(TABLES.blobReceipts, CONTAINERS.raw, rowKey);
      if (receipt && receipt.entity.blobEtag === b.etag && receipt.entity.status !== 'failed') {
        this.handled.set(b.name, b.etag);
        continue;
      }
      due.push({ name: b.name, etag: b.etag, failures: receipt && receipt.entity.blobEtag === b.etag ? receipt.entity.failures : 0 });
      if (due.length >= max) break;
    }
    return due;
  }

  private async handleManifest(item: DueManifest): Promise<void> {
    const rowKey = encodeURIComponent(item.name);
    try {
      await transformStage(this.ctx, item.name);
      await this.ctx.tables.upsert(TABLES.blobReceipts, { partitionKey: CONTAINERS.raw, rowKey, blobEtag: item.etag, status: 'done', failures: item.failures });
      this.handled.set(item.name, item.etag);
    } catch (err) {
      if (err instanceof StageBusyError) {
        this.stats.deferredBusy++;
        // Another delivery transforms it; not a failure. Looked at again later in case it dies.
        this.deferredBlobs.set(item.name, Date.now() + Math.min(err.retryAfterMs, Math.max(1, this.retryDelaySeconds) * 1000));
        return;
      }
      const n = item.failures + 1;
      const poisoned = n >= this.maxDequeueCount;
      await this.ctx.tables.upsert(TABLES.blobReceipts, {
        partitionKey: CONTAINERS.raw,
        rowKey,
        blobEtag: item.etag,
        status: poisoned ? 'poisoned' : 'failed',
        failures: n,
      });
      if (poisoned) {
        await this.o.queueService.getQueueClient(BLOB_POISON_QUEUE).createIfNotExists();
        await this.poison('webjobs-blobtrigger', JSON.stringify({ container: CONTAINERS.raw, blob: item.name }), parseManifestPath(item.name), err, n);
      }
    }
  }

  /** One pass over every trigger source, one item at a time; returns how many items were handled. */
  async pollOnce(): Promise<number> {
    let n = 0;
    const [extract, merge, validate] = this.queueOrder;
    const one = async ([queue, handler]: [string, Handler]) => {
      const got = await this.receive(queue, 1);
      for (const m of got) await this.handleMessage(queue, m, handler);
      return got.length;
    };
    n += await one(extract!);
    for (const item of await this.dueManifests(Number.POSITIVE_INFINITY)) {
      n++;
      await this.handleManifest(item);
    }
    n += await one(merge!);
    n += await one(validate!);
    return n;
  }

  private start(task: () => Promise<void>): void {
    const p: Promise<void> = task()
      .catch((err: unknown) => this.ctx.log.log('error', `local host worker failed: ${errorMessage(err)}`))
      .finally(() => {
        this.inFlight.delete(p);
        this.finished = true;
        this.wake();
      });
    this.inFlight.add(p);
    this.stats.maxInFlight = Math.max(this.stats.maxInFlight, this.inFlight.size);
  }

  /**
   * Hands due work to free workers; returns how many items it started. A full pass looks at every
   * queue and the manifests; a pass woken by this process's own work looks only where that work
   * went (and where workers were short), so a run's next stage costs one receive, not a scan.
   */
  private async dispatch(full: boolean): Promise<number> {
    const free = () => this.workers - this.inFlight.size;
    const due = (source: string) => {
      const look = full || this.hinted.has(source) || this.backlog.has(source);
      this.hinted.delete(source);
      return look;
    };
    let started = 0;
    // The queue looked at first rotates, so a long extract backlog does not starve merges.
    const first = this.turn++ % this.queueOrder.length;
    const order = [...this.queueOrder.slice(first), ...this.queueOrder.slice(0, first)];
    for (const [queue, handler] of order) {
      if (free() > 0 && due(queue)) {
        const max = free();
        const got = await this.receive(queue, max);
        if (got.length >= max) this.backlog.add(queue);
        else this.backlog.delete(queue);
        for (const m of got) {
          for (let c = 0; c < this.copies; c++) this.start(() => this.handleMessage(queue, m, handler));
          started++;
        }
      }
      // The blob trigger's turn comes after the extract queue's, as in pollOnce.
      if (queue === QUEUES.extract && free() > 0 && due(MANIFESTS)) {
        const max = free();
        // Listing `raw` costs a page per run of history: done on full passes only; a manifest
        // this process just wrote is known by name and ETag already.
        const items = full || this.backlog.has(MANIFESTS) ? await this.dueManifests(max + 1) : this.takeOwnManifests(max + 1);
        if (items.length > max) this.backlog.add(MANIFESTS);
        else this.backlog.delete(MANIFESTS);
        started += this.dispatchManifests(items.slice(0, max));
      }
    }
    return started;
  }

  /** Own manifests not being transformed here already (one whose ETag changed meanwhile waits for the running copy). */
  private takeOwnManifests(max: number): DueManifest[] {
    const items: DueManifest[] = [];
    for (const [name, etag] of this.ownManifests) {
      if (items.length >= max) break;
      if (this.transforming.has(name)) continue;
      this.ownManifests.delete(name);
      if (this.handled.get(name) !== etag) items.push({ name, etag, failures: 0 });
    }
    return items;
  }

  private dispatchManifests(due: DueManifest[]): number {
    for (const item of due) {
      this.ownManifests.delete(item.name);
      this.transforming.set(item.name, this.copies);
      for (let c = 0; c < this.copies; c++) {
        this.start(async () => {
          try {
            await this.handleManifest(item);
          } finally {
            const left = (this.transforming.get(item.name) ?? 1) - 1;
            if (left > 0) this.transforming.set(item.name, left);
            else {
              this.transforming.delete(item.name);
              // Rewritten while it ran (two partitions completing together): its turn now.
              if (this.ownManifests.has(item.name)) this.wake(MANIFESTS);
            }
          }
        });
      }
    }
    return due.length;
  }

  /** Waits for a wake or `ms`; true when the time ran out (nothing woke it). */
  private idle(ms: number): Promise<boolean> {
    if (this.woken || this.stopped) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (timedOut: boolean) => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        resolve(timedOut);
      };
      const timer = setTimeout(() => done(true), ms);
      this.wakeUp = () => done(false);
    });
  }

  /** The dispatcher: keeps every worker busy while there is work, sleeps when there is none. */
  private async drive(o: { done?: () => Promise<boolean>; deadline?: number; idleMs: number; onError: (err: unknown) => void }): Promise<void> {
    let timedOut = true;
    try {
      while (!this.stopped) {
        if (o.done && (this.finished || timedOut)) {
          this.finished = false;
          if (await o.done()) return;
        }
        if (o.deadline !== undefined && Date.now() > o.deadline) throw new Error(`the local host timed out after ${Math.round((o.deadline - Date.now()) / -1000)} s past its deadline`);
        this.woken = false;
        // A full pass at least every idle period: retries coming due, other processes' work.
        const full = timedOut || Date.now() - this.lastFullPass >= Math.max(o.idleMs, FULL_PASS_MS);
        if (full) this.lastFullPass = Date.now();
        let started = 0;
        try {
          started = await this.dispatch(full);
        } catch (err) {
          o.onError(err);
        }
        timedOut = false;
        // Started something and a worker is still free: more may be waiting right now.
        if (started > 0 && this.inFlight.size < this.workers) continue;
        // Every worker busy: nothing here can take more work until one finishes, and a finishing
        // worker wakes the host at once. Waking every idle period only to re-read the run (done())
        // cost a table read per 100 ms of every stage; a full pass a second still notices what
        // other processes did (a cancel) while a long stage runs.
        timedOut = await this.idle(this.inFlight.size >= this.workers ? Math.max(o.idleMs, FULL_PASS_MS) : o.idleMs);
      }
    } finally {
      // Copies still running (duplicates of a finished stage) end before the caller closes ports.
      await Promise.allSettled([...this.inFlight]);
    }
  }

  /** Drives the triggers until `done()` holds or the timeout passes. */
  async runUntil(done: () => Promise<boolean>, timeoutMs = 10 * 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    try {
      await this.drive({
        done,
        deadline,
        idleMs: this.idlePollMs,
        onError: (err) => {
          throw err;
        },
      });
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`the local host timed out after ${Math.round(timeoutMs / 1000)} s`, { cause: err });
      throw err;
    }
  }

  /** Runs until stop(); used by `tidemark dev`. Errors of one pass are logged, not fatal. */
  async loop(): Promise<void> {
    await this.drive({ idleMs: this.idlePollMs * 5, onError: (err) => this.ctx.log.log('error', `local host pass failed: ${errorMessage(err)}`) });
  }

  stop(): void {
    this.stopped = true;
    this.wake();
  }
}

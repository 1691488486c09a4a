import { createHash } from 'node:crypto';
import { TableClient, TableServiceClient } from '@azure/data-tables';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';

/** Every blob (name + md5 of its bytes), queue message (peeked, not dequeued) and table row (with its etag). */
export async function storageState(cs: string): Promise<string> {
  const lines: string[] = [];
  const blobs = BlobServiceClient.fromConnectionString(cs);
  for await (const c of blobs.listContainers()) {
    const cc = blobs.getContainerClient(c.name);
    for await (const b of cc.listBlobsFlat()) {
      const bytes = await cc.getBlobClient(b.name).downloadToBuffer();
      lines.push(`blob ${c.name}/${b.name} ${createHash('md5').update(bytes).digest('hex')}`);
    }
  }
  const queues = QueueServiceClient.fromConnectionString(cs);
  for await (const q of queues.listQueues()) {
    const qc = queues.getQueueClient(q.name);
    const props = await qc.getProperties();
    const peek = await qc.peekMessages({ numberOfMessages: 32 });
    lines.push(`queue ${q.name} ${props.approximateMessagesCount} ${peek.peekedMessageItems.map((m) => `${m.messageId}:${m.dequeueCount}:${m.messageText}`).join(',')}`);
  }
  const tables = TableServiceClient.fromConnectionString(cs, { allowInsecureConnection: true });
  for await (const t of tables.listTables()) {
    const tc = TableClient.fromConnectionString(cs, t.name!, { allowInsecureConnection: true });
    for await (const e of tc.listEntities()) lines.push(`row ${t.name} ${e.partitionKey}/${e.rowKey} ${e.etag}`);
  }
  return lines.sort().join('\n');
}


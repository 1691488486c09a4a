import { createHash } from 'node:crypto';
import { connectionStringStorage, createStorageClients } from '../../shared/storage/clients.js';

/** Every blob (name + md5 of its bytes), queue message (peeked, not dequeued) and table row (with its etag). */
export async function storageState(cs: string): Promise<string> {
  const lines: string[] = [];
  const storage = createStorageClients(connectionStringStorage('AzureWebJobsStorage', cs), {});
  const blobs = storage.blob;
  for await (const c of blobs.listContainers()) {
    const cc = blobs.getContainerClient(c.name);
    for await (const b of cc.listBlobsFlat()) {
      const bytes = await cc.getBlobClient(b.name).downloadToBuffer();
      lines.push(`blob ${c.name}/${b.name} ${createHash('md5').update(bytes).digest('hex')}`);
    }
  }
  const queues = storage.queue;
  for await (const q of queues.listQueues()) {
    const qc = queues.getQueueClient(q.name);
    const props = await qc.getProperties();
    const peek = await qc.peekMessages({ numberOfMessages: 32 });
    lines.push(`queue ${q.name} ${props.approximateMessagesCount} ${peek.peekedMessageItems.map((m) => `${m.messageId}:${m.dequeueCount}:${m.messageText}`).join(',')}`);
  }
  const tables = storage.table;
  for await (const t of tables.listTables()) {
    const tc = storage.tableClient(t.name!);
    for await (const e of tc.listEntities()) lines.push(`row ${t.name} ${e.partitionKey}/${e.rowKey} ${e.etag}`);
  }
  return lines.sort().join('\n');
}


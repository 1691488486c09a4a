import { AzureTableStore } from '../../shared/state/azure-tables.js';
import { AzureBlobStore, AzureQueuePort } from '../../shared/storage/azure-storage.js';
import { connectionStringStorage, createStorageClients, type StorageClients } from '../../shared/storage/clients.js';

/** The engine's storage ports on a connection string (Azurite), built by the one storage factory. */
export function storageOf(connectionString: string): { clients: StorageClients; blobs: AzureBlobStore; queues: AzureQueuePort; tables: AzureTableStore } {
  const clients = createStorageClients(connectionStringStorage('AzureWebJobsStorage', connectionString), {});
  return { clients, blobs: new AzureBlobStore(clients.blob), queues: new AzureQueuePort(clients.queue), tables: new AzureTableStore(clients) };
}

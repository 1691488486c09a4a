import type { AzuriteHandle } from '../../shared/local/azurite.js';
import { openLocalStack, type LocalStack } from '../../shared/local/stack.js';
import { withAzurite } from './azurite.js';
import { makeProject } from './project.js';
import { SalesforceDouble } from './salesforce-server.js';

/** tidemark.yaml of a project reading the Salesforce test double into a DuckDB warehouse. */
export const SALESFORCE_PROJECT = `storage: AzureWebJobsStorage
connections:
  CRM: { kind: salesforce, instanceUrlSetting: SF_URL, auth: clientCredentials, clientIdSetting: SF_CLIENT_ID, secretSetting: SF_SECRET, apiVersion: '62.0' }
warehouses:
  WH: { kind: duckdb, path: warehouse.duckdb }
duckdb: { memoryLimit: 512MB, threads: 1 }
`;

export interface SalesforceStack {
  sf: SalesforceDouble;
  az: AzuriteHandle;
  stack: LocalStack;
  dir: string;
  close(): Promise<void>;
}

/**
 * The Salesforce test double serving `rows` generated records, Azurite, and a local stack over a
 * project with the given pipelines, its settings pointing at the double.
 */
export async function openSalesforceStack(rows: number, pipelines: Record<string, string>): Promise<SalesforceStack> {
  const sf = await SalesforceDouble.start(rows, { clientId: 'client-1', secret: 'secret-1' });
  const az = await withAzurite();
  const dir = makeProject({ tidemark: SALESFORCE_PROJECT, pipelines });
  const stack = await openLocalStack({ projectDir: dir, connectionString: az.connectionString, env: { ...process.env, SF_URL: sf.url, SF_CLIENT_ID: 'client-1', SF_SECRET: 'secret-1' } });
  return {
    sf,
    az,
    stack,
    dir,
    close: async () => {
      await stack.close();
      await az.stop();
      await sf.stop();
    },
  };
}

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONTAINERS, POISON_SUFFIX, QUEUES, TABLES } from '../../../shared/storage/layout.js';
import { BLOB_POISON_QUEUE } from '../../../shared/local/host.js';
import { STORAGE_ROLES } from '../../../shared/engine/doctor.js';

// No Bicep compiler runs here (it downloads a binary): the template is checked textually.
const ROOT = join(import.meta.dirname, '..', '..', '..');
const bicep = readFileSync(join(ROOT, 'infra/main.bicep'), 'utf8');
const params = JSON.parse(readFileSync(join(ROOT, 'infra/main.parameters.json'), 'utf8')) as { parameters: Record<string, { value: any }> };

/** The template without comments and string contents, for structural checks. */
function code(): string {
  let out = '';
  let i = 0;
  while (i < bicep.length) {
    if (bicep.startsWith('//', i)) i = bicep.indexOf('\n', i);
    else if (bicep.startsWith('/*', i)) i = bicep.indexOf('*/', i) + 2;
    else if (bicep[i] === "'") {
      i++;
      while (i < bicep.length && bicep[i] !== "'") i += bicep[i] === '\\' ? 2 : 1;
      i++;
      out += "''";
    } else out += bicep[i++];
    if (i < 0) break;
  }
  return out;
}

describe('infra/main.bicep', () => {
  const body = code();

  it('is balanced: braces, brackets and parentheses outside strings and comments', () => {
    const stack: string[] = [];
    const pairs: Record<string, string> = { '}': '{', ']': '[', ')': '(' };
    for (const ch of body) {
      if ('{[('.includes(ch)) stack.push(ch);
      else if (pairs[ch]) expect(stack.pop(), `unbalanced ${ch}`).toBe(pairs[ch]);
    }
    expect(stack).toEqual([]);
  });

  it('declares every parameter it uses, each symbol once, and the parameters file names only declared parameters', () => {
    const declared = [...bicep.matchAll(/^param (\w+) /gm)].map((m) => m[1]!);
    const symbols = [...bicep.matchAll(/^(?:param|var|resource|output) (\w+) /gm)].map((m) => m[1]!);
    expect(new Set(symbols).size).toBe(symbols.length);
    for (const p of Object.keys(params.parameters)) expect(declared, `parameter ${p}`).toContain(p);
    const noComments = bicep.replace(/\/\/.*$/gm, '');
    for (const p of declared) {
      const uses = noComments.split(new RegExp(`\\b${p}\\b`)).length - 1;
      expect(uses, `parameter ${p} is declared but unused`).toBeGreaterThan(1);
    }
    const required = [...bicep.matchAll(/^param (\w+) \w+\s*$/gm)].map((m) => m[1]!);
    for (const p of required) expect(params.parameters[p], `required parameter ${p} missing from main.parameters.json`).toBeDefined();
  });

  it('creates every container, queue (with poison queues) and table the code uses', () => {
    const list = (name: string) => JSON.parse(new RegExp(`^var ${name} = (\\[.*\\])$`, 'm').exec(bicep)![1]!.replace(/'/g, '"').replace('deploymentContainer', '"app-package"')) as string[];
    expect(list('containers')).toEqual(expect.arrayContaining(Object.values(CONTAINERS)));
    expect(list('queues')).toEqual(expect.arrayContaining([...Object.values(QUEUES).flatMap((q) => [q, `${q}${POISON_SUFFIX}`]), BLOB_POISON_QUEUE]));
    expect(list('tables')).toEqual(expect.arrayContaining(Object.values(TABLES)));
  });

  it('is a Flex Consumption app on Node 20 with a system-assigned identity and identity-based deployment storage', () => {
    expect(bicep).toMatch(/sku: \{ tier: 'FlexConsumption', name: 'FC1' \}/);
    expect(bicep).toMatch(/kind: 'functionapp,linux'/);
    expect(bicep).toMatch(/identity: \{ type: 'SystemAssigned' \}/);
    expect(bicep).toMatch(/runtime: \{ name: 'node', version: '20' \}/);
    expect(bicep).toMatch(/authentication: \{ type: 'SystemAssignedIdentity' \}/);
  });

  it('subscribes the "transform" blob trigger to raw manifests through Event Grid', () => {
    const transform = readFileSync(join(ROOT, 'functions/transform.ts'), 'utf8');
    expect(transform).toContain("app.storageBlob('transform'");
    expect(transform).toContain("source: 'EventGrid'");
    expect(bicep).toContain('/runtime/webhooks/blobs?functionName=Host.Functions.transform&code=');
    expect(bicep).toContain('systemKeys.blobs_extension');
    expect(bicep).toContain("subjectBeginsWith: '/blobServices/default/containers/raw/'");
    expect(bicep).toContain("subjectEndsWith: '/_manifest.json'");
    expect(bicep).toContain("includedEventTypes: ['Microsoft.Storage.BlobCreated']");
  });

  it('assigns the documented data roles, the blob trigger\'s account role and metrics publishing to the app identity, by their built-in ids', () => {
    // Ids from the Azure built-in roles reference; the role names are what doctor reports.
    const expected = {
      storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
      storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
      storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
      storageAccountContributor: '17d1049b-9a84-46fb-8f53-869881c3d3ab',
      monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb',
    };
    for (const [name, id] of Object.entries(expected)) {
      expect(bicep).toContain(`${name}: '${id}'`);
      expect(bicep, `a role assignment uses roles.${name}`).toMatch(new RegExp(`roleDefinitionId: subscriptionResourceId\\('Microsoft\\.Authorization/roleDefinitions', roles\\.${name}\\)`));
    }
    expect(bicep.match(/Microsoft\.Authorization\/roleAssignments@/g)).toHaveLength(5);
    expect(bicep.match(/principalId: app\.identity\.principalId/g)).toHaveLength(5);
    expect(bicep.match(/^\s*scope: storage$/gm)).toHaveLength(4);
  });

  it('sets no storage key anywhere: shared-key access off, identity settings instead of a connection string, the package read by identity', () => {
    expect(bicep).toMatch(/^\s*allowSharedKeyAccess: false$/m);
    expect(bicep).toMatch(/^\s*defaultToOAuthAuthentication: true$/m);
    expect(bicep).not.toMatch(/AccountKey|SharedAccessSignature|listAccountSas|listServiceSas|storage\.listKeys|listKeys\(storage/i);
    // The only listKeys is the Functions host's blob-extension system key for the Event Grid webhook.
    const listKeys = [...bicep.matchAll(/listKeys\(([^)]*)\)/g)].map((m) => m[1]);
    expect(listKeys).toEqual(["'${app.id}/host/default', '2024-04-01'"]);
    expect(bicep).not.toMatch(/^\s*AzureWebJobsStorage:/m);
    expect(bicep).toMatch(/^\s*AzureWebJobsStorage__credential: 'managedidentity'$/m);
    for (const s of ['blob', 'queue', 'table']) expect(bicep).toMatch(new RegExp(`^\\s*AzureWebJobsStorage__${s}ServiceUri: storage\\.properties\\.primaryEndpoints\\.${s}$`, 'm'));
    expect(bicep).toMatch(/storage: \{\s*type: 'blobContainer'[\s\S]*?authentication: \{ type: 'SystemAssignedIdentity' \}/);
    // Flex Consumption has no content share: none of the key-based settings of the other plans.
    expect(bicep).not.toMatch(/WEBSITE_CONTENTAZUREFILECONNECTIONSTRING|WEBSITE_CONTENTSHARE|StorageAccountConnectionString|storageAccountConnectionStringName/);
  });

  it('assigns every data role tidemark doctor checks (the names doctor reports are the Bicep\'s roles)', () => {
    for (const role of Object.values(STORAGE_ROLES)) {
      const key = role.replace(/ (\w)/g, (_m, c: string) => c.toUpperCase()).replace(/^S/, 's');
      expect(bicep, role).toMatch(new RegExp(`roleDefinitionId: subscriptionResourceId\\('Microsoft\\.Authorization/roleDefinitions', roles\\.${key}\\)`));
    }
  });

  it('binds the Event Grid blob trigger and every queue trigger to the one identity connection AzureWebJobsStorage', () => {
    const files = readdirSync(join(ROOT, 'functions')).filter((f) => f.endsWith('.ts'));
    const bindings = files.flatMap((f) => {
      const text = readFileSync(join(ROOT, 'functions', f), 'utf8');
      return [...text.matchAll(/app\.storage(Queue|Blob)\(/g)].map(() => ({ f, text }));
    });
    expect(bindings.length).toBeGreaterThanOrEqual(6);
    for (const { f, text } of bindings) {
      const connections = [...text.matchAll(/connection:\s*'([^']+)'/g)].map((m) => m[1]);
      expect(connections.length, `${f} names its connection`).toBeGreaterThan(0);
      expect(new Set(connections), f).toEqual(new Set(['AzureWebJobsStorage']));
    }
  });

  it('alerts on failed runs, failed validations, poison messages and stale pipelines, using the events the telemetry emits', () => {
    const telemetry = readFileSync(join(ROOT, 'shared/telemetry/telemetry.ts'), 'utf8');
    for (const e of ['RunFailed', 'ValidationFailed', 'MessagePoisoned', 'RunSucceeded']) {
      expect(bicep).toContain(`name == "${e}"`);
      expect(telemetry).toContain(`'${e}'`);
    }
    expect(bicep).toMatch(/operator: 'LessThan'\s+threshold: 1/);
    expect(bicep).toContain("windowSize: 'PT${p.hours}H'");
    expect(bicep).toContain('WorkspaceResourceId: logs.id');
  });

  it('the parameters file lists stale-pipeline alerts only for pipelines that exist, within the 48 h log-alert window', () => {
    const pipelines = readdirSync(join(ROOT, 'pipelines')).map((f) => f.replace(/\.ya?ml$/, ''));
    for (const p of params.parameters.stalePipelines!.value as Array<{ name: string; hours: number }>) {
      expect(pipelines).toContain(p.name);
      expect(p.hours).toBeGreaterThanOrEqual(1);
      expect(p.hours).toBeLessThanOrEqual(48);
    }
  });
});

import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { initCommand } from '../../../cli/commands/init.js';
import { runCommand } from '../../../cli/commands/run.js';
import { statusCommand } from '../../../cli/commands/status.js';
import { exitCodeFor } from '../../../cli/common.js';
import type { AzuriteHandle } from '../../../shared/local/azurite.js';
import { parseFrom } from '../../../shared/plan/init.js';
import { withAzurite } from '../../support/azurite.js';
import { SalesforceDouble } from '../../support/salesforce-server.js';

// Salesforce cannot run here: test/support/salesforce-server.ts is a test double of the
// documented OAuth, Describe Global, describe, query and Bulk API 2.0 endpoints.
describe('tidemark init --from salesforce:<PREFIX>', () => {
  const saved = { ...process.env };
  let sf: SalesforceDouble;
  let az: AzuriteHandle;
  let out: string[];
  const printed = () => out.join('');

  beforeAll(async () => {
    [sf, az] = await Promise.all([SalesforceDouble.start(500, { clientId: 'client-1', secret: 'secret-1' }), withAzurite()]);
    sf.formulaField = true;
  });
  afterAll(async () => {
    await sf?.stop();
    await az?.stop();
  });
  beforeEach(() => {
    out = [];
    Object.assign(process.env, { AzureWebJobsStorage: az.connectionString, CRM_INSTANCE_URL: sf.url, CRM_CLIENT_ID: 'client-1', CRM_CLIENT_SECRET: 'secret-1' });
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  });
  afterEach(() => {
    vi.restoreAllMocks();
    process.env = { ...saved };
  });

  it('proposes a pipeline per object from describe, which runs green at once; status shows it', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'tidemark-init-sf-')), 'crm');
    expect(await initCommand.run([dir, '--from', 'salesforce:CRM', '--json'])).toBe(0);
    const report = JSON.parse(printed()) as { pipelines: Array<{ name: string; mode: string; column: string | null }>; notes: string[] };
    // AccountHistory is queryable but not replicateable: not proposed.
    expect(report.pipelines).toEqual([expect.objectContaining({ name: 'account', mode: 'timestamp', column: 'SystemModstamp' })]);
    expect(readdirSync(join(dir, 'pipelines'))).toEqual(['account.yaml']);

    const project = readFileSync(join(dir, 'tidemark.yaml'), 'utf8');
    expect(project).toContain("SOURCE: { kind: salesforce, instanceUrlSetting: CRM_INSTANCE_URL, auth: clientCredentials, clientIdSetting: CRM_CLIENT_ID, secretSetting: CRM_CLIENT_SECRET, apiVersion: '62.0' }");
    expect(project).not.toContain('secret-1');
    const yaml = readFileSync(join(dir, 'pipelines', 'account.yaml'), 'utf8');
    expect(yaml).toContain('  object: Account\n');
    expect(yaml).toContain('    - AnnualRevenue       # currency(18,2) → DECIMAL(18,2)\n');
    expect(yaml).toContain('    - BillingCity         # string → VARCHAR\n');
    expect(yaml).toContain('    - SystemModstamp      # datetime → TIMESTAMPTZ\n');
    expect(yaml).toMatch(/#   BillingAddress \(address\): compound address field/);
    expect(yaml).toMatch(/#   Tier__c \(string\): formula field: computed when read/);
    expect(yaml).toMatch(/#   IsDeleted \(boolean\): deletes arrive as deletes/);
    expect(yaml).not.toMatch(/^ {4}- (Tier__c|BillingAddress|IsDeleted)\b/m);
    expect(yaml).toContain('key: [Id]\n');
    expect(yaml).toContain('changeDetection: { mode: timestamp, column: SystemModstamp, lag: 2m }');

    out.length = 0;
    expect(await runCommand.run(['account', '--project', dir, '--json'])).toBe(0);
    expect(JSON.parse(printed())).toMatchObject({ status: 'succeeded', counts: { inserted: 500 } });
    out.length = 0;
    expect(await statusCommand.run(['--project', dir, '--json'])).toBe(0);
    expect(printed()).toContain('"account"');
    expect(printed()).toContain('succeeded');
  }, 240_000);

  it('names a missing setting, refuses a secret on the command line and an unknown object', async () => {
    delete process.env.CRM_CLIENT_SECRET;
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-init-sf-'));
    const e = await initCommand.run([dir, '--from', 'salesforce:CRM']).catch((x: unknown) => x);
    expect(exitCodeFor(e)).toBe(2);
    expect(String((e as Error).message)).toMatch(/setting CRM_CLIENT_SECRET is not set; init reads the connection from CRM_INSTANCE_URL, CRM_CLIENT_ID and CRM_CLIENT_SECRET/);
    expect(() => parseFrom('salesforce:https://x.my.salesforce.com')).toThrow(/must name a setting/);
    process.env.CRM_CLIENT_SECRET = 'secret-1';
    const u = await initCommand.run([dir, '--from', 'salesforce:CRM', '--tables', 'Acount']).catch((x: unknown) => x);
    expect(String((u as Error).message)).toMatch(/the org has no object Acount/);
    expect(readdirSync(dir)).toEqual([]);
  }, 120_000);
});

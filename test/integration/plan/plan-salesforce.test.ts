import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProject } from '../../../shared/config/load.js';
import { makePlan } from '../../../shared/plan/make-plan.js';
import { planSchema } from '../../../shared/plan/model.js';
import { renderMarkdown } from '../../../shared/plan/render.js';
import { makeProject } from '../../support/project.js';
import { SalesforceDouble } from '../../support/salesforce-server.js';

// Salesforce cannot run here: `plan` logs in to the TEST DOUBLE (test/support/salesforce-server.ts)
// and reads describe, limits/recordCount and SELECT COUNT() from it; the requests it made are
// checked from the double's log.
const duck = { memoryLimit: '256MB', threads: 1, tempDir: 'unused' };
const NOW = new Date('2026-03-01T00:00:00Z');

const TIDEMARK = `storage: AzureWebJobsStorage
connections:
  CRM: { kind: salesforce, instanceUrlSetting: SF_URL, auth: clientCredentials, clientIdSetting: SF_CLIENT_ID, secretSetting: SF_SECRET, apiVersion: '62.0' }
warehouses:
  WH: { kind: duckdb, path: warehouse.duckdb }
`;
const pipeline = (name: string, fields: string, column: string) => `name: ${name}
source:
  connection: CRM
  object: Account
  fields: ${fields}
  changeDetection: { mode: timestamp, column: ${column} }
key: [Id]
target: { warehouse: WH, table: dw.${name} }
`;

describe('tidemark plan for a Salesforce source (test double)', () => {
  let sf: SalesforceDouble;
  let dir: string;
  const env = () => ({ SF_URL: sf.url, SF_CLIENT_ID: 'client-1', SF_SECRET: 'secret-1' });
  const plan = () => makePlan({ project: loadProject(dir), env: env(), duck, runs: [], now: NOW });
  const calls = (re: RegExp) => sf.requests.filter((r) => re.test(decodeURIComponent(r.path))).length;

  beforeAll(async () => {
    sf = await SalesforceDouble.start(40, { clientId: 'client-1', secret: 'secret-1' });
    sf.remove([3, 4, 5], Date.parse('2026-01-02T00:00:00Z'));
    dir = makeProject({
      tidemark: TIDEMARK,
      pipelines: {
        sf_accounts: pipeline('sf_accounts', '[Id, Name, AnnualRevenue, NumberOfEmployees, SystemModstamp]', 'SystemModstamp'),
        sf_all: pipeline('sf_all', 'all', 'LastModifiedDate'),
      },
    });
  });
  afterAll(async () => {
    await sf?.stop();
  });

  it('record counts from limits/recordCount in one call, fields and types from describe, Salesforce indexes in the risks', async () => {
    sf.requests.length = 0;
    const p = await plan();
    expect(planSchema.parse(JSON.parse(JSON.stringify(p)))).toEqual(p);
    // 40 rows less the 3 in the recycle bin, as the double's live figure.
    expect(p.scope.map((s) => [s.pipeline, s.object, s.records])).toEqual([
      ['sf_accounts', 'Account', 37],
      ['sf_all', 'Account', 37],
    ]);
    expect(p.summary.initialRecords).toBe(74);
    expect(calls(/\/limits\/recordCount\?sObjects=Account$/)).toBe(1);
    expect(calls(/COUNT\(\)/)).toBe(0);
    expect(p.risks).toContainEqual({ pipeline: null, risk: 'source CRM: record counts of Account from limits/recordCount: Salesforce refreshes them periodically, so they are approximate' });
    expect(p.mapping.find((m) => m.pipeline === 'sf_accounts')!.columns).toEqual([
      { source: 'Id', sourceType: 'id', targetType: 'VARCHAR' },
      { source: 'Name', sourceType: 'string', targetType: 'VARCHAR' },
      { source: 'AnnualRevenue', sourceType: 'currency(18,2)', targetType: 'DECIMAL(18,2)' },
      { source: 'NumberOfEmployees', sourceType: 'int', targetType: 'INTEGER' },
      { source: 'SystemModstamp', sourceType: 'datetime', targetType: 'TIMESTAMP WITH TIME ZONE' },
    ]);
    // fields: all is the source's own selection: no compound BillingAddress.
    expect(p.mapping.find((m) => m.pipeline === 'sf_all')!.columns.map((c) => c.source)).toEqual(['Id', 'IsDeleted', 'Name', 'AnnualRevenue', 'NumberOfEmployees', 'IsActive__c', 'BillingCity', 'CreatedDate', 'LastModifiedDate', 'SystemModstamp']);
    // SystemModstamp is indexed by Salesforce; LastModifiedDate is not.
    const noIndex = p.risks.filter((r) => r.risk.startsWith('no index'));
    expect(noIndex).toEqual([{ pipeline: 'sf_all', risk: 'no index leads with LastModifiedDate: every incremental read scans Account' }]);
    expect(renderMarkdown(p)).toContain('| Account | sf_accounts | 37 |');
  });

  it('a stale figure is shown as Salesforce gives it; an object with no figure is counted with SELECT COUNT(), once', async () => {
    sf.recordCount = 12_345;
    expect((await plan()).scope.map((s) => s.records)).toEqual([12_345, 12_345]);
    sf.recordCount = 'missing';
    sf.requests.length = 0;
    const p = await plan();
    expect(p.scope.map((s) => s.records)).toEqual([37, 37]);
    expect(calls(/\/query\?q=SELECT COUNT\(\) FROM Account$/)).toBe(1);
    expect(p.risks).toContainEqual({ pipeline: null, risk: 'source CRM: Account: no figure in limits/recordCount, counted with SELECT COUNT() (exact)' });
    sf.recordCount = 'live';
  });

  it('a refused login leaves the volumes unknown and says why; the plan still renders', async () => {
    const p = await makePlan({ project: loadProject(dir), env: { ...env(), SF_SECRET: 'wrong' }, duck, runs: [], now: NOW });
    expect(p.scope.map((s) => s.records)).toEqual([null, null]);
    expect(p.risks).toContainEqual({ pipeline: null, risk: expect.stringMatching(/^source CRM could not be read for statistics: .*invalid_client/) });
    expect(renderMarkdown(p)).toContain('## Scope');
  });
});

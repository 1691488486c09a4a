import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProject } from '../../shared/config/load.js';
import { runDoctor } from '../../shared/engine/doctor.js';
import { makeProject } from '../support/project.js';
import { SalesforceDouble } from '../support/salesforce-server.js';

// Salesforce cannot run here: doctor logs in to the test double (test/support/salesforce-server.ts).
describe('tidemark doctor: salesforce login and API limits', () => {
  let sf: SalesforceDouble;
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  beforeAll(async () => {
    sf = await SalesforceDouble.start(10, { clientId: 'cid', secret: 'sec', publicKeyPem: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString(), username: 'etl@acme.com' });
  });
  afterAll(async () => {
    await sf?.stop();
  });

  it('reports the requests left, warns when few are left, and fails a refused login with the reason', async () => {
    const dir = makeProject({
      tidemark: `connections:
  CRM: { kind: salesforce, instanceUrlSetting: SF_URL, clientIdSetting: SF_ID, secretSetting: SF_SECRET }
warehouses:
  WH: { kind: duckdb, path: w.duckdb }
`,
      pipelines: {},
    });
    const project = loadProject(dir);
    const crm = async (env: NodeJS.ProcessEnv) => (await runDoctor(project, { env, timeoutMs: 5000 })).filter((c) => c.name === 'CRM' || c.name.startsWith('SF_'));
    sf.apiUsed = 100;
    sf.apiMax = 15000;
    const ok = await crm({ SF_URL: sf.url, SF_ID: 'cid', SF_SECRET: 'sec' });
    expect(ok.find((c) => c.name === 'CRM')).toMatchObject({ status: 'ok', detail: 'salesforce login works; 14899 of 15000 daily API requests left' });
    expect(ok.filter((c) => c.name.startsWith('SF_')).map((c) => [c.name, c.status])).toEqual([['SF_URL', 'ok'], ['SF_ID', 'ok'], ['SF_SECRET', 'ok']]);
    sf.apiUsed = 14000;
    expect((await crm({ SF_URL: sf.url, SF_ID: 'cid', SF_SECRET: 'sec' })).find((c) => c.name === 'CRM')).toMatchObject({ status: 'warn', detail: expect.stringMatching(/999 of 15000 .*REQUEST_LIMIT_EXCEEDED/) });
    const bad = (await crm({ SF_URL: sf.url, SF_ID: 'cid', SF_SECRET: 'wrong' })).find((c) => c.name === 'CRM');
    expect(bad).toMatchObject({ status: 'fail', detail: expect.stringMatching(/login failed: invalid_client: invalid client credentials/) });
    const unset = (await crm({ SF_ID: 'cid', SF_SECRET: 'sec' })).find((c) => c.name === 'CRM');
    const jwtDir = makeProject({
      tidemark: `connections:
  CRM: { kind: salesforce, instanceUrlSetting: SF_URL, auth: jwt, clientIdSetting: SF_ID, privateKeySetting: SF_KEY, username: etl@acme.com }
warehouses:
  WH: { kind: duckdb, path: w.duckdb }
`,
      pipelines: {},
    });
    // The key as an app setting usually holds \n escapes instead of line breaks.
    const pem = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString().replace(/\n/g, '\\n');
    const jwt = (await runDoctor(loadProject(jwtDir), { env: { SF_URL: sf.url, SF_ID: 'cid', SF_KEY: pem }, timeoutMs: 5000 })).find((c) => c.name === 'CRM');
    expect(jwt).toMatchObject({ status: 'warn', detail: expect.stringMatching(/^salesforce login works/) });
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const refused = (await runDoctor(loadProject(jwtDir), { env: { SF_URL: sf.url, SF_ID: 'cid', SF_KEY: other }, timeoutMs: 5000 })).find((c) => c.name === 'CRM');
    expect(refused).toMatchObject({ status: 'fail', detail: expect.stringMatching(/invalid_grant: invalid assertion/) });
    expect(unset).toMatchObject({ status: 'fail', detail: expect.stringMatching(/app setting SF_URL is not set/) });
  });
});

import { generateKeyPairSync, createVerify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { connectionSchema, pipelineSchema } from '../../../../shared/config/schema.js';
import { TerminalError } from '../../../../shared/errors.js';
import { isTransientSfError, jwtAssertion, parseLimitInfo } from '../../../../shared/extract/salesforce/client.js';
import { countSoql, parseSoql, planSoql, soqlDateTime } from '../../../../shared/extract/salesforce/soql.js';
import { selectFields, sfColumnPlan } from '../../../../shared/extract/salesforce/types.js';

describe('salesforce types', () => {
  it('maps describe types to DuckDB types, money as DECIMAL with its scale', () => {
    const t = (type: string, extra: object = {}) => sfColumnPlan({ name: 'F', type, ...extra }).duckType;
    expect([t('id'), t('reference'), t('picklist'), t('boolean'), t('int'), t('long'), t('date'), t('datetime'), t('time'), t('email'), t('weird')]).toEqual([
      'VARCHAR', 'VARCHAR', 'VARCHAR', 'BOOLEAN', 'INTEGER', 'BIGINT', 'DATE', 'TIMESTAMPTZ', 'TIME', 'VARCHAR', 'VARCHAR',
    ]);
    expect(t('currency', { precision: 18, scale: 2 })).toBe('DECIMAL(18,2)');
    expect(t('percent', { precision: 5, scale: 3 })).toBe('DECIMAL(5,3)');
    expect(t('double', { precision: 0, scale: 0 })).toBe('DOUBLE');
    expect(sfColumnPlan({ name: 'T', type: 'datetime' }).fromText('"c"')).toBe(`CAST(replace("c", '+0000', 'Z') AS TIMESTAMPTZ)`);
  });

  it('`all` leaves out compound and unreadable fields; a listed unknown field is named', () => {
    const d = {
      name: 'Account',
      fields: [
        { name: 'Id', type: 'id' },
        { name: 'BillingAddress', type: 'address' },
        { name: 'BillingCity', type: 'string', compoundFieldName: 'BillingAddress' },
        { name: 'Geo__c', type: 'location' },
        { name: 'Logo', type: 'base64' },
        { name: 'Secret__c', type: 'string', readable: false },
      ],
    };
    expect(selectFields(d, 'all', 'Account').map((f) => f.name)).toEqual(['Id', 'BillingCity']);
    expect(selectFields(d, ['id', 'BillingCity'], 'Account').map((f) => f.name)).toEqual(['Id', 'BillingCity']);
    expect(() => selectFields(d, ['Id', 'Nmae'], 'Account')).toThrow(/Account has no field Nmae/);
    expect(() => selectFields(d, ['BillingAddress'], 'Account')).toThrow(/address field/);
  });
});

describe('salesforce SOQL planning', () => {
  const shape = { object: 'Account', fields: ['Id', 'Name'] };
  it('adds the window as dateTime literals (lower floored, upper ceiled) and the delete flag', () => {
    expect(planSoql(shape, { window: { column: 'SystemModstamp', from: '2026-01-01T00:59:00.400Z', to: '2026-02-01T00:00:01.000Z' }, extraFields: ['IsDeleted', 'id'] })).toBe(
      'SELECT Id, Name, IsDeleted FROM Account WHERE SystemModstamp > 2026-01-01T00:59:00Z AND SystemModstamp <= 2026-02-01T00:00:01Z',
    );
    expect(planSoql(shape, {})).toBe('SELECT Id, Name FROM Account');
    expect(soqlDateTime('2026-01-01T00:00:00.001Z', 'ceil')).toBe('2026-01-01T00:00:01Z');
  });

  it('partitions by epoch seconds of a datetime column; the last range is open above', () => {
    const lo = String(Date.parse('2026-01-01T00:00:00Z') / 1000);
    const hi = String(Date.parse('2026-01-02T00:00:00Z') / 1000);
    expect(planSoql(shape, { range: { column: 'CreatedDate', lo, hi, last: false } })).toBe('SELECT Id, Name FROM Account WHERE CreatedDate >= 2026-01-01T00:00:00Z AND CreatedDate < 2026-01-02T00:00:00Z');
    expect(planSoql(shape, { range: { column: 'CreatedDate', lo, hi, last: true } })).toBe('SELECT Id, Name FROM Account WHERE CreatedDate >= 2026-01-01T00:00:00Z');
  });

  it('parses source.soql and keeps the user condition in parentheses; refuses what Bulk 2.0 refuses', () => {
    const s = parseSoql('select Id, Owner.Name from Opportunity where StageName = \'Won\'');
    expect(planSoql(s, { window: { column: 'SystemModstamp', from: null, to: '2026-01-01T00:00:00Z' } })).toBe(
      "SELECT Id, Owner.Name FROM Opportunity WHERE (StageName = 'Won') AND SystemModstamp <= 2026-01-01T00:00:00Z",
    );
    expect(countSoql('SELECT Id, Name FROM Account WHERE X > 1')).toBe('SELECT COUNT() FROM Account WHERE X > 1');
    expect(() => parseSoql('SELECT Id FROM Account ORDER BY Name')).toThrow(/ORDER BY, LIMIT/);
    expect(() => parseSoql('SELECT COUNT(Id) FROM Account')).toThrow(TerminalError);
    expect(() => planSoql({ object: 'Account; DROP', fields: ['Id'] }, {})).toThrow(/not a Salesforce API name/);
  });
});

describe('salesforce client rules', () => {
  it('reads Sforce-Limit-Info', () => {
    expect(parseLimitInfo('api-usage=25/15000')).toEqual({ used: 25, max: 15000 });
    expect(parseLimitInfo(undefined)).toBeNull();
  });

  it('retries throttling, 5xx and dropped connections; not bad SOQL', () => {
    expect(isTransientSfError(Object.assign(new Error('TotalRequests Limit exceeded.'), { errorCode: 'REQUEST_LIMIT_EXCEEDED' }), 403)).toBe(true);
    expect(isTransientSfError(new Error('x'), 429)).toBe(true);
    expect(isTransientSfError(new Error('x'), 503)).toBe(true);
    expect(isTransientSfError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), undefined)).toBe(true);
    expect(isTransientSfError(Object.assign(new Error("No such column 'Nmae'"), { errorCode: 'INVALID_FIELD' }), 400)).toBe(false);
    expect(isTransientSfError(new TerminalError('x'), 503)).toBe(false);
  });

  it('signs a JWT bearer assertion that verifies with the public key', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const a = jwtAssertion({ clientId: 'cid', username: 'etl@acme.com', audience: 'https://login.salesforce.com', privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), now: 1_000_000 });
    const [h, b, s] = a.split('.');
    expect(JSON.parse(Buffer.from(b!, 'base64url').toString())).toEqual({ iss: 'cid', sub: 'etl@acme.com', aud: 'https://login.salesforce.com', exp: 1180 });
    expect(createVerify('RSA-SHA256').update(`${h}.${b}`).verify(publicKey, Buffer.from(s!, 'base64url'))).toBe(true);
  });
});

describe('salesforce config', () => {
  it('needs the secret setting for clientCredentials and key + username for jwt', () => {
    const base = { kind: 'salesforce', instanceUrlSetting: 'SF_URL', clientIdSetting: 'SF_ID' };
    expect(connectionSchema.safeParse(base).error?.issues[0]?.message).toMatch(/secretSetting/);
    expect(connectionSchema.safeParse({ ...base, auth: 'jwt', privateKeySetting: 'SF_KEY' }).error?.issues[0]?.message).toMatch(/privateKeySetting and username/);
    expect(connectionSchema.parse({ ...base, secretSetting: 'SF_SECRET' })).toMatchObject({ auth: 'clientCredentials', apiVersion: '62.0' });
  });

  it('an object source in timestamp mode defaults its column; fields need an object', () => {
    const p = (source: object) => pipelineSchema.safeParse({ name: 'a', source: { connection: 'CRM', ...source }, key: ['Id'], target: { warehouse: 'W', table: 'dw.a' } });
    expect(p({ object: 'Account', changeDetection: { mode: 'timestamp' } }).success).toBe(true);
    expect(p({ table: 'x', fields: ['Id'] }).success).toBe(false);
    expect(p({ object: 'Account', soql: 'SELECT Id FROM Account' }).success).toBe(false);
  });
});

import { describe, expect, it } from 'vitest';
import { mssqlDriverConfig } from '../../../../shared/extract/mssql/driver.js';
import { TRANSIENT_SQL_ERRORS, classifyMssqlError } from '../../../../shared/extract/mssql/errors.js';
import { TerminalError } from '../../../../shared/errors.js';

const base = { kind: 'mssql' as const, setting: 'CRM_SQL_CONNECTION', requestTimeout: '10m', pool: { max: 6 } };
const cs = 'Server=tcp:crm.database.windows.net,1433;Database=crm;User Id=etl;Password=s3cret;Encrypt=true';

describe('mssql driver config', () => {
  it('SQL login: from the connection string, with explicit requestTimeout and pool size', () => {
    const c = mssqlDriverConfig({ ...base, authentication: 'sql' }, cs, {});
    expect(c).toMatchObject({ server: 'crm.database.windows.net', port: 1433, database: 'crm', user: 'etl', password: 's3cret', requestTimeout: 600_000 });
    expect(c.pool).toMatchObject({ max: 6, min: 0 });
    expect(c.options).toMatchObject({ encrypt: true, appName: 'tidemark' });
  });

  it('Entra ID: tedious azure-active-directory-default, no password, AZURE_CLIENT_ID picks a user-assigned identity', () => {
    const c = mssqlDriverConfig({ ...base, authentication: 'entra' }, 'Server=crm.database.windows.net;Database=crm', { AZURE_CLIENT_ID: '0000-mi' });
    expect(c.authentication).toEqual({ type: 'azure-active-directory-default', options: { clientId: '0000-mi' } });
    expect(c.password).toBeUndefined();
    expect(mssqlDriverConfig({ ...base, authentication: 'entra' }, 'Server=x;Database=y', {}).authentication).toEqual({ type: 'azure-active-directory-default', options: {} });
  });
});

describe('mssql error classification', () => {
  it('retries the transient numbers and network codes, fails the run on the rest with the server text', () => {
    for (const n of [1205, 40613, 40501, 10054, 49918]) {
      expect(TRANSIENT_SQL_ERRORS.has(n)).toBe(true);
      const e = Object.assign(new Error('x'), { number: n });
      expect(classifyMssqlError(e, 'src')).toBe(e);
    }
    const sock = Object.assign(new Error('Connection lost - read ECONNRESET'), { code: 'ESOCKET' });
    expect(classifyMssqlError(sock, 'src')).toBe(sock);
    const nested = Object.assign(new Error('x'), { originalError: { info: { number: 40197 } } });
    expect(classifyMssqlError(nested, 'src')).toBe(nested);
    const login = classifyMssqlError(Object.assign(new Error("Login failed for user 'etl'."), { code: 'ELOGIN' }), 'source CRM');
    expect(login).toBeInstanceOf(TerminalError);
    expect((login as Error).message).toMatch(/source CRM: login failed .*check the connection string setting and the authentication mode/);
    const perm = classifyMssqlError(Object.assign(new Error('The SELECT permission was denied'), { number: 229 }), 'source CRM');
    expect((perm as Error).message).toBe('source CRM: SQL Server error 229: The SELECT permission was denied');
    expect((perm as TerminalError).cause).toBeDefined();
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { readSetting } from '../../../shared/config/load.js';
import { errorMessage } from '../../../shared/errors.js';
import { createLogger, type LogLevel } from '../../../shared/telemetry/logger.js';
import { forgetSecrets, redact, redactValue, registerSecret } from '../../../shared/telemetry/redact.js';

afterEach(() => forgetSecrets());

describe('redact: the one helper every log line, error text, run record and event goes through', () => {
  it('masks the secret parts of connection strings, URLs and signed query strings whose values were never registered', () => {
    const cases: Array<[string, string]> = [
      ['Server=db,1433;User Id=sa;Password=Hunter2!x;Encrypt=true', 'Server=db,1433;User Id=sa;Password=***;Encrypt=true'],
      ['pwd = "a;b c"; server=x', 'pwd=***; server=x'],
      ['DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=abc/def+ghi==;EndpointSuffix=core.windows.net', 'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=***;EndpointSuffix=core.windows.net'],
      ['connect to postgres://tm:s3cr3t%40x@pg.example:5432/crm failed', 'connect to postgres://tm:***@pg.example:5432/crm failed'],
      ['https://acct.dfs.core.windows.net/staging?sv=2022&sig=AbC%2Bdef&se=2027', 'https://acct.dfs.core.windows.net/staging?sv=2022&sig=***&se=2027'],
      ['POST https://app.azurewebsites.net/api/x?code=fnKey123 → 401', 'POST https://app.azurewebsites.net/api/x?code=*** → 401'],
      ['Endpoint=sb://x/;SharedAccessKeyName=root;SharedAccessKey=k3y=', 'Endpoint=sb://x/;SharedAccessKeyName=root;SharedAccessKey=***'],
    ];
    for (const [input, expected] of cases) expect(redact(input)).toBe(expected);
  });

  it('leaves ordinary text alone: SQL, counts, key columns, URLs without credentials', () => {
    for (const t of [
      'select count(*) from dw.dim_account where key = 5',
      '3 row(s) have NULL in key column(s) id; nothing was merged',
      'http://127.0.0.1:7071/api/pipelines/accounts/runs/20260101T000000Z-0a1b',
      'password policy: the column password_hash is not tracked',
    ]) {
      expect(redact(t)).toBe(t);
    }
  });

  it('masks the registered value of a setting anywhere, also a webhook token in a URL path, longest first', () => {
    const hook = 'https://hooks.slack.com/services/T000/B000/XyZtokenPART';
    registerSecret(hook);
    expect(redact(`webhook failed: fetch ${hook} ECONNRESET`)).toBe('webhook failed: fetch *** ECONNRESET');
    expect(redact('posting to hooks.slack.com/services/T000/B000/XyZtokenPART')).toBe('posting to ***');
    registerSecret('abc'); // too short to mask safely: ordinary words would go too
    expect(redact('abc')).toBe('abc');
  });

  it('readSetting registers what it reads; errorMessage and the logger redact; nested values too', () => {
    const env = { CRM_SQL: 'Server=crm;Uid=svc;Pwd=OnlyInTheSetting77;' };
    readSetting('CRM_SQL', env);
    // A driver that echoes a part of the string in an odd form still cannot leak the password.
    expect(errorMessage(new Error('login failed near "OnlyInTheSetting77"'))).toBe('login failed near "***"');
    const lines: Array<[LogLevel, string, Record<string, unknown>]> = [];
    const log = createLogger((l, m, p) => lines.push([l, m, p]), { pipeline: 'p' }).child({ runId: 'r' });
    log.log('debug', 'opening Server=crm;Uid=svc;Pwd=OnlyInTheSetting77;', { cs: env.CRM_SQL, nested: { list: ['x OnlyInTheSetting77'] }, n: 3 });
    expect(lines).toEqual([['debug', 'opening ***', { pipeline: 'p', runId: 'r', cs: '***', nested: { list: ['x ***'] }, n: 3 }]]);
    expect(redactValue({ at: new Date(0), ok: true })).toEqual({ at: new Date(0), ok: true });
  });
});

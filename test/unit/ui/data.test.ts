import { describe, expect, it } from 'vitest';
import { parsePipeline } from '../../../shared/config/load.js';
import { ConfigError } from '../../../shared/errors.js';
import { freshnessOf, parseRunLimit, scheduleInfo, UiInputError } from '../../../shared/ui/data.js';

const NOW = new Date('2026-11-24T10:07:30Z');

describe('scheduleInfo', () => {
  it('reads NCRONTAB (seconds first) in UTC: next fire time and interval', () => {
    const every15 = scheduleInfo('0 */15 * * * *', NOW);
    expect(every15.nextRunAt?.toISOString()).toBe('2026-11-24T10:15:00.000Z');
    expect(every15.intervalMs).toBe(15 * 60_000);
    const daily = scheduleInfo('30 0 2 * * *', NOW);
    expect(daily.nextRunAt?.toISOString()).toBe('2026-11-25T02:00:30.000Z');
    expect(daily.intervalMs).toBe(86_400_000);
  });

  it('is empty for an unscheduled pipeline', () => {
    expect(scheduleInfo(undefined, NOW)).toEqual({ nextRunAt: null, intervalMs: null });
  });
});

describe('freshnessOf', () => {
  const ago = (ms: number) => new Date(NOW.getTime() - ms).toISOString();

  it('uses the configured threshold: fresh up to it, stale past it', () => {
    expect(freshnessOf({ freshness: '2h' }, ago(7_200_000), NOW)).toEqual({
      state: 'fresh',
      thresholdMs: 7_200_000,
      thresholdSource: 'config',
      lastSuccessAt: ago(7_200_000),
      ageMs: 7_200_000,
    });
    expect(freshnessOf({ freshness: '2h' }, ago(7_200_001), NOW).state).toBe('stale');
  });

  it('defaults to twice the schedule interval; the config wins over the schedule', () => {
    const f = freshnessOf({ schedule: '0 */15 * * * *' }, ago(31 * 60_000), NOW);
    expect(f).toMatchObject({ state: 'stale', thresholdMs: 30 * 60_000, thresholdSource: 'schedule' });
    expect(freshnessOf({ schedule: '0 */15 * * * *' }, ago(29 * 60_000), NOW).state).toBe('fresh');
    expect(freshnessOf({ schedule: '0 */15 * * * *', freshness: '1d' }, ago(31 * 60_000), NOW)).toMatchObject({ state: 'fresh', thresholdSource: 'config' });
  });

  it('never succeeded → never; no threshold at all → unset', () => {
    expect(freshnessOf({ freshness: '1h' }, null, NOW)).toMatchObject({ state: 'never', ageMs: null, thresholdMs: 3_600_000 });
    expect(freshnessOf({}, null, NOW)).toMatchObject({ state: 'never', thresholdMs: null });
    expect(freshnessOf({}, ago(999_999_999), NOW)).toMatchObject({ state: 'unset', ageMs: 999_999_999 });
  });
});

describe('parseRunLimit', () => {
  it('defaults to 50 and accepts 1..500', () => {
    expect(parseRunLimit(null)).toBe(50);
    expect(parseRunLimit('')).toBe(50);
    expect(parseRunLimit('1')).toBe(1);
    expect(parseRunLimit('500')).toBe(500);
  });

  it.each(['0', '501', '2.5', 'ten', '-3'])('rejects %j naming the parameter and the range', (text) => {
    expect(() => parseRunLimit(text)).toThrow(UiInputError);
    expect(() => parseRunLimit(text)).toThrow(/limit must be a whole number from 1 to 500/);
  });
});

describe('pipeline freshness field', () => {
  const base = `name: accounts
source: { connection: SRC, table: crm.accounts }
key: [id]
target: { warehouse: WH, table: dw.dim_account }
`;

  it('is optional and takes a duration', () => {
    expect(parsePipeline('pipelines/accounts.yaml', base).freshness).toBeUndefined();
    expect(parsePipeline('pipelines/accounts.yaml', `${base}freshness: 90m\n`).freshness).toBe('90m');
  });

  it('rejects a malformed duration, naming the file, the field and the fix', () => {
    const parse = () => parsePipeline('pipelines/accounts.yaml', `${base}freshness: soon\n`);
    expect(parse).toThrow(ConfigError);
    expect(parse).toThrow(/pipelines\/accounts\.yaml at freshness: must be a number and a unit \(ms, s, m, h, d\), e\.g\. 5m/);
  });
});

import { describe, expect, it } from 'vitest';
import { startRunBodySchema, utcInstant } from '../../../shared/engine/http-api.js';

describe('start-run body: backfill bounds', () => {
  it('accepts a date alone as 00:00 UTC of that day, and a time with a zone as given', () => {
    const b = startRunBodySchema.parse({ mode: 'backfill', from: '2026-12-02', to: '2026-12-03T06:00:00Z' });
    expect([utcInstant(b.from!), utcInstant(b.to!)]).toEqual(['2026-12-02T00:00:00Z', '2026-12-03T06:00:00Z']);
  });

  it('refuses a time without a zone and a bad date, saying which forms it takes; compares dates as instants', () => {
    const r = startRunBodySchema.safeParse({ mode: 'backfill', from: '2026-12-02T00:00:00' });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.message).toBe('must be an ISO-8601 time with a zone (2026-12-02T00:00:00Z) or a date (2026-12-02, 00:00 UTC)');
    expect(startRunBodySchema.safeParse({ mode: 'backfill', from: '2026-13-02' }).success).toBe(false);
    const order = startRunBodySchema.safeParse({ mode: 'backfill', from: '2026-12-03', to: '2026-12-02T12:00:00Z' });
    expect(order.error!.issues.map((i) => i.message)).toEqual(['"to" must be after "from"']);
  });
});

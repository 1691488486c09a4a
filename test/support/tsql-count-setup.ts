import sql from 'mssql';
import { afterAll, afterEach, inject } from 'vitest';

/**
 * Vitest setup file: counts the tests that sent at least one statement over TDS (through the
 * `mssql` driver, which the code under test and the test helpers share), and reports the figure
 * to the run's T-SQL engine broker, whose teardown prints the total. Tests that only render
 * T-SQL (golden files, fakes) are not counted.
 */
let ran = 0;
let touched = false;
const proto = sql.Request.prototype as unknown as Record<'query' | 'batch' | 'execute', (...a: unknown[]) => unknown>;
for (const m of ['query', 'batch', 'execute'] as const) {
  const orig = proto[m];
  proto[m] = function (this: unknown, ...args: unknown[]) {
    touched = true;
    return orig.apply(this, args);
  };
}
afterEach(() => {
  if (touched) ran += 1;
  touched = false;
});
afterAll(async () => {
  if (ran === 0) return;
  const broker = inject('tsqlBroker');
  if (broker) await fetch(`${broker}/ran?n=${ran}`, { method: 'POST' }).catch(() => undefined);
});

import { afterAll, afterEach, inject } from 'vitest';
import { engineUsedInThisFile } from './tsql-engine.js';

/**
 * Vitest setup file: counts the tests of a file that ran after it was handed the T-SQL engine,
 * and reports the figure to the run's broker, whose teardown prints the total.
 */
let ran = 0;
afterEach(() => {
  if (engineUsedInThisFile()) ran += 1;
});
afterAll(async () => {
  if (ran === 0) return;
  const broker = inject('tsqlBroker');
  if (broker) await fetch(`${broker}/ran?n=${ran}`, { method: 'POST' }).catch(() => undefined);
});

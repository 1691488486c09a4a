import type { TestProject } from 'vitest/node';
import { startBroker } from './tsql-engine-broker.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Base URL of the run's T-SQL engine broker (test/support/tsql-engine-broker.ts). */
    tsqlBroker: string;
  }
}

/** Vitest global setup: one T-SQL engine broker per run; prints how many T-SQL tests ran. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const broker = await startBroker();
  project.provide('tsqlBroker', broker.url);
  return async () => {
    const { tests, files } = broker.ran();
    const a = broker.answer();
    await broker.stop();
    if (!a) return; // no test asked for the engine in this run
    if ('skip' in a) console.log(`\nT-SQL tests: skipped (${a.skip})`);
    else console.log(`\nT-SQL tests: ${tests} ran on the T-SQL engine in ${files} file(s)`);
  };
}

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * A database or cloud driver loaded on its first use instead of at process start. Every CLI
 * command imports the factories of every source and warehouse kind, and loading mssql /
 * tedious, jsforce, pg and @azure/identity up front cost about a second of each `tidemark run`
 * (issue #19, scenario E), also for a project that uses none of them. Synchronous (require), so
 * the code that uses a driver keeps its shape.
 */
export function lazyModule<T>(name: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(name) as T);
}

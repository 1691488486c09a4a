import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * A database driver loaded on its first use instead of at process start. Every CLI command
 * imports the factories of every source and warehouse kind, and loading mssql / tedious,
 * jsforce and pg up front cost most of a second of each `tidemark run` (issue #19, scenario E),
 * also for a project that uses none of them. Synchronous (require), so the code that uses a
 * driver keeps its shape. Only for packages whose require and import give the same module
 * (checked for these three): @azure/identity ships two builds, and its classes loaded by require
 * would not be the ones `instanceof` checks elsewhere see, so it stays a static import.
 */
export function lazyModule<T>(name: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(name) as T);
}

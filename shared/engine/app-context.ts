import { loadProject } from '../config/load.js';
import { createContext, ensureStorage, type EngineContext } from './context.js';
import { defaultSourceFor, defaultWarehouseFor } from './factories.js';
import { createLogger, type LogSink } from '../telemetry/logger.js';
import { startAzureMonitor } from '../telemetry/otel.js';

let cached: Promise<EngineContext> | undefined;

/** Project folder of the deployed app: TIDEMARK_PROJECT_DIR, else the app root (cwd). */
export function appProjectDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.TIDEMARK_PROJECT_DIR ?? process.cwd();
}

/**
 * The engine context of the Function App, built once per worker process from app settings.
 * `sink` receives log lines; functions/ passes the invocation's logger through it.
 */
export function appContext(sink?: LogSink): Promise<EngineContext> {
  cached ??= (async () => {
    const project = loadProject(appProjectDir());
    const ctx = createContext({
      project,
      telemetry: await startAzureMonitor(),
      sourceFor: defaultSourceFor,
      warehouseFor: defaultWarehouseFor,
    });
    await ensureStorage(ctx);
    return ctx;
  })().catch((err: unknown) => {
    cached = undefined;
    throw err;
  });
  // The ports are shared per process, the logger is per invocation: a cached logger would send
  // later invocations' lines to the first invocation's context.
  return sink ? cached.then((ctx) => ({ ...ctx, log: createLogger(sink) })) : cached;
}

/** For tests: forget the cached context. */
export function resetAppContext(): void {
  cached = undefined;
}

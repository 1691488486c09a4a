import { loadProject, type ResolvedProject } from '../config/load.js';
import { createContext, ensureStorage, type EngineContext } from './context.js';
import { defaultSourceFor, defaultWarehouseFor } from './factories.js';
import { createLogger, type Logger, type LogSink } from '../telemetry/logger.js';
import { startAzureMonitor } from '../telemetry/otel.js';

let cached: Promise<EngineContext> | undefined;

/** Project folder of the deployed app: TIDEMARK_PROJECT_DIR, else the app root (cwd). */
export function appProjectDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.TIDEMARK_PROJECT_DIR ?? process.cwd();
}

/**
 * The deployed project, loaded the way the CLI loads it: a broken pipeline file is set aside (and
 * reported on `log`, error level, with the parser's message) so it stops only what needs it, not
 * every other pipeline's timers, queues and routes.
 */
export function loadAppProject(dir: string): ResolvedProject {
  return loadProject(dir, { broken: 'collect' });
}

export function reportBroken(project: ResolvedProject, log: Logger): void {
  for (const [name, err] of project.broken ?? []) {
    log.log('error', `pipeline ${name} is not loaded, the others run: ${err.message}`, { pipeline: name });
  }
}

/**
 * The engine context of the Function App, built once per worker process from app settings.
 * `sink` receives log lines; functions/ passes the invocation's logger through it.
 */
export function appContext(sink?: LogSink): Promise<EngineContext> {
  cached ??= (async () => {
    const project = loadAppProject(appProjectDir());
    const ctx = createContext({
      project,
      telemetry: await startAzureMonitor(),
      sourceFor: defaultSourceFor,
      warehouseFor: defaultWarehouseFor,
    });
    reportBroken(project, ctx.log);
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

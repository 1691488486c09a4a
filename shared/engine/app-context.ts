import { loadProject, type ResolvedProject } from '../config/load.js';
import { createContext, ensureStorage, type EngineContext } from './context.js';
import { defaultSourceFor, defaultWarehouseFor } from './factories.js';
import { createLogger, jsonLineSink, type Logger, type LogSink } from '../telemetry/logger.js';
import { startAzureMonitor } from '../telemetry/otel.js';

let cached: Promise<EngineContext> | undefined;

/** Project folder of the deployed app: TIDEMARK_PROJECT_DIR, else the app root (cwd). */
export function appProjectDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.TIDEMARK_PROJECT_DIR ?? process.cwd();
}

/**
 * The deployed project. A broken pipeline file is set aside and logged as an error (an App
 * Insights trace), so that one typo does not stop the worker from indexing every other
 * pipeline's functions; runs of the broken pipeline fail with the file's error (terminal).
 */
export function loadAppProject(dir: string = appProjectDir(), log: Logger = createLogger(jsonLineSink())): ResolvedProject {
  const project = loadProject(dir, { broken: 'collect' });
  for (const [pipeline, err] of project.broken ?? []) {
    log.log('error', 'PipelineConfigBroken', { pipeline, file: err.file, error: err.message });
  }
  return project;
}

/**
 * The engine context of the Function App, built once per worker process from app settings.
 * `sink` receives log lines; functions/ passes the invocation's logger through it.
 */
export function appContext(sink?: LogSink): Promise<EngineContext> {
  cached ??= (async () => {
    const project = loadAppProject(appProjectDir(), sink ? createLogger(sink) : undefined);
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

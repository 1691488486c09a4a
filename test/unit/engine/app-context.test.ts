import { describe, expect, it } from 'vitest';
import { loadAppProject, reportBroken } from '../../../shared/engine/app-context.js';
import type { EngineContext } from '../../../shared/engine/context.js';
import { handleStartRun } from '../../../shared/engine/http-api.js';
import { createLogger } from '../../../shared/telemetry/logger.js';
import { makeProject } from '../../support/project.js';

describe('the Function App loads a project with one broken pipeline file', () => {
  const dir = makeProject({
    pipelines: {
      good: 'name: good\nsource: { connection: SRC, table: t }\nkey: [id]\nschedule: "0 */5 * * * *"\ntarget: { warehouse: WH, table: dim_good }\n',
      bad: 'name: bad\nsource: { connection: SRC, table: t }\nkey: [id]\ntarget:\n  warehouse: WH\n table: x\n',
    },
  });

  it('keeps the good pipelines (their timers register) and reports the broken file with the parser snippet', () => {
    const project = loadAppProject(dir);
    expect([...project.pipelines.keys()]).toEqual(['good']);
    const lines: Array<[string, string, Record<string, unknown>]> = [];
    reportBroken(project, createLogger((level, message, props) => lines.push([level, message, props])));
    expect(lines).toHaveLength(1);
    const [level, message, props] = lines[0]!;
    expect(level).toBe('error');
    expect(message).toMatch(/^pipeline bad is not loaded, the others run: pipelines\/bad\.yaml/);
    expect(message).toContain(' table: x');
    expect(props).toMatchObject({ pipeline: 'bad' });
  });

  it('a start of the broken pipeline over HTTP says why (422), an unknown one is 404', async () => {
    // handleStartRun answers from the project alone before it touches storage.
    const ctx = { project: loadAppProject(dir) } as unknown as EngineContext;
    const bad = await handleStartRun(ctx, { pipeline: 'bad', bodyText: '', baseUrl: 'http://x' });
    expect(bad.status).toBe(422);
    expect((bad.jsonBody as { error: string }).error).toContain('pipelines/bad.yaml');
    expect((await handleStartRun(ctx, { pipeline: 'nope', bodyText: '', baseUrl: 'http://x' })).status).toBe(404);
  });
});

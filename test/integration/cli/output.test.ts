import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';
import { chooseLogFormat, formatTextLine } from '../../../shared/telemetry/logger.js';
import { exitQuietlyOnClosedPipe } from '../../../cli/common.js';
import { makeProject } from '../../support/project.js';

/** The CLI as a real process, bundled from source (no dist/ needed), so pipes are real pipes. */
describe('tidemark output on pipes and terminals', () => {
  const root = join(import.meta.dirname, '..', '..', '..');
  const bundle = join(root, '.tidemark', 'test-cli', 'main.mjs');
  beforeAll(async () => {
    mkdirSync(join(root, '.tidemark', 'test-cli'), { recursive: true });
    // Inside the repository, so the external packages resolve from its node_modules.
    await build({ entryPoints: [join(root, 'cli', 'main.ts')], bundle: true, platform: 'node', format: 'esm', packages: 'external', outfile: bundle, logLevel: 'silent' });
  });

  it('a closed pipe (tidemark … | head -1) exits 0 quietly; any other stream error still surfaces', () => {
    const stream = new EventEmitter();
    const codes: number[] = [];
    exitQuietlyOnClosedPipe(stream as unknown as NodeJS.WriteStream, (c) => codes.push(c));
    stream.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    expect(codes).toEqual([0]);
    expect(() => stream.emit('error', Object.assign(new Error('write EIO'), { code: 'EIO' }))).toThrow('write EIO');
    expect(codes).toEqual([0]);
  });

  it('log lines are text for a person, JSON with --log-format json or in CI', () => {
    expect(chooseLogFormat(undefined, {})).toBe('text');
    expect(chooseLogFormat(undefined, { CI: 'true' })).toBe('json');
    expect(chooseLogFormat(undefined, { CI: 'false' })).toBe('text');
    expect(chooseLogFormat('json', {})).toBe('json');
    expect(chooseLogFormat('text', { CI: 'true' })).toBe('text');
    expect(formatTextLine(new Date('2026-12-01T08:09:10.123Z'), 'error', 'ValidationFailed', { pipeline: 'crm_accounts', runId: 'r1', checks: ['sample'], why: 'two words' })).toBe(
      '08:09:10 error ValidationFailed  pipeline=crm_accounts runId=r1 checks=["sample"] why="two words"',
    );
  });

  it('refuses an unknown --log-format as a usage error (exit 2)', async () => {
    const dir = makeProject({ pipelines: {} });
    const child = spawn(process.execPath, [bundle, 'status', '--log-format', 'xml', '--project', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(stderr).toContain('--log-format must be json or text, got "xml"');
    expect(code).toBe(2);
  }, 60_000);
});

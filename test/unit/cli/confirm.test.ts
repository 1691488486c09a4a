import { describe, expect, it } from 'vitest';
import { confirm } from '../../../cli/confirm.js';
import { exitCodeFor } from '../../../cli/common.js';

describe('confirm before a command changes the warehouse', () => {
  it('asks a person and goes ahead only on y / yes', async () => {
    const asked: string[] = [];
    const ask = (answer: string) => (q: string) => (asked.push(q), Promise.resolve(answer));
    expect(await confirm('roll p back to r1', { interactive: true, ask: ask('y') })).toBe(true);
    expect(await confirm('roll p back to r1', { interactive: true, ask: ask(' YES ') })).toBe(true);
    expect(await confirm('roll p back to r1', { interactive: true, ask: ask('') })).toBe(false);
    expect(await confirm('roll p back to r1', { interactive: true, ask: ask('no') })).toBe(false);
    expect(asked[0]).toBe('roll p back to r1? [y/N] ');
  });

  it('--yes skips the question; a script without --yes is refused as a usage error', async () => {
    expect(await confirm('x', { yes: true, interactive: false, ask: () => Promise.reject(new Error('must not ask')) })).toBe(true);
    const err = await confirm('restore p from b', { interactive: false }).catch((e: unknown) => e);
    expect(exitCodeFor(err)).toBe(2);
    expect((err as Error).message).toBe('restore p from b changes the warehouse: pass --yes to go ahead without a prompt, or --dry-run to only see what it would do');
  });
});

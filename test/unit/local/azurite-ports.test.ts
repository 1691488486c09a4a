import { describe, expect, it } from 'vitest';
import { freePorts } from '../../../shared/local/azurite.js';

describe('free ports for a local Azurite', () => {
  it('are distinct within one request, every time', async () => {
    // One port at a time, the kernel handed out a just-freed port twice (blob = queue) in CI.
    for (let i = 0; i < 200; i++) {
      const ports = await freePorts(3);
      expect(new Set(ports).size).toBe(3);
      for (const p of ports) expect(p).toBeGreaterThan(0);
    }
  });
});

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * Value imports of a module, static and dynamic (`import type` and `export type` erase at
 * build and order nothing at run time). A dynamic `import()` still counts: it only hides a
 * cycle from module init order, the modules still depend on each other.
 */
export function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  const staticRe = /^\s*(?:import|export)\s+(?!type\b)(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]/gm;
  const dynamicRe = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (const re of [staticRe, dynamicRe]) {
    for (const m of text.matchAll(re)) {
      const spec = m[1]!;
      if (!spec.startsWith('.')) continue;
      out.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
    }
  }
  return out;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Every import cycle reachable from the given files, each as a list of repo-relative paths. */
export function importCycles(files: readonly string[]): string[][] {
  const cycles = new Map<string, string[]>();
  const done = new Set<string>();
  const walk = (file: string, path: string[]): void => {
    const at = path.indexOf(file);
    if (at >= 0) {
      const cycle = path.slice(at).map((f) => relative(root, f));
      // One entry per cycle, whichever module the walk entered it by.
      const key = [...cycle].sort().join(' ');
      if (!cycles.has(key)) cycles.set(key, [...cycle, cycle[0]!]);
      return;
    }
    if (done.has(file)) return;
    for (const dep of importsOf(file)) walk(dep, [...path, file]);
    done.add(file);
  };
  for (const f of files) walk(f, []);
  return [...cycles.values()];
}

describe('shared/engine import graph', () => {
  it('finds a cycle when there is one (the checker itself)', () => {
    const a = join(root, 'test/unit/engine/fixtures/cycle-a.ts');
    expect(importCycles([a]).map((c) => c.map((f) => f.split('/').pop()))).toEqual([['cycle-a.ts', 'cycle-b.ts', 'cycle-a.ts']]);
  });

  it('has no import cycle through shared/engine', () => {
    const cycles = importCycles(tsFiles(join(root, 'shared/engine'))).filter((c) => c.some((f) => f.startsWith('shared/engine/')));
    expect(cycles.map((c) => c.join(' → '))).toEqual([]);
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderSchemas } from '../../../cli/commands/schema.js';

describe('JSON Schema for editors', () => {
  it('is generated from the zod schemas and the committed files are up to date (run `npm run schema`)', () => {
    for (const [file, text] of Object.entries(renderSchemas())) {
      expect(readFileSync(new URL(`../../../schemas/${file}`, import.meta.url), 'utf8'), file).toBe(text);
    }
  });

  it('describes the pipeline contract, including refusals of unknown fields', () => {
    const schema = JSON.parse(renderSchemas()['pipeline.schema.json']!) as { properties: Record<string, unknown>; additionalProperties: unknown; required: string[] };
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(['name', 'schedule', 'source', 'key', 'transform', 'target', 'validation', 'retry']));
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(expect.arrayContaining(['name', 'source', 'key', 'target']));
  });
});

/** Every property of every object in a JSON Schema, with the path it sits at. */
function properties(node: unknown, path: string, out: Array<{ path: string; schema: Record<string, unknown> }>): void {
  if (!node || typeof node !== 'object') return;
  const n = node as Record<string, unknown>;
  if (n.properties && typeof n.properties === 'object') {
    for (const [k, v] of Object.entries(n.properties as Record<string, unknown>)) {
      out.push({ path: `${path}.${k}`, schema: v as Record<string, unknown> });
      properties(v, `${path}.${k}`, out);
    }
  }
  for (const key of ['anyOf', 'oneOf', 'allOf']) if (Array.isArray(n[key])) (n[key] as unknown[]).forEach((v, i) => properties(v, `${path}[${i}]`, out));
  for (const key of ['items', 'additionalProperties']) if (n[key] && typeof n[key] === 'object') properties(n[key], `${path}.${key}`, out);
}

describe('editor hover', () => {
  it('every field of tidemark.yaml and of a pipeline file carries a description', () => {
    for (const file of ['tidemark.schema.json', 'pipeline.schema.json']) {
      const found: Array<{ path: string; schema: Record<string, unknown> }> = [];
      properties(JSON.parse(renderSchemas()[file]!), file, found);
      expect(found.length).toBeGreaterThan(file === 'pipeline.schema.json' ? 40 : 10);
      const missing = found.filter((f) => typeof f.schema.description !== 'string' || f.schema.description.length < 8).map((f) => f.path);
      expect(missing, `fields without a description in ${file}`).toEqual([]);
    }
  });
});

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

import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pipelineJsonSchema, projectJsonSchema } from '../../shared/config/json-schema.js';
import { planJsonSchema } from '../../shared/plan/model.js';
import { EXIT, parse, type Command } from '../common.js';

const usage = 'tidemark schema [--out DIR]';

export const SCHEMA_FILES = {
  'tidemark.schema.json': projectJsonSchema,
  'pipeline.schema.json': pipelineJsonSchema,
  'plan.schema.json': planJsonSchema,
} as const;

export function renderSchemas(): Record<string, string> {
  return Object.fromEntries(Object.entries(SCHEMA_FILES).map(([f, gen]) => [f, `${JSON.stringify(gen(), null, 2)}\n`]));
}

/** Writes the JSON Schemas (generated from the zod schemas) for editor completion. */
export const schemaCommand: Command = {
  summary: 'write JSON Schemas of tidemark.yaml and pipeline files (for yaml-language-server)',
  usage,
  async run(argv) {
    const { values } = parse(argv, { out: { type: 'string' } }, usage);
    const dir = resolve(values.out ?? 'schemas');
    mkdirSync(dir, { recursive: true });
    for (const [f, text] of Object.entries(renderSchemas())) writeFileSync(join(dir, f), text);
    process.stdout.write(`wrote ${Object.keys(SCHEMA_FILES).join(', ')} to ${dir}\n`);
    return EXIT.ok;
  },
};

import { z } from 'zod';
import { pipelineSchema, projectSchema } from './schema.js';

/** JSON Schema for editor completion (yaml-language-server), generated so it cannot drift. */
export function projectJsonSchema(): unknown {
  return z.toJSONSchema(projectSchema, { io: 'input', unrepresentable: 'any' });
}

export function pipelineJsonSchema(): unknown {
  return z.toJSONSchema(pipelineSchema, { io: 'input', unrepresentable: 'any' });
}

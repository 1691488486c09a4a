import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';

export const LOCAL_SETTINGS_FILE = 'local.settings.json';

export type SettingOrigin = 'environment' | typeof LOCAL_SETTINGS_FILE;

export interface ProjectSettings {
  /** The environment with local.settings.json's Values under it: a variable that is set wins. */
  env: NodeJS.ProcessEnv;
  /** Where a setting's value came from; undefined when neither has it. */
  originOf(name: string): SettingOrigin | undefined;
  /** The settings file that was read, when there is one. */
  file?: string;
}

const isSet = (v: string | undefined): v is string => v !== undefined && v !== '';

/**
 * Reads `Values` of local.settings.json the way `func start` does, so the CLI and the Functions
 * host see the same settings; an environment variable that is set (non-empty) wins over the file.
 */
export function readProjectSettings(dir: string, env: NodeJS.ProcessEnv = process.env): ProjectSettings {
  const file = join(dir, LOCAL_SETTINGS_FILE);
  if (!existsSync(file)) return { env, originOf: (n) => (isSet(env[n]) ? 'environment' : undefined) };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new ConfigError(LOCAL_SETTINGS_FILE, '', `not valid JSON (${(cause as Error).message}); fix it or start from local.settings.example.json`, { cause });
  }
  const doc = (parsed ?? {}) as { IsEncrypted?: unknown; Values?: unknown };
  if (doc.IsEncrypted === true) {
    throw new ConfigError(LOCAL_SETTINGS_FILE, 'IsEncrypted', 'the file is encrypted; run `func settings decrypt` (the CLI reads plain Values only)');
  }
  if (doc.Values !== undefined && (typeof doc.Values !== 'object' || doc.Values === null || Array.isArray(doc.Values))) {
    throw new ConfigError(LOCAL_SETTINGS_FILE, 'Values', 'must be an object of setting names to strings');
  }
  const values: Record<string, string> = {};
  for (const [k, v] of Object.entries((doc.Values ?? {}) as Record<string, unknown>)) {
    if (v === null || v === undefined) continue;
    if (typeof v === 'object') throw new ConfigError(LOCAL_SETTINGS_FILE, `Values.${k}`, 'must be a string (func start passes settings as strings)');
    values[k] = String(v);
  }
  const merged: NodeJS.ProcessEnv = { ...values };
  for (const [k, v] of Object.entries(env)) if (isSet(v) || !(k in merged)) merged[k] = v;
  return {
    env: merged,
    file,
    originOf: (n) => (isSet(env[n]) ? 'environment' : isSet(values[n]) ? LOCAL_SETTINGS_FILE : undefined),
  };
}

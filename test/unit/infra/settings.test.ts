import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadProject } from '../../../shared/config/load.js';
import { namedSettings } from '../../../shared/engine/doctor.js';
import { createStorageClients, resolveStorageConnection } from '../../../shared/storage/clients.js';
import { ManagedIdentityCredential } from '@azure/identity';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((f) => {
    const rel = join(dir, f);
    if (statSync(join(ROOT, rel)).isDirectory()) return sources(rel);
    return rel.endsWith('.ts') ? [rel] : [];
  });
}

/** Every app setting / environment variable the code reads, found textually. */
function settingsReadByCode(): Map<string, string> {
  const found = new Map<string, string>();
  const patterns = [
    /\benv\.([A-Z_][A-Za-z0-9_]*)/g, // process.env.X, ctx.env.X
    /\benv\[\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]\s*\]/g,
    /readSetting\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]/g,
    /_SETTING\s*=\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]/g, // named constants read through env[CONST]
    /\bconnection:\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]/g, // binding connections in functions/
  ];
  for (const file of ['shared', 'functions', 'cli'].flatMap(sources)) {
    const text = read(file);
    for (const re of patterns) for (const m of text.matchAll(re)) if (!found.has(m[1]!)) found.set(m[1]!, file);
  }
  // The default of tidemark.yaml `storage:` (shared/config/schema.ts) is read through readSetting(name).
  found.set('AzureWebJobsStorage', 'shared/config/schema.ts');
  return found;
}

/** Read only by the CLI on a developer machine or CI, never by the Function App. */
const LOCAL_ONLY: Record<string, string> = {
  TIDEMARK_LOG_LEVEL: 'CLI log level',
  TIDEMARK_NO_COMPILE_CACHE: 'CLI launcher: load the bundle without the V8 code cache',
  NODE_OPTIONS: "CLI launcher: part of the code cache's name (V8 rejects a cache made under other flags)",
  TIDEMARK_DEV_PORT: 'tidemark dev port',
  TIDEMARK_DEV_KEY: 'tidemark dev --allow-remote: the key every request needs',
  CI: 'set by CI systems; silences progress output',
  DISPLAY: 'tidemark ui: whether a browser can be opened',
  WAYLAND_DISPLAY: 'tidemark ui: whether a browser can be opened',
  USER: 'tidemark ack: who acknowledged',
};

/** Read by the Function App only when present; the Bicep (system-assigned identity) leaves them unset. */
const OPTIONAL_IN_APP: Record<string, string> = {
  AZURE_CLIENT_ID: 'user-assigned managed identity for Entra ID SQL logins',
};

const bicep = read('infra/main.bicep');
const params = JSON.parse(read('infra/main.parameters.json')) as { parameters: Record<string, { value: unknown }> };
const readme = read('README.md');

function bicepAppSettings(): Set<string> {
  const block = /resource appSettings [\s\S]*?properties: union\(\s*\{([\s\S]*?)\n\s*\},\s*connectionSettings/.exec(bicep);
  expect(block, 'infra/main.bicep has the appSettings union block').not.toBeNull();
  return new Set([...block![1]!.matchAll(/^\s*([A-Za-z_][A-Za-z0-9_]*):/gm)].map((m) => m[1]!));
}

function readmeSettings(): Set<string> {
  const section = readme.split(/^## /m).find((s) => s.startsWith('Settings'));
  expect(section, 'README has a "## Settings" section').toBeDefined();
  return new Set([...section!.matchAll(/^\|\s*`([A-Za-z_][A-Za-z0-9_]*)`/gm)].map((m) => m[1]!));
}

describe('app settings: code ↔ infra/main.bicep ↔ README', () => {
  const code = settingsReadByCode();
  const inBicep = bicepAppSettings();
  const inReadme = readmeSettings();
  const connectionSettings = Object.keys((params.parameters.connectionSettings?.value ?? {}) as Record<string, string>);

  it('finds the settings it is meant to find (the scan itself works)', () => {
    for (const s of ['AzureWebJobsStorage', 'APPLICATIONINSIGHTS_CONNECTION_STRING', 'TIDEMARK_PROJECT_DIR', 'TIDEMARK_LEASE_MINUTES', 'TIDEMARK_LOG_LEVEL']) {
      expect(code.has(s), s).toBe(true);
    }
  });

  it('every setting the Function App code reads is set by the Bicep (the storage setting as its identity-based form)', () => {
    const storageSet = (s: string) => s === 'AzureWebJobsStorage' && [...inBicep].some((b) => b.startsWith('AzureWebJobsStorage__'));
    const missing = [...code].filter(([s]) => !LOCAL_ONLY[s] && !OPTIONAL_IN_APP[s] && !inBicep.has(s) && !storageSet(s)).map(([s, f]) => `${s} (read in ${f})`);
    expect(missing, 'add them to the appSettings block of infra/main.bicep').toEqual([]);
  });

  it('every setting the code reads, and every one the Bicep sets, is documented in the README settings table', () => {
    const undocumented = [...new Set([...code.keys(), ...inBicep])].filter((s) => !inReadme.has(s));
    expect(undocumented, 'add a row to README "## Settings"').toEqual([]);
  });

  it('every setting named by the config and local.settings.example.json is provided through connectionSettings and documented', () => {
    const local = JSON.parse(read('local.settings.example.json')) as { Values: Record<string, string> };
    // FUNCTIONS_WORKER_RUNTIME: on Flex Consumption the runtime is functionAppConfig.runtime, not a setting.
    const named = new Set([
      ...namedSettings(loadProject(ROOT)).map((s) => s.setting),
      ...namedSettings(loadProject(join(ROOT, 'examples', 'azure'))).map((s) => s.setting),
      ...Object.keys(local.Values).filter((k) => k !== 'FUNCTIONS_WORKER_RUNTIME'),
    ]);
    for (const s of named) {
      // Locally the storage is Azurite's connection string; in Azure its identity-based form.
      const storageByIdentity = s === 'AzureWebJobsStorage' && inBicep.has('AzureWebJobsStorage__blobServiceUri');
      expect(inBicep.has(s) || storageByIdentity || connectionSettings.includes(s), `${s}: set it in infra/main.bicep or main.parameters.json connectionSettings`).toBe(true);
      expect(inReadme.has(s), `${s}: document it in README "## Settings"`).toBe(true);
    }
    expect(bicep).toContain('runtime: { name: \'node\', version: \'20\' }');
  });

  it('the Bicep\'s storage settings are the identity-based connection the engine, the host and the triggers read: no connection string, the managed identity', () => {
    expect(inBicep.has('AzureWebJobsStorage')).toBe(false);
    const block = /resource appSettings [\s\S]*?properties: union\(\s*\{([\s\S]*?)\n\s*\},\s*connectionSettings/.exec(bicep)![1]!;
    // What ARM puts in for storage.properties.primaryEndpoints.<service> (with its trailing slash).
    const env: NodeJS.ProcessEnv = {};
    for (const m of block.matchAll(/^\s*(AzureWebJobsStorage__\w+): (.+)$/gm)) {
      const endpoint = /^storage\.properties\.primaryEndpoints\.(blob|queue|table)$/.exec(m[2]!);
      env[m[1]!] = endpoint ? `https://tidemarkst.${endpoint[1]}.core.windows.net/` : m[2]!.replace(/^'|'$/g, '');
    }
    expect(Object.keys(env).sort()).toEqual([
      'AzureWebJobsStorage__blobServiceUri',
      'AzureWebJobsStorage__credential',
      'AzureWebJobsStorage__queueServiceUri',
      'AzureWebJobsStorage__tableServiceUri',
    ]);
    const connection = resolveStorageConnection('AzureWebJobsStorage', env);
    expect(connection).toEqual({
      kind: 'identity',
      setting: 'AzureWebJobsStorage',
      blobUrl: 'https://tidemarkst.blob.core.windows.net',
      queueUrl: 'https://tidemarkst.queue.core.windows.net',
      tableUrl: 'https://tidemarkst.table.core.windows.net',
      credential: 'managedIdentity',
    });
    expect(createStorageClients(connection, env).credential).toBeInstanceOf(ManagedIdentityCredential);
    for (const k of Object.keys(env)) expect(inReadme.has(k), `${k}: document it in README "## Settings"`).toBe(true);
    // The identity forms a user may set instead (accountName, a user-assigned clientId) are documented too.
    for (const k of ['AzureWebJobsStorage__accountName', 'AzureWebJobsStorage__clientId']) expect(inReadme.has(k), k).toBe(true);
  });

  it('connectionSettings in the parameters file holds Key Vault references or plain URLs, never secrets', () => {
    for (const v of Object.values(params.parameters.connectionSettings!.value as Record<string, string>)) {
      expect(v).toMatch(/^@Microsoft\.KeyVault\(SecretUri=https:\/\/[^)]+\)$|^https:\/\/[^?;@]+$/);
      expect(v).not.toMatch(/password|accountkey|sig=/i);
    }
  });
});

// Bundles the CLI (cli/main.ts and everything it imports, dependencies included) into one ESM
// file, dist/cli/main.js, over the file tsc wrote there. Node resolves, reads and compiles one
// file instead of about 600 modules (our ~200 and ~400 CommonJS files of the Azure SDK, zod,
// yaml, DuckDB's wrapper): that was most of the fixed cost of a `tidemark run` (issue #19,
// scenario E). Plain JS because it runs in `npm run build`, after `tsc`; production needs no
// esbuild (the published package carries the built file).
//   node cli/build-bundle.mjs            write dist/cli/main.js
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Left to Node at run time, resolved from node_modules like before:
 * - DuckDB's native binding (a .node file per platform);
 * - azurite, started as its own process from its package folder;
 * - the drivers loaded on first use by name (shared/lazy-module.ts, doctor's import()):
 *   bundled they would be parsed at every start, and their optional native parts do not resolve;
 * - Azure Monitor's OpenTelemetry distro (imported when telemetry is on): it patches modules as
 *   they load, and the OpenTelemetry API with it, so both keep their own package's copy.
 */
export const EXTERNAL = [
  '@duckdb/node-bindings*',
  'azurite',
  'mssql',
  'tedious',
  'pg',
  'pg-native',
  'jsforce',
  '@azure/monitor-opentelemetry',
  '@opentelemetry/*',
];

/** The esbuild options of the CLI bundle; `outfile` is where it goes. */
export function bundleOptions(outfile) {
  return {
    entryPoints: [join(root, 'cli', 'main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: EXTERNAL,
    // CommonJS dependencies inside an ESM file still call require() for Node's own modules.
    banner: { js: "import { createRequire as __tidemarkRequire } from 'node:module';\nconst require = __tidemarkRequire(import.meta.url);" },
    sourcemap: true,
    legalComments: 'linked',
    metafile: true,
    logLevel: 'warning',
  };
}

async function main() {
  const outfile = join(root, 'dist', 'cli', 'main.js');
  const result = await build(bundleOptions(outfile));
  const bytes = Object.entries(result.metafile.outputs).find(([f]) => f.endsWith('main.js'))?.[1].bytes ?? 0;
  process.stdout.write(`wrote dist/cli/main.js (${(bytes / 1e6).toFixed(1)} MB, ${Object.keys(result.metafile.inputs).length} modules)\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err) => {
    process.stderr.write(`build-bundle: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}

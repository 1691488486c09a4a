// Bundles the CLI for `npm run build`, after `tsc`, into two files in dist/cli/:
// - tidemark.cjs: cli/main.ts and everything it imports, dependencies included, as one CommonJS
//   file (with its source map). Node resolves, reads and compiles one file instead of about 600
//   modules (our ~200 and ~400 CommonJS files of the Azure SDK, zod, yaml, DuckDB's wrapper):
//   that was most of the fixed cost of a `tidemark run` (issue #19, scenario E).
// - main.js (over tsc's unbundled CLI, still the `tidemark` bin): cli/launch.ts, a small
//   launcher that compiles tidemark.cjs with V8's code cache (cli/compile-cache.ts) and runs it.
//   CommonJS because a vm.Script takes V8's cached data and an ES module cannot be given it on
//   Node 20; the cache saves most of the bundle's remaining compile time. It is written at the
//   first successful run of each command, beside the bundle (else in a per-user temp folder).
// Plain JS because it runs before anything is built; production needs no esbuild (the
// published package carries the built files).
//   node cli/build-bundle.mjs            write dist/cli/tidemark.cjs and dist/cli/main.js
import { readFile } from 'node:fs/promises';
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

/**
 * The Azure SDK's HTTP pipeline asks `typeof FormData` of every request body, and the first
 * read of Node's FormData global loads its fetch implementation (undici, ~50 ms of a CLI
 * start). Every body tidemark sends is a string, buffer or stream; a FormData, whose
 * toStringTag is "FormData", still takes the SDK's path. If the dependency changes, the
 * expression is not found and the bundle is left as it was (only slower): the build says so.
 */
const FORM_DATA_CHECK = 'typeof FormData !== "undefined" && body instanceof FormData';
const FORM_DATA_CHECK_LAZY = 'Object.prototype.toString.call(body) === "[object FormData]" && typeof FormData !== "undefined" && body instanceof FormData';

const formDataWithoutUndici = {
  name: 'form-data-without-undici',
  setup(b) {
    let patched = 0;
    b.onStart(() => {
      patched = 0;
    });
    b.onLoad({ filter: /[\\/]@typespec[\\/]ts-http-runtime[\\/]dist[\\/]esm[\\/](formData|client[\\/]sendRequest)\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      if (!text.includes(FORM_DATA_CHECK)) return undefined;
      patched++;
      return { contents: text.replaceAll(FORM_DATA_CHECK, FORM_DATA_CHECK_LAZY), loader: 'js' };
    });
    b.onEnd((result) => {
      if (patched === 0) result.warnings.push({ text: 'the FormData check of @typespec/ts-http-runtime was not found: every CLI start loads undici again (cli/build-bundle.mjs)' });
    });
  },
};

/** The file name of the bundle beside the launcher (cli/compile-cache.ts's BUNDLE_FILE). */
export const BUNDLE_FILE = 'tidemark.cjs';

/** What the bundle and the launcher share: one file of `entry` and what it imports, with its source map. */
function fileOptions(entry, outfile) {
  return { entryPoints: [join(root, 'cli', entry)], outfile, bundle: true, platform: 'node', target: 'node20', sourcemap: true, logLevel: 'warning' };
}

/** The esbuild options of the CLI bundle; `outfile` is where it goes. */
export function bundleOptions(outfile) {
  return {
    ...fileOptions('main.ts', outfile),
    format: 'cjs',
    external: EXTERNAL,
    // Our ESM sources (shared/lazy-module.ts, shared/local/azurite.ts) resolve packages with
    // createRequire(import.meta.url); in CommonJS that URL is the bundle's own.
    banner: { js: 'const __tidemark_import_meta_url = require("node:url").pathToFileURL(__filename).href;' },
    define: { 'import.meta.url': '__tidemark_import_meta_url' },
    // Whitespace and syntax only: identifiers stay as written, so a stack trace still names
    // the functions. Without comments the file is ASCII (esbuild escapes the rest), which the
    // launcher relies on to decode it as Latin-1, several times faster than UTF-8.
    minifyWhitespace: true,
    minifySyntax: true,
    charset: 'ascii',
    plugins: [formDataWithoutUndici],
    legalComments: 'linked',
    metafile: true,
  };
}

/** The esbuild options of the launcher (cli/launch.ts) written to `outfile`, the `tidemark` bin. */
export function launcherOptions(outfile) {
  return { ...fileOptions('launch.ts', outfile), format: 'esm' };
}

async function main() {
  const dir = join(root, 'dist', 'cli');
  const result = await build(bundleOptions(join(dir, BUNDLE_FILE)));
  await build(launcherOptions(join(dir, 'main.js')));
  // The launcher runs the bundle as a vm.Script, where import() has no loader (require() works).
  const dynamic = Object.entries(result.metafile.inputs).flatMap(([f, v]) => v.imports.filter((i) => i.kind === 'dynamic-import' && i.external).map((i) => `${f}: import(${JSON.stringify(i.path)})`));
  if (dynamic.length) throw new Error(`the CLI bundle may not import() a package left outside it; load it with shared/lazy-module.ts:\n${dynamic.join('\n')}`);
  const text = await readFile(join(dir, BUNDLE_FILE));
  const nonAscii = text.findIndex((byte) => byte > 0x7f);
  if (nonAscii >= 0) throw new Error(`dist/cli/${BUNDLE_FILE} has a non-ASCII byte at ${nonAscii}: the launcher reads it as Latin-1`);
  const bytes = Object.entries(result.metafile.outputs).find(([f]) => f.endsWith(BUNDLE_FILE))?.[1].bytes ?? 0;
  process.stdout.write(`wrote dist/cli/${BUNDLE_FILE} (${(bytes / 1e6).toFixed(1)} MB, ${Object.keys(result.metafile.inputs).length} modules) and its launcher dist/cli/main.js\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err) => {
    process.stderr.write(`build-bundle: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}

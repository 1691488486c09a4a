#!/usr/bin/env node
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUNDLE_FILE, launch } from './compile-cache.js';

// `npm run build` bundles this file to dist/cli/main.js, the `tidemark` executable, over tsc's
// unbundled CLI; cli/main.ts itself is bundled to dist/cli/tidemark.cjs beside it.
launch(join(dirname(fileURLToPath(import.meta.url)), BUNDLE_FILE));

import type { BuildOptions } from 'esbuild';

/** Packages the bundle leaves to Node at run time. */
export declare const EXTERNAL: string[];
/** The esbuild options of the CLI bundle written to `outfile`. */
export declare function bundleOptions(outfile: string): BuildOptions & { metafile: true };

import type { BuildOptions } from 'esbuild';

/** Packages the bundle leaves to Node at run time. */
export declare const EXTERNAL: string[];
/** The file name of the bundle beside the launcher. */
export declare const BUNDLE_FILE: string;
/** The esbuild options of the CLI bundle written to `outfile`. */
export declare function bundleOptions(outfile: string): BuildOptions & { metafile: true };
/** The esbuild options of the launcher (the `tidemark` bin) written to `outfile`. */
export declare function launcherOptions(outfile: string): BuildOptions;

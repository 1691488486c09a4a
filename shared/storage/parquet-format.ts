import type { WarehouseConfig } from '../config/schema.js';
import type { VersionKeyPlace } from './manifest.js';

/**
 * COPY options of every intermediate Parquet file tidemark writes (raw parts, changes,
 * snapshots), all of them read back only by DuckDB. zstd level 1 instead of DuckDB's zstd
 * default (3): measured by `npm run bench` on 1 M CRM rows with md5 columns, it wrote in 4.0 s
 * instead of 7.0 s and the file was smaller (38 MB vs 40 MB); these files are written once and
 * read once or twice. Parquet format version 2 (DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY and
 * BYTE_STREAM_SPLIT encodings instead of PLAIN where dictionaries do not pay): the bench's
 * 10 M-row first-load changes file wrote in 18.0–19.4 s instead of 19.7–22.1 s (same run,
 * alternated), 533 MB instead of 575 MB, and the merge read it back 0.5–0.8 s faster. Files
 * written before stay readable: the reader follows each file's own encodings.
 */
export const PARQUET_COPY_OPTIONS = 'FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1, PARQUET_VERSION V2';

/**
 * COPY options of the changes file for a Synapse target, the one warehouse that reads the file
 * itself (COPY INTO). "COPY INTO (Transact-SQL)", argument COMPRESSION: Parquet files may be
 * Snappy or GZIP compressed, nothing else, so a zstd file would fail every Synapse merge.
 * Snappy, as the faster of the two to write and read.
 */
export const SYNAPSE_PARQUET_COPY_OPTIONS = 'FORMAT parquet, COMPRESSION snappy';

/**
 * COPY options of a changes file for a target of this warehouse kind. Every other warehouse
 * reads it through DuckDB, so it is zstd like the other intermediate files: a third fewer bytes
 * to upload and read back than Snappy (810 MB → about 575 MB on the bench's 10 M rows). The
 * merge reads whatever codec the file says, so a file written under either option (an
 * in-flight run, a target moved between warehouses) stays readable by DuckDB. An unknown kind
 * gets Snappy, which every warehouse reads.
 */
export function changesCopyOptions(warehouseKind: string | undefined): string {
  return warehouseKind === undefined || warehouseKind === 'synapse' ? SYNAPSE_PARQUET_COPY_OPTIONS : PARQUET_COPY_OPTIONS;
}

/**
 * The DuckDB and PostgreSQL merges read the changes file through DuckDB, so they compute the
 * version key while they read it: the file then does not carry 16 bytes of md5 per row, which
 * no codec compresses (the bench's 10 M-row first-load file: 533 MB with it, 373 MB without,
 * written, uploaded to storage and read back). Synapse reads the file itself (COPY INTO) and
 * the SQL Server merge binds the file's columns as they are, so their files carry it; so does
 * a file for an unknown kind. The manifest records which (ChangesManifest.versionKey), and the
 * merge computes a missing key from it (merge/changes-relation.ts).
 */
export function versionKeyPlace(warehouseKind: WarehouseConfig['kind'] | undefined): VersionKeyPlace {
  return warehouseKind === 'duckdb' || warehouseKind === 'postgres' ? 'merge' : 'file';
}

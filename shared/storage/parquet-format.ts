/**
 * COPY options of every intermediate Parquet file tidemark writes (raw parts, changes,
 * snapshots). zstd level 1 instead of DuckDB's zstd default (3): measured by `npm run bench`
 * on 1 M CRM rows with md5 columns, it wrote in 4.0 s instead of 7.0 s and the file was
 * smaller (38 MB vs 40 MB); these files are written once and read once or twice.
 */
export const PARQUET_COPY_OPTIONS = 'FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1';

/**
 * COPY options of the changes file, the one Parquet file a warehouse other than DuckDB reads
 * (Synapse loads it with COPY INTO). "COPY INTO (Transact-SQL)", argument COMPRESSION: Parquet
 * files may be Snappy or GZIP compressed, nothing else, so a zstd file would fail every Synapse
 * merge. Snappy, as the faster of the two to write and read.
 */
export const WAREHOUSE_PARQUET_COPY_OPTIONS = 'FORMAT parquet, COMPRESSION snappy';

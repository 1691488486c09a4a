import type { BlobStore } from './ports.js';

export interface Uploaded {
  etag: string;
  bytes: number;
  md5: string;
}

/**
 * Uploads that run while the caller keeps working (DuckDB on its own threads), so that moving
 * a big file to storage overlaps the checks and counts that follow its writing. A file that is
 * written again is uploaded again once the earlier upload of it has ended, never concurrently.
 */
export class BackgroundUploads {
  private readonly pending = new Map<string, Promise<Uploaded>>();

  constructor(private readonly blobs: BlobStore) {}

  start(container: string, name: string, file: string): void {
    const key = `${container}/${name}`;
    const before = this.pending.get(key)?.catch(() => undefined) ?? Promise.resolve();
    const upload = before.then(() => this.blobs.uploadFile(container, name, file));
    // Observed by result() or settle(); without this a failure while the caller is still busy
    // would be an unhandled rejection.
    upload.catch(() => undefined);
    this.pending.set(key, upload);
  }

  /** The last started upload of container/name; rejects with its error. */
  result(container: string, name: string): Promise<Uploaded> {
    const upload = this.pending.get(`${container}/${name}`);
    if (!upload) throw new Error(`no upload of ${container}/${name} was started`);
    return upload;
  }

  /** Waits until every upload has ended, failed or not: before the files are removed. */
  async settle(): Promise<void> {
    await Promise.allSettled(this.pending.values());
  }
}

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rm, rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export async function md5File(path: string): Promise<string> {
  const h = createHash('md5');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** A fresh scratch folder per run and stage: re-running a stage starts from nothing. */
export async function scratchDir(workDir: string, pipeline: string, runId: string, stage: string): Promise<string> {
  const dir = join(workDir, pipeline, runId, stage);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  return dir;
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/**
 * Removes a stage's scratch folder and then its run and pipeline folders when they are empty,
 * so that a long-lived worker does not collect one empty folder per run. A folder another stage
 * is still using is not empty, and rmdir leaves it alone.
 */
export async function removeScratchDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  const run = dirname(dir);
  for (const d of [run, dirname(run)]) {
    try {
      await rmdir(d);
    } catch {
      return;
    }
  }
}

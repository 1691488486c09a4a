import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultSourceFor } from '../../shared/engine/factories.js';
import type { SourceFactory } from '../../shared/engine/context.js';
import type { KeyRange } from '../../shared/extract/source.js';
import { openLocalStack, runOnce, type LocalStack } from '../../shared/local/stack.js';
import type { AzuriteHandle } from '../../shared/local/azurite.js';
import { CONTAINERS } from '../../shared/storage/layout.js';
import { withAzurite } from '../support/azurite.js';
import { duckExec, duckQuery, makeProject } from '../support/project.js';
import { storageOf } from '../support/storage-clients.js';

const ROWS = 20_000;
const PIPELINE = `name: big
source:
  connection: SRC
  table: crm.accounts
  changeDetection: { mode: timestamp, column: modified_at }
  partRows: 1000
  partitions: { count: 4 }
key: [id]
target: { warehouse: WH, table: dw.dim_account }
validation: { rowCount: exact, checksumColumns: [id, email] }
retry: { attempts: 1, initialDelay: 100ms }
`;

describe('partitioned initial load: one extract message per key range, manifest only when all are done', () => {
  let az: AzuriteHandle;
  let stack: LocalStack;
  let dir: string;
  const reads: KeyRange[] = [];
  const writes: string[] = [];
  let failPartitionOnce: string | undefined = '10001';

  beforeAll(async () => {
    az = await withAzurite();
    dir = makeProject({ pipelines: { big: PIPELINE } });
    await duckExec(
      join(dir, 'source.duckdb'),
      'create schema crm',
      `create table crm.accounts as select i::BIGINT as id, 'n' || i as name, 'u' || i || '@x.com' as email,
         TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(i) as modified_at from range(1, ${ROWS + 1}) t(i)`,
    );
    // Records every partition read and fails the third partition's first read with a
    // retryable error: the host redelivers that message alone.
    const sourceFor: SourceFactory = (ctx, conn, p) => {
      const real = defaultSourceFor(ctx, conn, p);
      return {
        keyStats: real.keyStats!.bind(real),
        close: () => real.close(),
        extract: async (req) => {
          if (req.range) {
            reads.push(req.range);
            if (req.range.lo === failPartitionOnce) {
              failPartitionOnce = undefined;
              throw new Error('simulated network failure reading a partition');
            }
          }
          return real.extract(req);
        },
      };
    };
    const blobs = storageOf(az.connectionString).blobs;
    const putText = blobs.putText.bind(blobs);
    blobs.putText = async (container, name, text) => {
      if (container === CONTAINERS.raw) writes.push(name);
      return putText(container, name, text);
    };
    stack = await openLocalStack({ projectDir: dir, connectionString: az.connectionString, sourceFor, ports: { blobs }, host: { retryDelaySeconds: 1 } });
  });
  afterAll(async () => {
    await stack?.close();
    await az?.stop();
  });

  it('loads every row once, retries only the failed partition, and triggers the transform once complete', async () => {
    const r = await runOnce(stack, { pipeline: 'big' });
    expect(r.status, JSON.stringify(r)).toBe('succeeded');
    expect(r.counts).toMatchObject({ extracted: ROWS, inserted: ROWS });
    expect(r.validations.every((v) => v.passed)).toBe(true);

    const ranges = reads.map((x) => `${x.lo}-${x.hi}${x.last ? ']' : ')'}`);
    expect([...ranges].sort()).toEqual(['1-5001)', '10001-15001)', '10001-15001)', '15001-20000]', '5001-10001)'].sort());

    const raw = writes.filter((n) => n.startsWith(`big/${r.runId}/`)).map((n) => n.slice(`big/${r.runId}/`.length));
    expect(raw[0]).toBe('_partitions.json');
    expect(raw.filter((n) => n.endsWith('_done.json'))).toHaveLength(4);
    expect(raw.at(-1)).toBe('_manifest.json');
    expect(raw.filter((n) => n === '_manifest.json').length).toBeLessThanOrEqual(2);

    const w = await duckQuery<{ n: bigint; k: bigint }>(join(dir, 'warehouse.duckdb'), 'select count(*) n, count(distinct id) k from dw.dim_account');
    expect(Number(w[0]!.n)).toBe(ROWS);
    expect(Number(w[0]!.k)).toBe(ROWS);
  });
});

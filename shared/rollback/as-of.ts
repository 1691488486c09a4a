import { splitQualified, type QualifiedName } from '../config/identifiers.js';
import { getPipeline, warehouseOf } from '../config/load.js';
import type { PipelineConfig } from '../config/schema.js';
import type { EngineContext } from '../engine/context.js';
import { InvalidInputError, NotFoundError, NotSupportedError, TerminalError } from '../errors.js';
import type { ExistingColumn } from '../merge/dialect.js';
import { logicalFromDuck, type PlanColumn } from '../merge/plan.js';
import { HISTORY_COLUMNS } from '../merge/read-sql.js';
import type { Warehouse } from '../merge/warehouse.js';

/**
 * The dimension as it was at a UTC instant, read from the SCD2 columns (docs/design.md §11): the
 * version valid then, not deleted. Column types come from the target as the warehouse reports
 * them; only their names are used by `asOf`.
 */
export async function queryAsOf(ctx: EngineContext, req: { pipeline: string; at: string }): Promise<Array<Record<string, unknown>>> {
  return (await queryAsOfWithTypes(ctx, req)).rows;
}

/** The --as-of text as a UTC instant ('2026-11-24 08:00:00.000', the form the dialects bind); no zone = UTC. */
export function parseAsOf(text: string): string {
  const ms = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(text) || Number.isNaN(ms)) {
    throw new InvalidInputError(`invalid --as-of ${JSON.stringify(text)}: give an ISO-8601 time such as 2026-11-24T08:00:00Z (no zone = UTC)`);
  }
  const at = new Date(/Z|[+-]\d{2}:?\d{2}$/.test(text) || text.length <= 10 ? ms : Date.parse(`${text.replace(' ', 'T')}Z`)).toISOString();
  return at.replace('T', ' ').replace('Z', '');
}

interface Target {
  p: PipelineConfig;
  target: QualifiedName;
  described: ExistingColumn[];
  /** Data columns (no `_tm_*`), with the logical types the read casts by. */
  columns: PlanColumn[];
  types: Record<string, string>;
}

async function withTarget<T>(ctx: EngineContext, pipeline: string, fn: (t: Target, warehouse: Warehouse) => Promise<T>): Promise<T> {
  const p = getPipeline(ctx.project, pipeline);
  const target = splitQualified(p.target.table);
  const warehouse = ctx.warehouseFor(ctx, warehouseOf(ctx.project, p), p);
  try {
    const described = await warehouse.describe(target);
    if (described.length === 0) throw new TerminalError(`target ${p.target.table} of ${p.name} does not exist yet; run the pipeline first`);
    const columns = described.filter((c) => !c.name.startsWith('_tm_')).map((c) => ({ name: c.name, type: logicalFromDuck(c.type) }));
    return await fn({ p, target, described, columns, types: Object.fromEntries(described.map((c) => [c.name, c.type])) }, warehouse);
  } finally {
    await warehouse.close();
  }
}

/**
 * The same, with each column's type as the warehouse reports it (for printing values exactly),
 * in key order. With `limit` the warehouse returns at most that many rows and `total` says how
 * many there are.
 */
export async function queryAsOfWithTypes(
  ctx: EngineContext,
  req: { pipeline: string; at: string; limit?: number },
): Promise<{ types: Record<string, string>; rows: Array<Record<string, unknown>>; total: number }> {
  const at = parseAsOf(req.at);
  return withTarget(ctx, req.pipeline, async ({ p, target, columns, types }, warehouse) => {
    const rows = await warehouse.asOf(target, columns, at, { keys: p.key, ...(req.limit !== undefined ? { limit: req.limit } : {}) });
    let total = rows.length;
    if (req.limit !== undefined && rows.length >= req.limit) {
      if (!warehouse.sql) throw new NotSupportedError(`the ${warehouse.dialect.name} warehouse cannot count rows for --limit; leave --limit out`);
      const [row] = await warehouse.sql.query<{ n: number | bigint | string }>(warehouse.dialect.asOfCount(target, at));
      total = Number(row?.n ?? rows.length);
    }
    return { types, rows, total };
  });
}

/** One version of a key: its interval, whether it is a delete marker, and whether it was the one valid at the instant. */
export interface KeyVersion {
  validFrom: unknown;
  validTo: unknown;
  deleted: boolean;
  runId: string;
  /** The version valid (and not deleted) at the --as-of instant: at most one is. */
  current: boolean;
  values: Record<string, unknown>;
}

/**
 * `--key`: the key's values in the order of the pipeline's key (`1,eu`), or named (`id=1,region=eu`),
 * comma-separated. A value cannot contain a comma.
 */
export function parseKeyArgument(key: readonly string[], text: string): Array<{ name: string; value: string }> {
  const parts = text.split(',').map((k) => k.trim());
  const named = parts.every((x) => /^[^=]+=/.test(x));
  const given = named
    ? parts.map((x) => ({ name: x.slice(0, x.indexOf('=')).trim(), value: x.slice(x.indexOf('=') + 1).trim() }))
    : parts.map((value, i) => ({ name: key[i] ?? '', value }));
  const wrong = named ? given.filter((g) => !key.includes(g.name)).map((g) => g.name) : [];
  if (parts.length !== key.length || wrong.length || new Set(given.map((g) => g.name)).size !== key.length) {
    throw new InvalidInputError(
      `--key ${JSON.stringify(text)} does not name the key (${key.join(', ')})${wrong.length ? `: no key column ${wrong.join(', ')}` : ''}; give ${key.length} value(s) in that order, comma-separated (${key.map((k, i) => `v${i + 1}`).join(',')}), or name them (${key.map((k) => `${k}=…`).join(',')})`,
    );
  }
  return key.map((k) => given.find((g) => g.name === k)!);
}

/**
 * Every version of one key, oldest first, read with the key bound as parameters (docs/design.md
 * §11). A key with no version at all is a NotFoundError naming it.
 */
export async function queryKeyHistory(
  ctx: EngineContext,
  req: { pipeline: string; at: string; key: string },
): Promise<{ types: Record<string, string>; columns: string[]; versions: KeyVersion[] }> {
  const at = parseAsOf(req.at);
  return withTarget(ctx, req.pipeline, async ({ p, target, described, columns, types }, warehouse) => {
    const key = parseKeyArgument(p.key, req.key);
    if (!warehouse.sql) throw new NotSupportedError(`the ${warehouse.dialect.name} warehouse cannot read a key's history`);
    const scd = HISTORY_COLUMNS.map((name) => ({ name, type: logicalFromDuck(described.find((c) => c.name === name)?.type ?? 'VARCHAR') }));
    const rows = await warehouse.sql.query(warehouse.dialect.keyHistory(target, [...columns, ...scd], key, at));
    if (rows.length === 0) {
      throw new NotFoundError(`key ${key.map((k) => `${k.name}=${k.value}`).join(', ')} has no version in ${p.target.table}: it was never loaded (or its rows were rolled back); the key is compared as text, as query prints it`);
    }
    const versions = rows.map((r) => ({
      validFrom: r._tm_valid_from,
      validTo: r._tm_valid_to ?? null,
      deleted: r._tm_is_deleted === true || Number(r._tm_is_deleted) === 1,
      runId: String(r._tm_run_id),
      current: Number(r._tm_at) === 1,
      values: Object.fromEntries(columns.map((c) => [c.name, r[c.name]])),
    }));
    return { types, columns: columns.map((c) => c.name), versions };
  });
}

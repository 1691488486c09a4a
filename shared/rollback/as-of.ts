import { splitQualified } from '../config/identifiers.js';
import { getPipeline, warehouseOf } from '../config/load.js';
import type { EngineContext } from '../engine/context.js';
import { InvalidInputError, TerminalError } from '../errors.js';
import { logicalFromDuck } from '../merge/plan.js';

/**
 * The dimension as it was at a UTC instant, read from the SCD2 columns (docs/design.md §11): the
 * version valid then, not deleted. Column types come from the target as the warehouse reports
 * them; only their names are used by `asOf`.
 */
export async function queryAsOf(ctx: EngineContext, req: { pipeline: string; at: string }): Promise<Array<Record<string, unknown>>> {
  return (await queryAsOfWithTypes(ctx, req)).rows;
}

/** The same, with each column's type as the warehouse reports it (for printing values exactly). */
export async function queryAsOfWithTypes(ctx: EngineContext, req: { pipeline: string; at: string }): Promise<{ types: Record<string, string>; rows: Array<Record<string, unknown>> }> {
  const p = getPipeline(ctx.project, req.pipeline);
  const ms = Date.parse(req.at);
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(req.at) || Number.isNaN(ms)) {
    throw new InvalidInputError(`invalid --as-of ${JSON.stringify(req.at)}: give an ISO-8601 time such as 2026-11-24T08:00:00Z (no zone = UTC)`);
  }
  const at = new Date(/Z|[+-]\d{2}:?\d{2}$/.test(req.at) || req.at.length <= 10 ? ms : Date.parse(`${req.at.replace(' ', 'T')}Z`)).toISOString();
  const target = splitQualified(p.target.table);
  const warehouse = ctx.warehouseFor(ctx, warehouseOf(ctx.project, p), p);
  try {
    const described = await warehouse.describe(target);
    if (described.length === 0) throw new TerminalError(`target ${p.target.table} of ${p.name} does not exist yet; run the pipeline first`);
    const columns = described.filter((c) => !c.name.startsWith('_tm_')).map((c) => ({ name: c.name, type: logicalFromDuck(c.type) }));
    const rows = await warehouse.asOf(target, columns, at.replace('T', ' ').replace('Z', ''));
    const keyOrder = (a: Record<string, unknown>, b: Record<string, unknown>) => {
      for (const k of p.key) {
        const x = a[k] as string | number | bigint;
        const y = b[k] as string | number | bigint;
        if (x < y) return -1;
        if (x > y) return 1;
      }
      return 0;
    };
    return { types: Object.fromEntries(described.map((c) => [c.name, c.type])), rows: rows.sort(keyOrder) };
  } finally {
    await warehouse.close();
  }
}

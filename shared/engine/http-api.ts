import { z } from 'zod';
import { DURATION_PATTERN } from '../config/duration.js';
import { PIPELINE_NAME_PATTERN } from '../config/identifiers.js';
import { splitBackfill } from './backfill.js';
import { ConflictError, NotFoundError, NotSupportedError, TerminalError, errorMessage } from '../errors.js';
import type { EngineContext } from './context.js';
import { startRun } from './start-run.js';

export interface HttpResult {
  status: number;
  jsonBody: unknown;
  headers?: Record<string, string>;
}

export const MAX_BODY_BYTES = 16 * 1024;

/** An ISO-8601 instant with a zone, or a date alone, which means 00:00 UTC of that day. */
const instant = z
  .union([z.iso.datetime({ offset: true }), z.iso.date()], { error: 'must be an ISO-8601 time with a zone (2026-12-02T00:00:00Z) or a date (2026-12-02, 00:00 UTC)' })
  .describe('ISO-8601 time with a zone, or a date meaning 00:00 UTC');

/** A date alone becomes its UTC midnight, so everything after parsing sees one form. */
export function utcInstant(v: string): string {
  return /^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v;
}

export const startRunBodySchema = z
  .strictObject({
    mode: z.enum(['incremental', 'full', 'backfill', 'reconcile']).default('incremental'),
    from: instant.optional(),
    to: instant.optional(),
    /** Backfill only: split from..to into windows of this size, each its own run, applied in order. */
    windowSize: z.string().regex(DURATION_PATTERN, 'must be a number and a unit (ms, s, m, h, d), e.g. 1d').optional(),
    /** Reconcile only: also delete the keys current in the warehouse that a key-only read of the source lacks. */
    deletes: z.boolean().optional().describe('mode "reconcile": also delete the keys the source no longer has (timestamp / rowversion pipelines)'),
    /** Reconcile only: apply the deletes even when the source returns no key at all. */
    allowEmpty: z.boolean().optional().describe('mode "reconcile" with deletes: go ahead even when the source returns no key (every current key is deleted)'),
  })
  .refine((b) => b.mode === 'reconcile' || (b.deletes === undefined && b.allowEmpty === undefined), {
    message: 'deletes/allowEmpty are only for mode "reconcile"',
    path: ['deletes'],
  })
  .refine((b) => !b.allowEmpty || b.deletes === true, { message: 'allowEmpty needs deletes: true', path: ['allowEmpty'] })
  .refine((b) => b.mode === 'backfill' || (b.from === undefined && b.to === undefined), {
    message: 'from/to are only for mode "backfill"',
    path: ['from'],
  })
  .refine((b) => b.windowSize === undefined || (b.mode === 'backfill' && b.from !== undefined && b.to !== undefined), {
    message: 'windowSize needs mode "backfill" with both from and to',
    path: ['windowSize'],
  })
  .refine((b) => b.from === undefined || b.to === undefined || Date.parse(utcInstant(b.from)) < Date.parse(utcInstant(b.to)), {
    message: '"to" must be after "from"',
    path: ['to'],
  });

function bad(message: string, fields?: Array<{ path: string; message: string }>): HttpResult {
  return { status: 400, jsonBody: { error: message, ...(fields ? { fields } : {}) } };
}

/** Parses a JSON body with a size cap; an empty body is `{}`. */
export function parseJsonBody(text: string): { ok: true; value: unknown } | { ok: false; result: HttpResult } {
  if (Buffer.byteLength(text, 'utf8') > MAX_BODY_BYTES) return { ok: false, result: { status: 413, jsonBody: { error: `body larger than ${MAX_BODY_BYTES} bytes` } } };
  if (text.trim() === '') return { ok: true, value: {} };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, result: bad(`body is not valid JSON: ${errorMessage(err)}`) };
  }
}

/** POST /api/pipelines/{name}/runs */
export async function handleStartRun(ctx: EngineContext, req: { pipeline: string; bodyText: string; baseUrl: string }): Promise<HttpResult> {
  if (!PIPELINE_NAME_PATTERN.test(req.pipeline)) return bad('invalid pipeline name: lowercase letters, digits and _', [{ path: 'name', message: 'invalid' }]);
  const broken = ctx.project.broken?.get(req.pipeline);
  // Its file is there but does not load: say what is wrong with it, not that it is unknown.
  if (broken) return { status: 422, jsonBody: { error: broken.message } };
  if (!ctx.project.pipelines.has(req.pipeline)) return { status: 404, jsonBody: { error: `unknown pipeline ${req.pipeline}` } };
  const body = parseJsonBody(req.bodyText);
  if (!body.ok) return body.result;
  const parsed = startRunBodySchema.safeParse(body.value);
  if (!parsed.success) {
    return bad(
      'invalid body',
      parsed.error.issues.map((i) => ({ path: i.path.join('.') || '(root)', message: i.message })),
    );
  }
  const b = { ...parsed.data, ...(parsed.data.from ? { from: utcInstant(parsed.data.from) } : {}), ...(parsed.data.to ? { to: utcInstant(parsed.data.to) } : {}) };
  let windows: ReturnType<typeof splitBackfill> | undefined;
  try {
    windows = b.windowSize && b.from && b.to ? splitBackfill(b.from, b.to, b.windowSize) : undefined;
  } catch (err) {
    return bad('invalid body', [{ path: 'windowSize', message: errorMessage(err) }]);
  }
  try {
    const run = await startRun(ctx, {
      pipeline: req.pipeline,
      trigger: 'http',
      mode: b.mode,
      ...(b.mode === 'reconcile' ? { reconcile: { deletes: b.deletes === true, allowEmpty: b.allowEmpty === true } } : {}),
      ...(windows
        ? { backfill: windows[0]!, backfillRemaining: windows.slice(1) }
        : b.mode === 'backfill'
          ? { backfill: { ...(b.from ? { from: b.from } : {}), ...(b.to ? { to: b.to } : {}) } }
          : {}),
    });
    const statusUrl = `${req.baseUrl}/api/pipelines/${run.pipeline}/runs/${run.runId}`;
    return {
      status: 202,
      jsonBody: { pipeline: run.pipeline, runId: run.runId, status: run.status, statusUrl, ...(windows ? { windows } : {}) },
      headers: { Location: statusUrl },
    };
  } catch (err) {
    if (err instanceof ConflictError) return { status: 409, jsonBody: { error: err.message } };
    if (err instanceof NotFoundError) return { status: 404, jsonBody: { error: err.message } };
    if (err instanceof NotSupportedError || err instanceof TerminalError) return { status: 422, jsonBody: { error: err.message } };
    throw err;
  }
}

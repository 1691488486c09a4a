import type { EngineContext } from '../engine/context.js';

/** An HTTP request as the engine sees it: no Azure Functions types, so the local server can serve it too. */
export interface ApiRequest {
  method: string;
  params: Record<string, string>;
  query: URLSearchParams;
  bodyText: string;
  /** scheme://host[:port] of the request, for absolute URLs in responses. */
  baseUrl: string;
}

export interface ApiResponse {
  status: number;
  jsonBody?: unknown;
  body?: string | Uint8Array;
  headers?: Record<string, string>;
}

/**
 * One HTTP route of the API. functions/ registers each with app.http (one file per route); the
 * local host's server (shared/local/http-server.ts) serves the same list under /api/.
 */
export interface ApiRoute {
  name: string;
  methods: Array<'GET' | 'POST' | 'DELETE'>;
  /** Azure Functions route template, without the `api/` prefix: `pipelines/{name}/runs`. */
  route: string;
  /** Function keys in Azure: rollback and restore need the admin (host master) key. */
  authLevel: 'anonymous' | 'function' | 'admin';
  handle(ctx: EngineContext, req: ApiRequest): Promise<ApiResponse>;
}

/** Matches `pipelines/{name}/runs` against a path; undefined when it does not match. */
export function matchRoute(template: string, path: string): Record<string, string> | undefined {
  const t = template.split('/').filter(Boolean);
  const p = path.split('/').filter(Boolean);
  if (t.length !== p.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < t.length; i++) {
    const seg = t[i]!;
    const m = /^\{(\w+)(?::[^}]*)?\??\}$/.exec(seg);
    if (m) {
      let v: string;
      try {
        v = decodeURIComponent(p[i]!);
      } catch {
        return undefined;
      }
      params[m[1]!] = v;
    } else if (seg.toLowerCase() !== p[i]!.toLowerCase()) return undefined;
  }
  return params;
}

import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { appContext } from '../shared/engine/app-context.js';
import type { ApiRoute } from '../shared/http/route.js';
import { invocationSink } from './log-sink.js';

/**
 * Adapts an engine route to the v4 HTTP trigger: the Functions types stop here. Typed as
 * returning the response init it builds (an `HttpHandler` too), so callers see `jsonBody`.
 */
export function httpHandler(route: ApiRoute): (req: HttpRequest, ic: InvocationContext) => Promise<HttpResponseInit> {
  return async (req: HttpRequest, ic: InvocationContext): Promise<HttpResponseInit> => {
    const ctx = await appContext(invocationSink(ic));
    const url = new URL(req.url);
    const res = await route.handle(ctx, {
      method: req.method,
      params: { ...req.params },
      query: url.searchParams,
      bodyText: req.method === 'GET' ? '' : await req.text(),
      baseUrl: url.origin,
    });
    return {
      status: res.status,
      ...(res.jsonBody !== undefined ? { jsonBody: res.jsonBody } : {}),
      ...(res.body !== undefined ? { body: res.body } : {}),
      ...(res.headers ? { headers: res.headers } : {}),
    };
  };
}

export function httpOptions(route: ApiRoute) {
  return { methods: route.methods, route: route.route, authLevel: route.authLevel, handler: httpHandler(route) } as const;
}

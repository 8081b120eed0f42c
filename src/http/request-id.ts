// Request, correlation and trace ids (SPEC §3.1 Request id, §5.5). Resolved once per request
// in the core plugin's onRequest, so even 404s and unparsable bodies carry them.

import type { Actor, Caller, RequestIds, RequestScope } from "../context.ts";
import { traceForRequest } from "../observability/tracing.ts";

export const REQUEST_ID_HEADER = "X-Request-ID";
export const CORRELATION_ID_HEADER = "X-Correlation-ID";
/** 1–128 chars of [A-Za-z0-9._:-]; anything else is replaced, never echoed. */
const CLIENT_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Trace context: the trace id of a valid W3C `traceparent` is continued, else a new trace
 * starts. The span id is always this server's own span.
 */
export function traceFrom(traceparent: string | null): {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
} {
  // Strict W3C Trace Context parsing lives with the tracing code; one definition for both.
  const { traceId, spanId, parentSpanId } = traceForRequest(traceparent);
  return parentSpanId === undefined ? { traceId, spanId } : { traceId, spanId, parentSpanId };
}

export function resolveRequestIds(headers: Headers): RequestIds {
  const given = headers.get(REQUEST_ID_HEADER);
  const requestId = given !== null && CLIENT_ID.test(given) ? given : crypto.randomUUID();
  const corr = headers.get(CORRELATION_ID_HEADER);
  const correlationId = corr !== null && CLIENT_ID.test(corr) ? corr : requestId;
  const { traceId, spanId } = traceFrom(headers.get("traceparent"));
  return { requestId, correlationId, traceId, spanId };
}

/** Ids of requests in flight, for code that has the Request but not the Elysia context. */
const byRequest = new WeakMap<Request, RequestIds>();

export function rememberIds(request: Request, ids: RequestIds): void {
  byRequest.set(request, ids);
}

/** The ids resolved for `request` (always set by the core plugin's onRequest). */
export function idsOf(request: Request): RequestIds {
  const ids = byRequest.get(request);
  if (ids !== undefined) return ids;
  // Not seen by onRequest (e.g. a unit test calling a handler directly): resolve now.
  const fresh = resolveRequestIds(request.headers);
  byRequest.set(request, fresh);
  return fresh;
}

/** The RequestScope services receive: who acts, under which ids. */
export function scopeFor(ids: RequestIds, actor: Caller | Actor): RequestScope {
  return Object.freeze({
    actor: Object.freeze({ id: actor.id, role: actor.role }),
    requestId: ids.requestId,
    correlationId: ids.correlationId,
    traceId: ids.traceId,
    spanId: ids.spanId,
  });
}

export function idHeaders(ids: RequestIds): Record<string, string> {
  return { [REQUEST_ID_HEADER]: ids.requestId, [CORRELATION_ID_HEADER]: ids.correlationId };
}

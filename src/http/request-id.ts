// Request, correlation and trace ids (SPEC §3.1 Request id, §5.5). Resolved once per request
// in the core plugin's onRequest, so even 404s and unparsable bodies carry them.
import type { Actor, Caller, RequestIds, RequestScope } from "../context.ts";

export const REQUEST_ID_HEADER = "X-Request-ID";
export const CORRELATION_ID_HEADER = "X-Correlation-ID";
/** 1–128 chars of [A-Za-z0-9._:-]; anything else is replaced, never echoed. */
const CLIENT_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;

function randomHex(bytes: number): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString("hex");
}

/**
 * Trace context: the trace id of a valid W3C `traceparent` is continued, else a new trace
 * starts. The span id is always this server's own span. Kept in one small function so the
 * tracing work can replace it.
 */
export function traceFrom(traceparent: string | null): {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
} {
  const m = traceparent === null ? null : TRACEPARENT.exec(traceparent.trim().toLowerCase());
  const traceId = m?.[1];
  const parent = m?.[2];
  // all-zero ids are invalid per W3C Trace Context
  if (traceId !== undefined && parent !== undefined && !/^0+$/.test(traceId) && !/^0+$/.test(parent)) {
    return { traceId, spanId: randomHex(8), parentSpanId: parent };
  }
  return { traceId: randomHex(16), spanId: randomHex(8) };
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

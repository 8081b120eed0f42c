// The observability plugin (HTTP metrics, the access log, traceparent) and the operational
// routes (/live, /health, /ready, /health/detailed, /metrics).
//
// Wiring (src/app.ts), after the core plugin so request ids exist when these hooks run:
//   app.use(corePlugin(...)).use(observabilityPlugin(deps)) ... .use(healthRoutes(deps))
// Request ids come from the core plugin (`idsOf(request)`, src/http/request-id.ts, which
// also resolves them itself when the core plugin did not run) and the log lines get them
// through `requestContext` (the logger's mixin).

import { wrap } from "@bogeychan/elysia-logger";
import { Elysia } from "elysia";
import type { AppDeps } from "../app.ts";
import { BUILD_INFO } from "../cli/version.ts";
import { requestContext } from "../context.ts";
import { createSql, type Sql } from "../db/client.ts";
import { recordSentSize, sentSizeOf } from "../http/core.ts";
import { AppError } from "../http/errors.ts";
import { idsOf } from "../http/request-id.ts";
import { poolTracker, type QueryEvent } from "./db-metrics.ts";
import {
  createHealth,
  HEALTH_CONTENT_TYPE,
  type Health,
  httpStatusOf,
  PROBE_POOL_MAX,
  PROBE_STATEMENT_TIMEOUT_MS,
} from "./health.ts";
import { UNMATCHED_PATH } from "./metrics.ts";
import { createSpanExporter, type SpanExporter } from "./otlp.ts";
import { refreshDbGauges } from "./scrape.ts";
import { formatTraceparent, newSpanId, parseTraceparent } from "./tracing.ts";

/** Routes that are neither logged per request nor (for /metrics) measured. */
export const PROBE_PATHS: ReadonlySet<string> = new Set([
  "/live",
  "/health",
  "/ready",
  "/health/detailed",
  "/metrics",
]);
export const METRICS_PATH = "/metrics";

/** The path of an absolute URL without building a URL object (hot path). */
export function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  let end = url.length;
  const q = url.indexOf("?", start);
  if (q >= 0) end = q;
  const h = url.indexOf("#", start);
  if (h >= 0 && h < end) end = h;
  return url.slice(start, end);
}

type Timing = { start: number; counted: boolean };
/** Start time of each request in flight (set in onRequest, read in onAfterResponse). */
const timings = new WeakMap<Request, Timing>();

/** The bounded `path` label: the route template, or one constant for unmatched requests. */
export function pathLabel(route: string | undefined | null): string {
  return route === undefined || route === null || route === "" ? UNMATCHED_PATH : route;
}

/** The numeric status the client got (Elysia may hold a status name in `set.status`). */
export function statusOf(status: number | string | undefined): number {
  if (typeof status === "number") return status;
  const n = Number(status);
  return Number.isInteger(n) && n >= 100 ? n : 200;
}

const encoder = new TextEncoder();
/** What Bun's Response.json (Elysia's serialisation of objects) declares. */
export const JSON_CONTENT_TYPE = "application/json;charset=utf-8";

/**
 * Bytes of the response body, from the value the handler (or the error mapper) returned:
 * Elysia does not expose the final Response to onAfterResponse. Objects are measured as
 * the JSON Elysia sends; a Response without Content-Length counts as 0.
 */
export function responseSize(value: unknown, headers?: Record<string, unknown>): number {
  const declared = headers?.["content-length"] ?? headers?.["Content-Length"];
  if (declared !== undefined && declared !== null) return Number(declared) || 0;
  if (value === undefined || value === null) return 0;
  if (typeof value === "string") return Buffer.byteLength(value);
  if (value instanceof Uint8Array || value instanceof ArrayBuffer) return value.byteLength;
  if (value instanceof Blob) return value.size;
  if (value instanceof Response) return Number(value.headers.get("content-length") ?? 0) || 0;
  if (typeof value === "object") {
    // Elysia's status(...) wrapper
    const inner =
      (value as { response?: unknown; code?: unknown }).code !== undefined
        ? (value as { response?: unknown }).response
        : undefined;
    if (inner !== undefined && value.constructor?.name === "ElysiaCustomStatusResponse")
      return responseSize(inner);
    try {
      // A replacer function makes JSON.stringify several times slower, and Elysia's own
      // serialisation has none, so it is only the fallback for a value holding a bigint.
      return Buffer.byteLength(JSON.stringify(value));
    } catch {
      try {
        return Buffer.byteLength(
          JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v)),
        );
      } catch {
        return 0;
      }
    }
  }
  return Buffer.byteLength(String(value));
}

type AfterResponseContext = {
  request: Request;
  set: { headers: Record<string, unknown>; status?: number | string };
  responseValue?: unknown;
  response?: unknown;
  error?: unknown;
};

type AfterHook = AfterResponseContext & { route?: string };

/** The fields of the access line (the request ids come from the logger's mixin). */
type AccessLine = {
  method: string;
  path: string;
  status: number;
  duration_ms: number;
  response_size: number;
  error_code?: string;
};

/**
 * The status the client got: a Response returned by the handler (e.g. a replayed
 * idempotent answer) or Elysia's status(...) wrapper carries its own; else `set.status`.
 */
function finalStatus(ctx: AfterResponseContext): number {
  const value = ctx.responseValue ?? ctx.response;
  if (value instanceof Response) return value.status;
  if (
    value !== null &&
    typeof value === "object" &&
    value.constructor?.name === "ElysiaCustomStatusResponse"
  ) {
    const code = (value as { code?: unknown }).code;
    if (typeof code === "number") return code;
  }
  return statusOf(ctx.set.status as number | string | undefined);
}

/**
 * The body size of the response just sent. Elysia hands onAfterResponse neither the error
 * mapper's body nor a handler's final Response, so the core records the size of every body
 * it renders (problems, stored idempotent answers); other values are measured here.
 */
function finalSize(ctx: AfterResponseContext): number {
  return sentSizeOf(ctx.request) ?? responseSize(ctx.responseValue ?? ctx.response, ctx.set.headers);
}

export function observabilityPlugin(deps: AppDeps) {
  const { metrics, logger } = deps;
  const { exporter } = opsFor(deps);
  return (
    new Elysia({ name: "paybridge-observability" })
      // `ctx.log` for handlers through @bogeychan/elysia-logger (the customer's stack) wrapping
      // our pino; our own access line replaces the plugin's (autoLogging off: with it on, the
      // plugin copies ctx.store per request and logs errors twice). Its derive takes the whole
      // context, which costs ~2 points of throughput on GET /api/v1/wallets/:id (measured).
      .use(wrap(logger, { autoLogging: false }))
      // Hooks destructure what they read, for the same reason.
      .onRequest(({ request, set }) => {
        const url = request.url;
        // A substring test first: the exact check only for URLs that mention /metrics at all.
        const counted = !url.includes(METRICS_PATH) || pathOf(url) !== METRICS_PATH;
        timings.set(request, { start: performance.now(), counted });
        if (counted) metrics.inFlight.count++;
        const ids = idsOf(request);
        set.headers.traceparent = formatTraceparent(ids.traceId, ids.spanId);
      })
      // A handler's plain object or array is serialised here, once, instead of by Elysia
      // (Response.json): the body's size for the histogram and the access line is then the
      // length of that string. Measuring the value afterwards meant serialising every
      // response twice (~3% of CPU at 10k requests/s). Same bytes and content type as
      // Elysia's. Anything else (Responses, strings, status(...) wrappers, error bodies) is
      // handed back as it came: in Elysia 1.4 a mapResponse hook that returns undefined on
      // the error path loses the error handler's body (an empty 404).
      // (Elysia types a mapResponse result as a Response; a string is mapped like a handler's.)
      .mapResponse({ as: "global" }, (({ request, responseValue, set }: AfterResponseContext) => {
        if (responseValue === null || typeof responseValue !== "object") return responseValue;
        const proto = Object.getPrototypeOf(responseValue);
        if (proto !== Object.prototype && !Array.isArray(responseValue)) return responseValue;
        let body: string;
        try {
          body = JSON.stringify(responseValue);
        } catch {
          return responseValue; // e.g. a bigint: Elysia's own serialisation decides what happens
        }
        recordSentSize(request, Buffer.byteLength(body));
        set.headers["content-type"] ??= JSON_CONTENT_TYPE;
        return body;
      }) as unknown as () => undefined)
      // `error` is on the context at runtime (the failed request's error) but not in its type.
      .onAfterResponse({ as: "global" }, (({
        request,
        set,
        route,
        error,
        responseValue,
        response,
      }: AfterHook) => {
        const timing = timings.get(request);
        if (timing?.counted === true) metrics.inFlight.count--;
        if (route === METRICS_PATH || timing === undefined) return;
        const ctx: AfterResponseContext = { request, set, responseValue, response, error };
        const path = pathLabel(route);
        const method = request.method;
        const status = finalStatus(ctx);
        const seconds = (performance.now() - timing.start) / 1000;
        const size = finalSize(ctx);
        const series = metrics.httpSeries(path, method);
        series.requests(status).inc();
        series.duration.observe(seconds);
        series.size.observe(size);
        if (exporter !== undefined)
          recordRequestSpan(exporter, request, method, path, status, timing.start, seconds);
        if (PROBE_PATHS.has(path)) return;
        const line: AccessLine = {
          method,
          path,
          status,
          duration_ms: Math.round(seconds * 100_000) / 100,
          response_size: size,
        };
        if (error instanceof AppError) line.error_code = error.code;
        logger.info(line, "request completed");
      }) as (ctx: Omit<AfterHook, "error">) => void)
  );
}

/** The server span of one request (its id is the span id in the logs and the traceparent). */
function recordRequestSpan(
  exporter: SpanExporter,
  request: Request,
  method: string,
  path: string,
  status: number,
  start: number,
  seconds: number,
): void {
  const ids = idsOf(request);
  const parent = parseTraceparent(request.headers.get("traceparent"));
  const startMs = performance.timeOrigin + start;
  exporter.record({
    traceId: ids.traceId,
    spanId: ids.spanId,
    ...(parent !== null && parent.traceId === ids.traceId ? { parentSpanId: parent.parentSpanId } : {}),
    name: `${method} ${path}`,
    kind: "server",
    startMs,
    endMs: startMs + seconds * 1000,
    attributes: { "http.request.method": method, "http.route": path, "http.response.status_code": status },
    error: status >= 500,
  });
}

/**
 * The listener for one query's client span, child of the request being served; queries
 * outside a request are not traced. Called as the query starts, in the request's context.
 */
function querySpanListener(exporter: SpanExporter): ((e: QueryEvent) => void) | undefined {
  const ids = requestContext.getStore();
  if (ids === undefined) return undefined;
  return (e) =>
    exporter.record({
      traceId: ids.traceId,
      spanId: newSpanId(),
      parentSpanId: ids.spanId,
      name: `${e.operation} ${e.table}`,
      kind: "client",
      startMs: e.startMs,
      endMs: e.endMs,
      attributes: {
        "db.system": "postgresql",
        "db.operation.name": e.operation,
        "db.collection.name": e.table,
      },
      error: e.error !== undefined,
    });
}

type Ops = { health: Health; probeSql: Sql; exporter: SpanExporter | undefined };
/** One probe pool and health cache per API pool (several apps over one pool share them). */
const opsByPool = new WeakMap<Sql, Ops>();

function opsFor(deps: AppDeps): Ops {
  let ops = opsByPool.get(deps.sql);
  if (ops === undefined) {
    // Lazy: postgres.js connects on the first query, so serve starts with the database down.
    const probeSql = createSql(deps.config, {
      applicationName: "paybridge-probe",
      max: PROBE_POOL_MAX,
      statementTimeoutMs: PROBE_STATEMENT_TIMEOUT_MS,
    });
    const exporter =
      deps.config.otelEndpoint === undefined
        ? undefined
        : createSpanExporter({
            endpoint: deps.config.otelEndpoint,
            resource: { "service.name": "paybridge", "service.version": BUILD_INFO.version },
            logger: deps.logger,
          });
    const tracker = poolTracker(deps.sql);
    if (exporter !== undefined && tracker !== undefined)
      tracker.onQueryStart = () => querySpanListener(exporter);
    ops = { probeSql, exporter, health: createHealth({ ...deps, probeSql }) };
    opsByPool.set(deps.sql, ops);
  }
  return ops;
}

/** Sends the last spans and closes the probe pool of `deps.sql` (serve's shutdown, tests' afterAll). */
export async function closeObservability(deps: Pick<AppDeps, "sql">): Promise<void> {
  const ops = opsByPool.get(deps.sql);
  if (ops === undefined) return;
  opsByPool.delete(deps.sql);
  await ops.exporter?.shutdown();
  await ops.probeSql.end({ timeout: 1 });
}

/** Constant-time comparison of the presented bearer token with the configured one. */
function tokenMatches(authorization: string | null, token: string): boolean {
  const presented = authorization?.startsWith("Bearer ") ? authorization.slice("Bearer ".length).trim() : "";
  const a = encoder.encode(presented);
  const b = encoder.encode(token);
  if (a.byteLength !== b.byteLength) return false;
  return crypto.timingSafeEqual(a, b);
}

export type HealthRoutesOptions = {
  /** True for the MANAGEMENT_PORT listener; on the API app the routes are absent when that port is set. */
  management?: boolean;
};

export function healthRoutes(deps: AppDeps, opts: HealthRoutesOptions = {}) {
  const app = new Elysia({ name: "paybridge-health", seed: opts.management === true ? "management" : "api" });
  if (deps.config.managementPort !== undefined && opts.management !== true) return app;
  const { health, probeSql } = opsFor(deps);
  const json = (
    set: { headers: Record<string, unknown>; status?: number | string },
    status: number,
    body: unknown,
  ) => {
    set.status = status;
    set.headers["content-type"] = HEALTH_CONTENT_TYPE;
    set.headers["cache-control"] = "no-store";
    return JSON.stringify(body);
  };
  return app
    .get("/live", ({ set }) => json(set, 200, health.live()))
    .get("/health", ({ set }) => json(set, 200, health.health()))
    .get("/ready", async ({ set }) => {
      const body = await health.ready();
      return json(set, httpStatusOf(body.status), body);
    })
    .get("/health/detailed", async ({ set }) => {
      const body = await health.detailed();
      return json(set, httpStatusOf(body.status), body);
    })
    .get(METRICS_PATH, async ({ request, set }) => {
      const token = deps.config.metricsToken;
      if (token !== undefined && !tokenMatches(request.headers.get("authorization"), token)) {
        set.status = 401;
        set.headers["www-authenticate"] = 'Bearer realm="metrics"';
        set.headers["content-type"] = "application/problem+json";
        return JSON.stringify({
          type: "about:blank",
          title: "Unauthorized",
          status: 401,
          detail: "A valid metrics token is required.",
          code: "UNAUTHORIZED",
        });
      }
      await refreshDbGauges(deps.metrics, { sql: deps.sql, probeSql, health });
      set.headers["content-type"] = deps.metrics.registry.contentType;
      set.headers["cache-control"] = "no-store";
      return await deps.metrics.registry.metrics();
    });
}

// Every metric PayBridge exports, in one registry per process (SPEC §5.2). Names, types and
// labels are the contract with dashboards and alerts: do not rename. Features feed the
// metrics declared here; scrape-time gauges (wallets, users, pool, outbox) get collectors
// from the observability plugin.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { BUILD_INFO } from "../cli/version.ts";
import { EXPECTED_SCHEMA_VERSION } from "../db/registry.ts";
import { CURRENCY_CODES } from "../ledger/money.ts";
import { type CounterSeries, counterSeries, type HistogramSeries, histogramSeries } from "./series.ts";

/** Amount histogram unit: the currency's MAJOR unit (e.g. dollars), converted exactly to a float only for observation. */
export const AMOUNT_BUCKETS = [
  0.01, 0.1, 1, 10, 50, 100, 500, 1_000, 5_000, 10_000, 50_000, 100_000, 1_000_000,
];
export const HTTP_DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
export const DB_DURATION_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];
export const SIZE_BUCKETS = [64, 256, 1024, 4096, 16_384, 65_536, 262_144, 1_048_576];
/** Label for requests that matched no route: bounded cardinality. */
export const UNMATCHED_PATH = "<unmatched>";

/** Closed label sets, initialised at 0 so dashboards see every series before the first event. */
export const WALLET_STATUSES = ["ACTIVE", "SUSPENDED", "LOCKED", "CLOSED"] as const;
export const KYC_STATUSES = ["UNVERIFIED", "PENDING", "VERIFIED", "REJECTED"] as const;
export const BREAKER_TARGETS = ["nats", "webhook"] as const;
export const RATE_LIMIT_SCOPES = ["api", "money"] as const;
export const DB_CONNECTION_STATES = ["idle", "in_use", "max"] as const;

/**
 * prom-client defaults that are always zero or meaningless under Bun (V8 heap spaces, GC,
 * libuv handle counts, a fake Node version) and cost most of a scrape; the process_* ones
 * and event-loop lag stay.
 */
export const DROPPED_DEFAULT_METRICS = [
  "nodejs_heap_space_size_total_bytes",
  "nodejs_heap_space_size_used_bytes",
  "nodejs_heap_space_size_available_bytes",
  "nodejs_gc_duration_seconds",
  "nodejs_active_resources",
  "nodejs_active_resources_total",
  "nodejs_active_handles",
  "nodejs_active_handles_total",
  "nodejs_active_requests",
  "nodejs_active_requests_total",
  "nodejs_version_info",
] as const;

export type MetricsOptions = {
  /** prom-client's process/event-loop metrics (default on; tests of label sets may turn them off). */
  defaultMetrics?: boolean;
};

export function createMetrics(opts: MetricsOptions = {}) {
  const registry = new Registry();
  const r = [registry];
  if (opts.defaultMetrics !== false) {
    collectDefaultMetrics({ register: registry });
    for (const name of DROPPED_DEFAULT_METRICS) registry.removeSingleMetric(name);
  }
  /** Requests being served; read by the in-flight gauge at scrape time (no per-request gauge call). */
  const inFlight = { count: 0 };
  const metrics = {
    registry,
    inFlight,
    httpRequests: new Counter({
      name: "paybridge_http_requests_total",
      help: "HTTP requests by method, route template and final status.",
      labelNames: ["method", "path", "status"] as const,
      registers: r,
    }),
    httpDuration: new Histogram({
      name: "paybridge_http_request_duration_seconds",
      help: "HTTP request duration in seconds, by method and route template.",
      labelNames: ["method", "path"] as const,
      buckets: HTTP_DURATION_BUCKETS,
      registers: r,
    }),
    httpInFlight: new Gauge({
      name: "paybridge_http_requests_in_flight",
      help: "HTTP requests currently being served.",
      registers: r,
      collect() {
        this.set(inFlight.count);
      },
    }),
    httpResponseSize: new Histogram({
      name: "paybridge_http_response_size_bytes",
      help: "HTTP response body size in bytes, by method and route template.",
      labelNames: ["method", "path"] as const,
      buckets: SIZE_BUCKETS,
      registers: r,
    }),
    businessTransactions: new Counter({
      name: "paybridge_business_transactions_total",
      help: "Money transactions by type, resulting status and currency (counted after commit).",
      labelNames: ["type", "status", "currency"] as const,
      registers: r,
    }),
    businessAmount: new Histogram({
      name: "paybridge_business_transaction_amount",
      help: "Amount of completed money transactions, in the currency's major unit.",
      labelNames: ["type", "currency"] as const,
      buckets: AMOUNT_BUCKETS,
      registers: r,
    }),
    dbQueryDuration: new Histogram({
      name: "paybridge_db_query_duration_seconds",
      help: "Database query duration in seconds, by operation and table.",
      labelNames: ["operation", "table"] as const,
      buckets: DB_DURATION_BUCKETS,
      registers: r,
    }),
    dbErrors: new Counter({
      name: "paybridge_db_errors_total",
      help: "Database errors by operation and error class.",
      labelNames: ["operation", "error_type"] as const,
      registers: r,
    }),
    idempotentReplays: new Counter({
      name: "paybridge_idempotent_replays_total",
      help: "Responses replayed from a stored idempotency record.",
      registers: r,
    }),
    rateLimited: new Counter({
      name: "paybridge_rate_limited_total",
      help: "Requests rejected by the rate limiter, by scope (api, money).",
      labelNames: ["scope"] as const,
      registers: r,
    }),
    rateLimiterErrors: new Counter({
      name: "paybridge_rate_limiter_store_errors_total",
      help: "Rate limiter store failures (the limiter fails open).",
      labelNames: ["store"] as const,
      registers: r,
    }),
    outboxPublished: new Counter({
      name: "paybridge_outbox_published_total",
      help: "Outbox events delivered, by target.",
      labelNames: ["target"] as const,
      registers: r,
    }),
    outboxFailed: new Counter({
      name: "paybridge_outbox_failed_total",
      help: "Outbox delivery failures, by target.",
      labelNames: ["target"] as const,
      registers: r,
    }),
    breakerState: new Gauge({
      name: "paybridge_breaker_state",
      help: "Circuit breaker state by target: 0 closed, 1 half-open, 2 open.",
      labelNames: ["target"] as const,
      registers: r,
    }),
    reconciliationMismatches: new Gauge({
      name: "paybridge_reconciliation_mismatches",
      help: "Mismatches found by the last reconciliation run.",
      registers: r,
    }),
    buildInfo: new Gauge({
      name: "paybridge_build_info",
      help: "Always 1; the labels name the running build.",
      labelNames: ["version", "revision", "bun_version"] as const,
      registers: r,
    }),
    // Scrape-time gauges over the database: set by the collectors in db-metrics.ts.
    dbUp: new Gauge({
      name: "paybridge_db_up",
      help: "1 when the last database check succeeded, else 0.",
      registers: r,
    }),
    schemaVersion: new Gauge({
      name: "paybridge_schema_version",
      help: "Applied schema version (-1 when unknown or the database is unreachable).",
      registers: r,
    }),
    schemaExpectedVersion: new Gauge({
      name: "paybridge_schema_expected_version",
      help: "Schema version this binary expects.",
      registers: r,
    }),
    outboxPending: new Gauge({
      name: "paybridge_outbox_pending_events",
      help: "Outbox events not yet delivered.",
      registers: r,
    }),
    outboxOldestAge: new Gauge({
      name: "paybridge_outbox_oldest_pending_age_seconds",
      help: "Age in seconds of the oldest undelivered outbox event (0 when none).",
      registers: r,
    }),
    businessWallets: new Gauge({
      name: "paybridge_business_wallets_total",
      help: "Wallets by status and currency (a gauge; the _total name is the customer's).",
      labelNames: ["status", "currency"] as const,
      registers: r,
    }),
    businessUsers: new Gauge({
      name: "paybridge_business_users_total",
      help: "Users by KYC status (a gauge; the _total name is the customer's).",
      labelNames: ["kyc_status"] as const,
      registers: r,
    }),
    dbConnections: new Gauge({
      name: "paybridge_db_connections",
      help: "Database pool connections: max = pool size, in_use = running a query or held by a transaction, idle = open minus in use.",
      labelNames: ["state"] as const,
      registers: r,
    }),
  };
  initLabels(metrics);
  return { ...metrics, ...hotPaths(metrics) };
}

/** The HTTP series of one route template and method (the status counters appear as seen). */
export type RouteSeries = {
  duration: HistogramSeries;
  size: HistogramSeries;
  requests: (status: number) => CounterSeries;
};

/**
 * Handles for the metrics updated on every request and every query (series.ts): the plugin
 * and the pool instrumentation update series through these, everything else through
 * prom-client's own inc/observe/set.
 */
function hotPaths(m: {
  httpRequests: Counter<"method" | "path" | "status">;
  httpDuration: Histogram<"method" | "path">;
  httpResponseSize: Histogram<"method" | "path">;
  dbQueryDuration: Histogram<"operation" | "table">;
}) {
  // Handles are made once per label set and kept. The keys are label values the caller
  // already holds (route template, method, status; the pool's per-statement class object) and
  // the makers are made once too, so a request builds no key string and no closure.
  const routeSeries = (path: string, method: string): RouteSeries => {
    const labels = { method, path };
    const byStatus = new Map<number, CounterSeries>();
    const statusSeries = (status: number) =>
      counterSeries(m.httpRequests, { method, path, status: String(status) });
    return {
      duration: histogramSeries(m.httpDuration, labels),
      size: histogramSeries(m.httpResponseSize, labels),
      requests: (status) => cached(byStatus, status, statusSeries),
    };
  };
  const pathSeries = (path: string) => {
    const byMethod = new Map<string, RouteSeries>();
    const make = (method: string) => routeSeries(path, method);
    return (method: string) => cached(byMethod, method, make);
  };
  const routes = new Map<string, (method: string) => RouteSeries>();
  const querySeries = (labels: { operation: string; table: string }) =>
    histogramSeries(m.dbQueryDuration, { operation: labels.operation, table: labels.table });
  const queries = new WeakMap<object, HistogramSeries>();
  return {
    /** Series of `paybridge_http_*` for a route template and method. */
    httpSeries: (path: string, method: string): RouteSeries => cached(routes, path, pathSeries)(method),
    /**
     * `paybridge_db_query_duration_seconds` for one label set; `labels` must be a long-lived
     * object (the pool's cached per-statement class), it keys the cache.
     */
    dbQuerySeries: (labels: { operation: string; table: string }): HistogramSeries =>
      cached(queries, labels, querySeries),
  };
}

/** The value under `key`, made by `make(key)` and kept on first use. */
function cached<K, V>(
  map: { get(k: K): V | undefined; set(k: K, v: V): unknown },
  key: K,
  make: (key: K) => V,
): V {
  let v = map.get(key);
  if (v === undefined) {
    v = make(key);
    map.set(key, v);
  }
  return v;
}

/** Known label values start at 0 (a counter that appears only on its first event breaks rate()). */
function initLabels(m: Omit<Metrics, "httpSeries" | "dbQuerySeries">): void {
  m.buildInfo.set(
    { version: BUILD_INFO.version, revision: BUILD_INFO.revision, bun_version: BUILD_INFO.bunVersion },
    1,
  );
  m.schemaExpectedVersion.set(EXPECTED_SCHEMA_VERSION);
  m.schemaVersion.set(-1);
  m.dbUp.set(0);
  for (const status of WALLET_STATUSES) {
    for (const currency of CURRENCY_CODES) m.businessWallets.set({ status, currency }, 0);
  }
  for (const kyc_status of KYC_STATUSES) m.businessUsers.set({ kyc_status }, 0);
  for (const state of DB_CONNECTION_STATES) m.dbConnections.set({ state }, 0);
  for (const target of BREAKER_TARGETS) {
    m.breakerState.set({ target }, 0);
    m.outboxPublished.inc({ target }, 0);
    m.outboxFailed.inc({ target }, 0);
  }
  for (const scope of RATE_LIMIT_SCOPES) m.rateLimited.inc({ scope }, 0);
}

export type Metrics = ReturnType<typeof createMetrics>;

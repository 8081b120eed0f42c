// Every metric PayBridge exports, in one registry per process (SPEC §5.2). Names, types and
// labels are the contract with dashboards and alerts: do not rename. Features feed the
// metrics declared here; scrape-time gauges (wallets, users, pool, outbox) get collectors
// from the observability plugin.
import { Counter, Gauge, Histogram, Registry } from "prom-client";

/** Amount histogram unit: the currency's MAJOR unit (e.g. dollars), converted exactly to a float only for observation. */
export const AMOUNT_BUCKETS = [0.01, 0.1, 1, 10, 50, 100, 500, 1_000, 5_000, 10_000, 50_000, 100_000, 1_000_000];
export const HTTP_DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
export const DB_DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
export const SIZE_BUCKETS = [64, 256, 1024, 4096, 16_384, 65_536, 262_144, 1_048_576];
/** Label for requests that matched no route: bounded cardinality. */
export const UNMATCHED_PATH = "<unmatched>";

export function createMetrics() {
  const registry = new Registry();
  const r = [registry];
  return {
    registry,
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
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

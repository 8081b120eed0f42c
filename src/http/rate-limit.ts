// Rate limiting (SPEC §5.6): a token bucket per caller and scope. A bucket holds
// `perMin + burst` tokens and refills continuously at perMin/60 tokens a second, so a caller
// can never pass more than capacity + perMin in any 60 s window (a fixed window would let
// 2× through at a boundary). Stores (memory, Redis) only keep the bucket; this file holds the
// arithmetic, the route classification, the headers and the fail-open policy.
import type { Logger } from "pino";
import type { Metrics } from "../observability/metrics.ts";
import { AppError } from "./errors.ts";

export type RateScope = "api" | "money";

export type BucketRule = Readonly<{ scope: RateScope; perMin: number; burst: number }>;

export type RateDecision = Readonly<{
  allowed: boolean;
  /** Bucket capacity: perMin + burst. */
  limit: number;
  /** Whole tokens left after this request. */
  remaining: number;
  /** Milliseconds until the bucket is full again. */
  resetMs: number;
  /** Milliseconds until the next token (0 when allowed). */
  retryAfterMs: number;
}>;

/** One interface, two stores. `take` consumes one token when there is one. */
export interface RateLimitStore {
  readonly kind: "memory" | "redis";
  take(key: string, rule: BucketRule): Promise<RateDecision>;
  close(): Promise<void>;
}

export const MS_PER_MINUTE = 60_000;

export const capacityOf = (rule: BucketRule) => rule.perMin + rule.burst;

/**
 * Pure token-bucket step shared by the memory store and mirrored by the Redis Lua script.
 * `prev` is the stored state (undefined: a new caller starts full).
 */
export function takeToken(
  prev: { tokens: number; atMs: number } | undefined,
  rule: BucketRule,
  nowMs: number,
): { decision: RateDecision; tokens: number } {
  const capacity = capacityOf(rule);
  const perMs = rule.perMin / MS_PER_MINUTE;
  const elapsed = prev ? Math.max(0, nowMs - prev.atMs) : 0;
  let tokens = prev ? Math.min(capacity, prev.tokens + elapsed * perMs) : capacity;
  const allowed = tokens >= 1;
  if (allowed) tokens -= 1;
  return {
    tokens,
    decision: {
      allowed,
      limit: capacity,
      remaining: Math.floor(tokens),
      resetMs: Math.ceil((capacity - tokens) / perMs),
      retryAfterMs: allowed ? 0 : Math.ceil((1 - tokens) / perMs),
    },
  };
}

/** Money-moving POSTs (SPEC §3.1 idempotency list) get the stricter `money` bucket. */
export const MONEY_ROUTES: readonly string[] = [
  "/api/v1/wallets/:id/credit",
  "/api/v1/wallets/:id/debit",
  "/api/v1/wallets/:id/transfer",
  "/api/v1/wallets/:id/adjustments",
  "/api/v1/wallets/:id/holds",
  "/api/v1/transactions/:id/complete",
  "/api/v1/transactions/:id/fail",
  "/api/v1/transactions/:id/cancel",
  "/api/v1/transactions/:id/retry",
];

const API_PREFIX = "/api/v1/";
const MONEY_PATTERNS = MONEY_ROUTES.map((template) => new RegExp(`^${template.replace(":id", "[^/]+")}/?$`));

/**
 * Which bucket a request draws from, by method and path (the route templates above, matched
 * before routing so floods of unknown paths are limited too). null: never limited — probes,
 * /metrics, /docs, /openapi.json, anything outside /api/v1.
 */
export function classifyRequest(method: string, path: string): RateScope | null {
  if (!path.startsWith(API_PREFIX) && path !== "/api/v1") return null;
  if (method === "POST" && MONEY_PATTERNS.some((re) => re.test(path))) return "money";
  return "api";
}

/** The response headers for a decision (draft-ietf-httpapi-ratelimit-headers field names). */
export function rateLimitHeaders(decision: RateDecision, rule: BucketRule): Record<string, string> {
  const headers: Record<string, string> = {
    "RateLimit-Limit": String(decision.limit),
    "RateLimit-Remaining": String(decision.remaining),
    "RateLimit-Reset": String(Math.ceil(decision.resetMs / 1000)),
    "RateLimit-Policy": `${rule.perMin};w=60;burst=${rule.burst}`,
  };
  if (!decision.allowed) headers["Retry-After"] = String(retryAfterSeconds(decision));
  return headers;
}

export const retryAfterSeconds = (d: RateDecision) => Math.max(1, Math.ceil(d.retryAfterMs / 1000));

/** 429 RATE_LIMITED, rendered by the core error mapper like every AppError. */
export class RateLimitedError extends AppError {
  constructor(decision: RateDecision, rule: BucketRule) {
    const wait = retryAfterSeconds(decision);
    super(
      "RATE_LIMITED",
      429,
      `Too many requests. Retry after ${wait} second${wait === 1 ? "" : "s"}.`,
      undefined,
      rateLimitHeaders(decision, rule),
      { scope: rule.scope, retry_after_seconds: wait },
    );
  }
}

/** A failing store is reported at most this often in the log (the metric counts every one). */
export const STORE_ERROR_LOG_INTERVAL_MS = 30_000;

export type RateLimiterOptions = {
  store: RateLimitStore;
  metrics: Metrics;
  logger: Logger;
  rules: Readonly<Record<RateScope, BucketRule>>;
  now?: () => number;
};

export class RateLimiter {
  private lastErrorLogMs = Number.NEGATIVE_INFINITY;
  constructor(private readonly opts: RateLimiterOptions) {}

  rule(scope: RateScope): BucketRule {
    return this.opts.rules[scope];
  }

  /**
   * Consumes a token for `identity` in `scope`. Returns the decision, or null when the store
   * failed: the limiter fails open (an outage of Redis must not become an outage of the API).
   */
  async check(scope: RateScope, identity: string): Promise<RateDecision | null> {
    const { store, metrics } = this.opts;
    try {
      return await store.take(`${scope}:${identity}`, this.rule(scope));
    } catch (err) {
      metrics.rateLimiterErrors.inc({ store: store.kind });
      const now = (this.opts.now ?? Date.now)();
      if (now - this.lastErrorLogMs >= STORE_ERROR_LOG_INTERVAL_MS) {
        this.lastErrorLogMs = now;
        this.opts.logger.warn(
          { store: store.kind, err: err instanceof Error ? err.message : String(err) },
          "rate limiter store unavailable: requests pass unlimited",
        );
      }
      return null;
    }
  }

  close(): Promise<void> {
    return this.opts.store.close();
  }
}

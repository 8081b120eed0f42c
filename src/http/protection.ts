// The protection plugin: security headers, CORS, and rate limiting, as one global onRequest
// hook. It runs before routing and body parsing, so a flood is refused before it costs a
// parse, a token check in a route or a database round trip, and 404 floods are limited too.
// Order inside the hook: security headers (every response) → CORS preflight short-circuit
// (never limited: it carries no credentials) → CORS headers → rate limit.
import { Elysia } from "elysia";
import type { AppDeps } from "../app.ts";
import type { Config } from "../config.ts";
import { type Authenticator, verifyRequest } from "./auth.ts";
import { createTrustMatcher, ipRateKey, resolveClientIp, type TrustMatcher } from "./client-ip.ts";
import { corsHeaders, createCorsPolicy, isPreflight, preflightResponse } from "./cors.ts";
import {
  type BucketRule,
  classifyRequest,
  RateLimitedError,
  RateLimiter,
  type RateLimitStore,
  type RateScope,
  rateLimitHeaders,
} from "./rate-limit.ts";
import { MemoryRateLimitStore } from "./rate-limit-memory.ts";
import { RedisRateLimitStore } from "./rate-limit-redis.ts";
import { securityHeaders } from "./security-headers.ts";

export type ProtectionOptions = {
  /** Overrides the store chosen from config (tests inject clocks or prefixes this way). */
  store?: RateLimitStore;
};

export function rateLimitRules(config: Config): Readonly<Record<RateScope, BucketRule>> {
  return Object.freeze({
    api: { scope: "api", perMin: config.rateLimitApiPerMin, burst: config.rateLimitBurst },
    money: { scope: "money", perMin: config.rateLimitMoneyPerMin, burst: config.rateLimitBurst },
  });
}

/** Redis when REDIS_URL is set (shared by every replica), else per-process memory. */
export function createRateLimitStore(config: Config): RateLimitStore {
  return config.redisUrl !== undefined
    ? new RedisRateLimitStore(config.redisUrl)
    : new MemoryRateLimitStore();
}

/** Path of a request URL without parsing the whole URL (this runs on every request). */
export function pathOf(url: string): string {
  const scheme = url.indexOf("://");
  const start = url.indexOf("/", scheme < 0 ? 0 : scheme + 3);
  if (start < 0) return "/";
  const q = url.indexOf("?", start);
  const h = url.indexOf("#", start);
  const end = Math.min(q < 0 ? url.length : q, h < 0 ? url.length : h);
  return url.slice(start, end);
}

type Peer = { requestIP(request: Request): { address: string } | null } | null | undefined;

/**
 * The rate-limit identity: the user id of a VALID token, else the client address. An invalid
 * or expired token counts against the address, so garbage tokens cannot mint fresh buckets.
 */
export async function callerIdentity(
  auth: Authenticator,
  request: Request,
  server: Peer,
  trusted: TrustMatcher,
): Promise<string> {
  const authorization = request.headers.get("authorization");
  if (authorization) {
    try {
      const caller = await verifyRequest(auth, request);
      return `user:${caller.id}`;
    } catch {
      // fall through to the address
    }
  }
  const peer = server?.requestIP(request)?.address;
  return `ip:${ipRateKey(resolveClientIp(peer, request.headers, trusted))}`;
}

export function protectionPlugin(deps: AppDeps, opts: ProtectionOptions = {}) {
  const { config, metrics, logger, auth } = deps;
  const cors = createCorsPolicy(config.corsOrigins);
  const trusted = createTrustMatcher(config.trustedProxies);
  const tls = config.tlsCertFile !== undefined;
  const limiter = config.rateLimitEnabled
    ? new RateLimiter({
        store: opts.store ?? createRateLimitStore(config),
        metrics,
        logger,
        rules: rateLimitRules(config),
      })
    : null;

  return new Elysia()
    .onRequest(async ({ request, set, server }) => {
      const path = pathOf(request.url);
      Object.assign(set.headers, securityHeaders(path, tls));
      if (isPreflight(request)) return preflightResponse(cors, request);
      Object.assign(set.headers, corsHeaders(cors, request.headers.get("origin")));

      if (limiter === null) return;
      const scope = classifyRequest(request.method, path);
      if (scope === null) return;
      const identity = await callerIdentity(auth, request, server, trusted);
      const decision = await limiter.check(scope, identity);
      if (decision === null) return; // store failed: fail open (counted and logged)
      const rule = limiter.rule(scope);
      Object.assign(set.headers, rateLimitHeaders(decision, rule));
      if (!decision.allowed) {
        metrics.rateLimited.inc({ scope });
        throw new RateLimitedError(decision, rule);
      }
    })
    .onStop(async () => {
      await limiter?.close();
    })
    .as("global");
}

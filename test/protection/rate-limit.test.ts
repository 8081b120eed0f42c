import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  type BucketRule,
  classifyRequest,
  MONEY_ROUTES,
  RateLimitedError,
  rateLimitHeaders,
  takeToken,
} from "../../src/http/rate-limit.ts";
import { MemoryRateLimitStore } from "../../src/http/rate-limit-memory.ts";

const api: BucketRule = { scope: "api", perMin: 60, burst: 10 };

describe("classifyRequest", () => {
  test.each([
    ["POST", "/api/v1/wallets/0b7c/credit", "money"],
    ["POST", "/api/v1/wallets/0b7c/debit", "money"],
    ["POST", "/api/v1/wallets/0b7c/transfer", "money"],
    ["POST", "/api/v1/wallets/0b7c/adjustments", "money"],
    ["POST", "/api/v1/wallets/0b7c/holds", "money"],
    ["POST", "/api/v1/transactions/9/complete", "money"],
    ["POST", "/api/v1/transactions/9/fail", "money"],
    ["POST", "/api/v1/transactions/9/cancel", "money"],
    ["POST", "/api/v1/transactions/9/retry/", "money"],
    ["GET", "/api/v1/wallets/0b7c/credit", "api"],
    ["POST", "/api/v1/wallets/0b7c/close", "api"],
    ["POST", "/api/v1/wallets", "api"],
    ["POST", "/api/v1/users", "api"],
    ["GET", "/api/v1/no-such-route", "api"],
    ["GET", "/api/v1", "api"],
    ["POST", "/api/v1/wallets/a/b/credit", "api"],
    ["GET", "/live", null],
    ["GET", "/health", null],
    ["GET", "/ready", null],
    ["GET", "/health/detailed", null],
    ["GET", "/metrics", null],
    ["GET", "/docs", null],
    ["GET", "/openapi.json", null],
    ["GET", "/api/v10/x", null],
  ])("%s %s → %p", (method, path, want) => {
    expect(classifyRequest(method, path)).toBe(want as never);
  });

  test("every money route template is classified money", () => {
    for (const t of MONEY_ROUTES) expect(classifyRequest("POST", t.replace(":id", "x"))).toBe("money");
  });
});

describe("token bucket arithmetic", () => {
  test("a new caller starts with perMin + burst tokens, then is refused", () => {
    let state: { tokens: number; atMs: number } | undefined;
    const results: boolean[] = [];
    for (let i = 0; i < 71; i++) {
      const { decision, tokens } = takeToken(state, api, 0);
      state = { tokens, atMs: 0 };
      results.push(decision.allowed);
    }
    expect(results.filter(Boolean).length).toBe(70);
    expect(results[70]).toBe(false);
  });

  test("refills continuously: one token per second at 60/min", () => {
    const empty = { tokens: 0, atMs: 0 };
    expect(takeToken(empty, api, 999).decision.allowed).toBe(false);
    expect(takeToken(empty, api, 1000).decision.allowed).toBe(true);
    const refused = takeToken({ tokens: 0.25, atMs: 0 }, api, 0).decision;
    expect(refused.retryAfterMs).toBe(750);
    expect(refused.resetMs).toBe(69_750);
  });

  test("headers: limit, remaining, reset, policy; Retry-After only when refused", () => {
    const ok = takeToken(undefined, api, 0).decision;
    expect(rateLimitHeaders(ok, api)).toEqual({
      "RateLimit-Limit": "70",
      "RateLimit-Remaining": "69",
      "RateLimit-Reset": "1",
      "RateLimit-Policy": "60;w=60;burst=10",
    });
    const no = takeToken({ tokens: 0.5, atMs: 0 }, api, 0).decision;
    const h = rateLimitHeaders(no, api);
    expect(h["Retry-After"]).toBe("1");
    expect(h["RateLimit-Remaining"]).toBe("0");
    const err = new RateLimitedError(no, api);
    expect(err.status).toBe(429);
    expect(err.code).toBe("RATE_LIMITED");
    expect(err.headers?.["Retry-After"]).toBe("1");
  });

  // Not a fixed window: over ANY 60 s span a caller gets at most capacity + perMin requests,
  // however the requests are spread (a fixed window allows 2× perMin around a boundary).
  test("property: no 60 s window ever admits more than capacity + perMin", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 120 }),
        fc.integer({ min: 0, max: 20 }),
        fc.array(fc.integer({ min: 0, max: 2_000 }), { minLength: 1, maxLength: 400 }),
        (perMin, burst, gaps) => {
          const rule: BucketRule = { scope: "api", perMin, burst };
          let state: { tokens: number; atMs: number } | undefined;
          let now = 0;
          const admitted: number[] = [];
          for (const gap of gaps) {
            now += gap;
            const { decision, tokens } = takeToken(state, rule, now);
            state = { tokens, atMs: now };
            if (decision.allowed) admitted.push(now);
          }
          let lo = 0;
          for (let hi = 0; hi < admitted.length; hi++) {
            while (admitted[hi]! - admitted[lo]! >= 60_000) lo++;
            if (hi - lo + 1 > perMin + burst + perMin) return false;
          }
          return true;
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("memory store", () => {
  test("one bucket per key, decisions by an injected clock", async () => {
    let now = 0;
    const store = new MemoryRateLimitStore({ now: () => now, sweepIntervalMs: 0 });
    const rule: BucketRule = { scope: "money", perMin: 2, burst: 1 };
    const take = async (k: string) => (await store.take(k, rule)).allowed;
    expect([await take("a"), await take("a"), await take("a"), await take("a")]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    expect(await take("b")).toBe(true);
    now += 29_999;
    expect(await take("a")).toBe(false);
    now += 1;
    expect(await take("a")).toBe(true);
    await store.close();
  });

  test("bounded: never more than maxKeys; the least recently used go first", async () => {
    const now = 0;
    const store = new MemoryRateLimitStore({ maxKeys: 100, now: () => now, sweepIntervalMs: 0 });
    for (let i = 0; i < 1000; i++) await store.take(`k${i}`, api);
    expect(store.size).toBe(100);
    // k999 is recent, so its bucket (1 token used) survived; k0 was evicted and starts full.
    expect((await store.take("k999", api)).remaining).toBe(68);
    expect((await store.take("k0", api)).remaining).toBe(69);
    await store.close();
  });

  test("idle keys are evicted once their bucket has refilled", async () => {
    let now = 0;
    const store = new MemoryRateLimitStore({ now: () => now, sweepIntervalMs: 0 });
    await store.take("idle", api);
    await store.take("busy", api);
    now = 500;
    expect(store.sweep()).toBe(0);
    now = 1_000; // 1 token per second: "idle" is full again
    await store.take("busy", api);
    expect(store.sweep()).toBe(1);
    expect(store.size).toBe(1);
    await store.close();
  });
});

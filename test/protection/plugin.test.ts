import { afterAll, describe, expect, test } from "bun:test";
import { MemoryRateLimitStore } from "../../src/http/rate-limit-memory.ts";
import { counterValue, get, testDeps, tinyApp } from "./helpers.ts";

const LIMITS = { RATE_LIMIT_API_PER_MIN: "5", RATE_LIMIT_MONEY_PER_MIN: "2", RATE_LIMIT_BURST: "1" };
const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups) await c();
});

function app(env: Record<string, string> = {}) {
  const { deps, lines } = testDeps({ ...LIMITS, ...env });
  const store = new MemoryRateLimitStore({ sweepIntervalMs: 0 });
  cleanups.push(() => store.close());
  return { app: tinyApp(deps, { store }), deps, lines };
}

describe("rate limiting through the plugin", () => {
  test("api scope: limit + burst pass with RateLimit-* headers, then 429 problem+json", async () => {
    const { app: a, deps } = app();
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 7; i++) {
      last = await get(a, "/api/v1/currencies");
      statuses.push(last.status);
      if (i === 0) {
        expect(last.headers.get("ratelimit-limit")).toBe("6");
        expect(last.headers.get("ratelimit-remaining")).toBe("5");
        expect(Number(last.headers.get("ratelimit-reset"))).toBeGreaterThan(0);
        expect(last.headers.get("retry-after")).toBeNull();
      }
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 429]);
    const res = last!;
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(res.headers.get("ratelimit-remaining")).toBe("0");
    const body = (await res.json()) as Record<string, unknown>;
    expect(body.code).toBe("RATE_LIMITED");
    expect(body.status).toBe(429);
    expect(await counterValue(deps, "paybridge_rate_limited_total", { scope: "api" })).toBe(1);
  });

  test("money scope is separate and stricter; it does not drain the api bucket", async () => {
    const { app: a, deps } = app();
    const money = [];
    for (let i = 0; i < 4; i++)
      money.push((await get(a, "/api/v1/wallets/w1/credit", { method: "POST" })).status);
    expect(money).toEqual([200, 200, 200, 429]);
    // A different money route shares the caller's money bucket.
    expect((await get(a, "/api/v1/transactions/t1/cancel", { method: "POST" })).status).toBe(429);
    expect((await get(a, "/api/v1/currencies")).headers.get("ratelimit-remaining")).toBe("5");
    expect(await counterValue(deps, "paybridge_rate_limited_total", { scope: "money" })).toBe(2);
  });

  test("probes and /metrics are never limited and carry no RateLimit headers", async () => {
    const { app: a } = app();
    for (let i = 0; i < 10; i++) await get(a, "/api/v1/currencies");
    for (const path of ["/live", "/health", "/ready", "/health/detailed", "/metrics"]) {
      for (let i = 0; i < 10; i++) {
        const res = await get(a, path);
        expect(res.status).toBe(200);
        expect(res.headers.get("ratelimit-limit")).toBeNull();
      }
    }
  });

  test("unknown /api/v1 paths count too (a 404 flood is limited)", async () => {
    const { app: a } = app();
    const statuses = [];
    for (let i = 0; i < 7; i++) statuses.push((await get(a, `/api/v1/nope-${i}`)).status);
    expect(statuses).toEqual([404, 404, 404, 404, 404, 404, 429]);
  });

  test("per caller: a valid token gets its own bucket; an invalid token counts against the address", async () => {
    const { app: a } = app();
    for (let i = 0; i < 6; i++) await get(a, "/api/v1/currencies");
    expect((await get(a, "/api/v1/currencies")).status).toBe(429);
    const bad = await get(a, "/api/v1/currencies", { headers: { authorization: "Bearer forged" } });
    expect(bad.status).toBe(429);
    const alice = await get(a, "/api/v1/currencies", { headers: { authorization: "Bearer good:alice" } });
    expect(alice.status).toBe(200);
    expect(alice.headers.get("ratelimit-remaining")).toBe("5");
    for (let i = 0; i < 5; i++)
      await get(a, "/api/v1/currencies", { headers: { authorization: "Bearer good:alice" } });
    expect(
      (await get(a, "/api/v1/currencies", { headers: { authorization: "Bearer good:alice" } })).status,
    ).toBe(429);
    const bob = await get(a, "/api/v1/currencies", { headers: { authorization: "Bearer good:bob" } });
    expect(bob.status).toBe(200);
  });

  test("RATE_LIMIT_ENABLED=false turns the limiter off", async () => {
    const { app: a } = app({ RATE_LIMIT_ENABLED: "false" });
    for (let i = 0; i < 20; i++) {
      const res = await get(a, "/api/v1/wallets/w/credit", { method: "POST" });
      expect(res.status).toBe(200);
      expect(res.headers.get("ratelimit-limit")).toBeNull();
    }
  });
});

describe("CORS", () => {
  const origin = "https://app.example.com";
  const preflight = (o: string) => ({
    method: "OPTIONS",
    headers: {
      origin: o,
      "access-control-request-method": "POST",
      "access-control-request-headers": "authorization, idempotency-key, content-type",
    },
  });

  test("listed origin: preflight 204 with methods, headers, max-age and credentials", async () => {
    const { app: a } = app({ CORS_ORIGINS: `${origin},https://admin.example.com` });
    const res = await get(a, "/api/v1/wallets/w/credit", preflight(origin));
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe(origin);
    expect(res.headers.get("access-control-allow-credentials")).toBe("true");
    expect(res.headers.get("access-control-allow-methods")).toContain("POST");
    const allowed = res.headers.get("access-control-allow-headers")!.toLowerCase();
    for (const h of [
      "authorization",
      "content-type",
      "idempotency-key",
      "x-request-id",
      "x-correlation-id",
      "traceparent",
    ]) {
      expect(allowed).toContain(h);
    }
    expect(Number(res.headers.get("access-control-max-age"))).toBeGreaterThan(0);
    expect(res.headers.get("vary")).toContain("Origin");
    // Preflights never consume rate-limit tokens.
    expect(res.headers.get("ratelimit-limit")).toBeNull();
  });

  test("listed origin: actual response exposes ids, RateLimit-*, Retry-After, Idempotent-Replayed", async () => {
    const { app: a } = app({ CORS_ORIGINS: origin });
    const res = await get(a, "/api/v1/currencies", { headers: { origin } });
    expect(res.headers.get("access-control-allow-origin")).toBe(origin);
    expect(res.headers.get("vary")).toContain("Origin");
    const exposed = res.headers.get("access-control-expose-headers")!;
    for (const h of [
      "X-Request-ID",
      "X-Correlation-ID",
      "RateLimit-Limit",
      "RateLimit-Remaining",
      "RateLimit-Reset",
      "Retry-After",
      "Idempotent-Replayed",
    ]) {
      expect(exposed).toContain(h);
    }
  });

  test("unknown origin (also look-alikes): no CORS headers, preflight gets no permission", async () => {
    const { app: a } = app({ CORS_ORIGINS: origin });
    for (const evil of [
      "https://evil.example",
      "https://app.example.com.evil.example",
      "http://app.example.com",
      "null",
    ]) {
      const pre = await get(a, "/api/v1/currencies", preflight(evil));
      expect(pre.status).toBe(204);
      expect(pre.headers.get("access-control-allow-origin")).toBeNull();
      expect(pre.headers.get("access-control-allow-methods")).toBeNull();
      const res = await get(a, "/api/v1/currencies", { headers: { origin: evil } });
      expect(res.status).toBe(200);
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
      expect(res.headers.get("access-control-allow-credentials")).toBeNull();
    }
  });

  test("wildcard: any origin gets *, never with credentials", async () => {
    const { app: a } = app({ CORS_ORIGINS: "*" });
    const pre = await get(a, "/api/v1/currencies", preflight("https://anyone.example"));
    expect(pre.headers.get("access-control-allow-origin")).toBe("*");
    expect(pre.headers.get("access-control-allow-credentials")).toBeNull();
    const res = await get(a, "/api/v1/currencies", { headers: { origin: "https://anyone.example" } });
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(res.headers.get("access-control-allow-credentials")).toBeNull();
  });

  test("CORS headers are present on a 429 too (a browser can read Retry-After)", async () => {
    const { app: a } = app({ CORS_ORIGINS: origin });
    let res: Response | undefined;
    for (let i = 0; i < 7; i++) res = await get(a, "/api/v1/currencies", { headers: { origin } });
    expect(res!.status).toBe(429);
    expect(res!.headers.get("access-control-allow-origin")).toBe(origin);
  });
});

describe("security headers", () => {
  test("API responses: nosniff, no-store, DENY, no-referrer, CSP; no X-Powered-By; also on errors", async () => {
    const { app: a } = app();
    for (const [path, init] of [
      ["/api/v1/currencies", undefined],
      ["/api/v1/wallets/w/credit", { method: "POST" }],
      ["/api/v1/missing", undefined],
    ] as const) {
      const res = await get(a, path, init);
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("cache-control")).toBe("no-store");
      expect(res.headers.get("x-frame-options")).toBe("DENY");
      expect(res.headers.get("referrer-policy")).toBe("no-referrer");
      expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
      expect(res.headers.get("x-powered-by")).toBeNull();
      expect(res.headers.get("strict-transport-security")).toBeNull();
    }
    const live = await get(a, "/live");
    expect(live.headers.get("x-content-type-options")).toBe("nosniff");
    expect(live.headers.get("cache-control")).toBeNull();
  });
});

describe("client IP through a real socket (TRUSTED_PROXIES)", () => {
  async function serve(env: Record<string, string>) {
    const { app: a } = app(env);
    a.listen({ port: 0, hostname: "127.0.0.1" });
    cleanups.push(() => a.stop());
    return `http://127.0.0.1:${a.server!.port}`;
  }
  const flood = async (base: string, xff: string) => {
    const out: number[] = [];
    for (let i = 0; i < 7; i++) {
      out.push((await fetch(`${base}/api/v1/currencies`, { headers: { "x-forwarded-for": xff } })).status);
    }
    return out;
  };

  test("untrusted peer: spoofed X-Forwarded-For changes nothing (one bucket for the socket address)", async () => {
    const base = await serve({ TRUSTED_PROXIES: "10.0.0.0/8" });
    expect(await flood(base, "198.51.100.1")).toEqual([200, 200, 200, 200, 200, 200, 429]);
    // Rotating the header does not mint a fresh bucket.
    expect(
      (await fetch(`${base}/api/v1/currencies`, { headers: { "x-forwarded-for": "198.51.100.99" } })).status,
    ).toBe(429);
  });

  test("trusted peer: each forwarded client gets its own bucket", async () => {
    const base = await serve({ TRUSTED_PROXIES: "127.0.0.1/32,::1" });
    expect(await flood(base, "198.51.100.1")).toEqual([200, 200, 200, 200, 200, 200, 429]);
    expect(
      (await fetch(`${base}/api/v1/currencies`, { headers: { "x-forwarded-for": "198.51.100.2" } })).status,
    ).toBe(200);
    // A client behind the proxy prepending an address still lands in its own bucket.
    const spoof = await fetch(`${base}/api/v1/currencies`, {
      headers: { "x-forwarded-for": "203.0.113.250, 198.51.100.1" },
    });
    expect(spoof.status).toBe(429);
  });
});

// The protection plugin composed with the real core plugin (ids, problem+json mapper), the
// real JWT authenticator and real routes on a fresh database — the way src/app.ts wires it.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Elysia } from "elysia";
import pino from "pino";
import type { AppDeps } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { createSql } from "../../src/db/client.ts";
import { createAuthenticator, mintToken } from "../../src/http/auth.ts";
import { corePlugin, methodIndex } from "../../src/http/core.ts";
import { protectionPlugin } from "../../src/http/protection.ts";
import { currenciesRoutes } from "../../src/modules/currencies/index.ts";
import { usersRoutes } from "../../src/modules/users/index.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";
import { TEST_JWT_SECRET } from "./helpers.ts";

setDefaultTimeout(30_000);

let db: TestDatabase;
let deps: AppDeps;
let app: { handle(r: Request): Promise<Response> };

beforeAll(async () => {
  db = await createTestDatabase("pbprot");
  const config = loadConfig(
    {
      DATABASE_URL: db.url,
      JWT_SECRET: TEST_JWT_SECRET,
      RATE_LIMIT_API_PER_MIN: "3",
      RATE_LIMIT_BURST: "0",
      CORS_ORIGINS: "https://app.example.com",
    },
    "serve",
  );
  const { auth } = await createAuthenticator(config);
  deps = {
    config,
    sql: createSql(config, { applicationName: "paybridge-protection-test", max: 2 }),
    logger: pino({ level: "silent" }),
    lifecycle: { draining: false, startedAt: Date.now() },
    auth,
    metrics: createMetrics(),
  };
  const a: Elysia = new Elysia({ normalize: false });
  app = a
    .use(corePlugin({ logger: deps.logger, allowedMethods: methodIndex(() => a.routes) }))
    .use(protectionPlugin(deps))
    .use(currenciesRoutes())
    .use(usersRoutes(deps));
}, 60_000);

afterAll(async () => {
  await deps?.sql.end({ timeout: 1 });
  await db?.drop();
});

const call = (path: string, init: RequestInit = {}) =>
  app.handle(new Request(`http://localhost${path}`, init));
const bearer = async (sub: string) => ({
  authorization: `Bearer ${await mintToken(deps.config, { sub, role: "admin", ttlSeconds: 300 })}`,
});

describe("protection with the real core plugin and authenticator", () => {
  test("429 is problem+json from the core mapper with ids, RateLimit-*, Retry-After and CORS", async () => {
    const headers = { ...(await bearer(crypto.randomUUID())), origin: "https://app.example.com" };
    const statuses = [];
    let last: Response | undefined;
    for (let i = 0; i < 4; i++) {
      last = await call("/api/v1/users", { headers: { ...headers, "x-request-id": `rl-${i}` } });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    const res = last!;
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    expect(res.headers.get("x-request-id")).toBe("rl-3");
    expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(res.headers.get("ratelimit-limit")).toBe("3");
    expect(res.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      status: 429,
      code: "RATE_LIMITED",
      request_id: "rl-3",
      instance: "/api/v1/users",
    });
    expect(body.type).toBe("https://paybridge.dev/problems/rate-limited");
  });

  test("a valid token is its own caller; expired or forged tokens fall back to the address", async () => {
    // Exhaust the anonymous (address) bucket.
    for (let i = 0; i < 3; i++) await call("/api/v1/currencies");
    expect((await call("/api/v1/currencies")).status).toBe(429);
    const forged = { authorization: `Bearer ${(await bearer("x")).authorization.slice(7, -4)}AAAA` };
    expect((await call("/api/v1/currencies", { headers: forged })).status).toBe(429);
    const expired = {
      authorization: `Bearer ${await mintToken(deps.config, { sub: "late", role: "user", ttlSeconds: -3600 }).catch(() => "x.y.z")}`,
    };
    expect((await call("/api/v1/currencies", { headers: expired })).status).toBe(429);
    expect((await call("/api/v1/currencies", { headers: await bearer(crypto.randomUUID()) })).status).toBe(
      200,
    );
  });

  test("preflight through the full stack: 204, not 404/405, and not rate limited", async () => {
    const res = await call("/api/v1/users", {
      method: "OPTIONS",
      headers: { origin: "https://app.example.com", "access-control-request-method": "POST" },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    expect(res.headers.get("x-request-id")).toBeTruthy();
  });
});

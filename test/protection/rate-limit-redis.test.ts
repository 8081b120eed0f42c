// Against the machine's real Redis (127.0.0.1:6379) under a prefix unique to this run, and
// against a closed port for the outage cases. Keys are deleted at the end.
import { afterAll, describe, expect, test } from "bun:test";
import { RedisClient } from "bun";
import type { BucketRule } from "../../src/http/rate-limit.ts";
import { RedisRateLimitStore } from "../../src/http/rate-limit-redis.ts";
import { counterValue, get, testDeps, tinyApp } from "./helpers.ts";

const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const PREFIX = `paybridge-test:${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}:`;
const stores: RedisRateLimitStore[] = [];

function store(prefix = PREFIX) {
  const s = new RedisRateLimitStore(REDIS_URL, { prefix });
  stores.push(s);
  return s;
}

/** A port nothing listens on: bind, read the port, close. */
async function closedPort(): Promise<number> {
  const srv = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = srv.port;
  srv.stop(true);
  return port;
}

afterAll(async () => {
  for (const s of stores) await s.close();
  const admin = new RedisClient(REDIS_URL);
  let cursor = "0";
  do {
    const [next, keys] = (await admin.send("SCAN", [cursor, "MATCH", `${PREFIX}*`, "COUNT", "1000"])) as [
      string,
      string[],
    ];
    cursor = next;
    if (keys.length > 0) await admin.send("DEL", keys);
  } while (cursor !== "0");
  admin.close();
});

const rule: BucketRule = { scope: "api", perMin: 10, burst: 5 };

describe("redis store", () => {
  test("atomic: 60 concurrent takes on one bucket admit exactly capacity", async () => {
    const s = store();
    const results = await Promise.all(Array.from({ length: 60 }, () => s.take("atomic", rule)));
    expect(results.filter((d) => d.allowed).length).toBe(15);
    const refused = results.find((d) => !d.allowed)!;
    expect(refused.remaining).toBe(0);
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    expect(refused.limit).toBe(15);
  });

  test("shared: two stores (two replicas) draw from the same bucket", async () => {
    const a = store();
    const b = store();
    const both = await Promise.all(
      Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? a : b).take("shared", rule)),
    );
    expect(both.filter((d) => d.allowed).length).toBe(15);
    // A different caller is unaffected.
    expect((await a.take("someone-else", rule)).allowed).toBe(true);
  });

  test("keys expire once the bucket would be full (no unbounded growth)", async () => {
    const s = store();
    await s.take("ttl", rule);
    const admin = new RedisClient(REDIS_URL);
    const ttl = (await admin.send("PTTL", [`${PREFIX}ttl`])) as number;
    admin.close();
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(6_000 + 1_000);
  });

  test("recovers after SCRIPT FLUSH (NOSCRIPT → EVAL)", async () => {
    // SCRIPT FLUSH only drops the script cache; the store must reload the script by itself.
    const s = store();
    expect((await s.take("flush", rule)).allowed).toBe(true);
    const admin = new RedisClient(REDIS_URL);
    await admin.send("SCRIPT", ["FLUSH"]);
    admin.close();
    expect((await s.take("flush", rule)).remaining).toBe(13);
  });

  test("unreachable Redis: take rejects quickly instead of hanging", async () => {
    const port = await closedPort();
    const s = new RedisRateLimitStore(`redis://127.0.0.1:${port}`, { prefix: PREFIX });
    stores.push(s);
    await expect(s.take("x", rule)).rejects.toThrow();
    // During the reconnect backoff, requests fail at once without a new connection attempt.
    await expect(s.take("x", rule)).rejects.toThrow("waiting before reconnecting");
  });

  test("a server that accepts but never answers: the command times out", async () => {
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const s = new RedisRateLimitStore(`redis://127.0.0.1:${silent.port}`, {
      prefix: PREFIX,
      commandTimeoutMs: 100,
    });
    stores.push(s);
    await expect(s.take("x", rule)).rejects.toThrow("did not answer within 100 ms");
    silent.stop(true);
  });
});

describe("plugin with Redis", () => {
  test("shared limit across two app instances (replicas) on one Redis", async () => {
    const env = { RATE_LIMIT_API_PER_MIN: "3", RATE_LIMIT_BURST: "0", REDIS_URL };
    const one = testDeps(env);
    const two = testDeps(env);
    const a = tinyApp(one.deps, { store: store() });
    const b = tinyApp(two.deps, { store: store() });
    const caller = { headers: { authorization: `Bearer good:${crypto.randomUUID()}` } };
    const statuses = [];
    for (let i = 0; i < 6; i++)
      statuses.push((await get(i % 2 ? b : a, "/api/v1/currencies", caller)).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429, 429]);
  });

  test("Redis down: requests pass (fail open), error metric counts, one warn log, never 5xx", async () => {
    const port = await closedPort();
    const { deps, lines } = testDeps({
      RATE_LIMIT_API_PER_MIN: "1",
      RATE_LIMIT_BURST: "0",
      REDIS_URL: `redis://127.0.0.1:${port}`,
    });
    const a = tinyApp(deps); // store chosen from config: Redis
    for (let i = 0; i < 20; i++) {
      const res = await get(a, "/api/v1/currencies");
      expect(res.status).toBe(200);
      expect(res.headers.get("ratelimit-limit")).toBeNull();
    }
    expect(await counterValue(deps, "paybridge_rate_limiter_store_errors_total", { store: "redis" })).toBe(
      20,
    );
    expect(await counterValue(deps, "paybridge_rate_limited_total", { scope: "api" })).toBe(0);
    const warns = lines.filter((l) => l.level === 40);
    expect(warns.length).toBe(1);
    expect(warns[0]!.msg).toContain("rate limiter store unavailable");
  });
});

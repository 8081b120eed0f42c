// The HTTP core through the real app: ids on every response, problem+json for framework
// errors (404, 405, 413, malformed JSON, unsupported type), and no internals leaking.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { expectProblemShape, type Harness, startHarness } from "./helpers.ts";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

describe("request and correlation ids", () => {
  test("a valid X-Request-ID is echoed, correlation defaults to it", async () => {
    const r = await h.call("GET", "/api/v1/currencies", { headers: { "x-request-id": "req-1.a:b_c" } });
    expect(r.status).toBe(200);
    expect(r.headers.get("x-request-id")).toBe("req-1.a:b_c");
    expect(r.headers.get("x-correlation-id")).toBe("req-1.a:b_c");
  });

  test("both ids echoed independently", async () => {
    const r = await h.call("GET", "/api/v1/currencies", {
      headers: { "x-request-id": "r1", "x-correlation-id": "c1" },
    });
    expect(r.headers.get("x-request-id")).toBe("r1");
    expect(r.headers.get("x-correlation-id")).toBe("c1");
  });

  test.each(["has space", "x".repeat(129), "semi;colon", "ünï"])(
    "invalid id %p is replaced by a uuid",
    async (bad) => {
      const r = await h.call("GET", "/api/v1/currencies", {
        headers: { "x-request-id": bad, "x-correlation-id": bad },
      });
      const id = r.headers.get("x-request-id") ?? "";
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect(r.headers.get("x-correlation-id")).toBe(id);
    },
  );

  test("ids are on 404s and 401s too, and match the problem's request_id", async () => {
    for (const [m, p] of [
      ["GET", "/nope"],
      ["GET", "/api/v1/users"],
    ] as const) {
      const r = await h.call(m, p, { headers: { "x-request-id": "trace-me" } });
      expect(r.headers.get("x-request-id")).toBe("trace-me");
      expect(r.body.request_id).toBe("trace-me");
      expectProblemShape(r);
    }
  });
});

describe("framework errors are problems", () => {
  test("unknown route → 404 NOT_FOUND", async () => {
    const r = await h.call("GET", "/api/v1/nothing-here");
    expect(r.status).toBe(404);
    expect(r.body.code).toBe("NOT_FOUND");
    expect(r.body.instance).toBe("/api/v1/nothing-here");
    expectProblemShape(r);
  });

  test("wrong method → 405 with Allow", async () => {
    const r = await h.call("DELETE", "/api/v1/users");
    expect(r.status).toBe(405);
    expect(r.body.code).toBe("METHOD_NOT_ALLOWED");
    expect(r.headers.get("allow")).toBe("GET, POST");
    expectProblemShape(r);
    const w = await h.call("PUT", "/api/v1/wallets/7f1c1d52-6f1e-4c5a-9e59-0b4b7c9d1a23/limits");
    expect(w.status).toBe(405);
    expect(w.headers.get("allow")).toBe("PATCH");
  });

  test("malformed JSON → 400 MALFORMED_JSON", async () => {
    const r = await h.call("POST", "/api/v1/users", { raw: '{"email": "a@b.co", ' });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe("MALFORMED_JSON");
    expectProblemShape(r);
  });

  test("non-JSON content type → 415", async () => {
    const r = await h.call("POST", "/api/v1/users", {
      raw: "email=a@b.co",
      headers: { "content-type": "text/plain" },
    });
    expect(r.status).toBe(415);
    expect(r.body.code).toBe("UNSUPPORTED_MEDIA_TYPE");
    expectProblemShape(r);
  });

  test("body over 64 KiB → 413 by Content-Length and by actual size", async () => {
    const big = JSON.stringify({ email: "a@b.co", full_name: "x".repeat(70_000) });
    const r = await h.call("POST", "/api/v1/users", { raw: big });
    expect(r.status).toBe(413);
    expect(r.body.code).toBe("PAYLOAD_TOO_LARGE");
    expectProblemShape(r);
    // a streamed body without Content-Length is counted as it arrives
    const chunk = new TextEncoder().encode("x".repeat(16_384));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent++ < 6) c.enqueue(chunk);
        else c.close();
      },
    });
    const res = await h.app.handle(
      new Request("http://localhost/api/v1/users", {
        method: "POST",
        body: stream,
        headers: { "content-type": "application/json" },
      }),
    );
    expect(res.status).toBe(413);
    expect(((await res.json()) as { code: string }).code).toBe("PAYLOAD_TOO_LARGE");
  });

  test("a declared Content-Length over 64 KiB is refused before reading", async () => {
    const r = await h.call("POST", "/api/v1/users", {
      raw: "{}",
      headers: { "content-length": String(65 * 1024) },
    });
    expect(r.status).toBe(413);
  });

  test("deeply nested JSON → 400 naming the body", async () => {
    const deep = `${"[".repeat(5000)}${"]".repeat(5000)}`;
    const r = await h.call("POST", "/api/v1/users", { raw: `{"email": ${deep}, "full_name": "x"}` });
    expect(r.status).toBe(400);
    expectProblemShape(r);
  });

  test("unknown body field → 400 naming it", async () => {
    const r = await h.call("POST", "/api/v1/users", {
      body: { email: "x@y.zz", full_name: "X", admin: true },
    });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe("VALIDATION_ERROR");
    expect(r.body.errors.map((e: { field: string }) => e.field)).toContain("admin");
  });

  test("database errors never leak driver text", async () => {
    // A broken pool: the database does not exist. The client sees a 503 problem, nothing else.
    const { loadConfig } = await import("../../src/config.ts");
    const { createSql } = await import("../../src/db/client.ts");
    const { buildApp } = await import("../../src/app.ts");
    const pino = (await import("pino")).default;
    const { createAuthenticator } = await import("../../src/http/auth.ts");
    const { createMetrics } = await import("../../src/observability/metrics.ts");
    const config = loadConfig(
      { DATABASE_URL: "postgres://postgres@127.0.0.1:1/nowhere", JWT_SECRET: "s".repeat(40) },
      "serve",
    );
    const sql = createSql(config, { applicationName: "t", max: 1 });
    const { auth } = await createAuthenticator(config);
    const app = buildApp({
      config,
      sql,
      logger: pino({ level: "silent" }),
      lifecycle: { draining: false, startedAt: 0 },
      auth,
      metrics: createMetrics(),
    });
    const res = await app.handle(
      new Request("http://localhost/api/v1/users", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email: "a@b.co", full_name: "A" }),
      }),
    );
    const text = await res.text();
    expect(res.status).toBe(503);
    expect(JSON.parse(text).code).toBe("SERVICE_UNAVAILABLE");
    expect(text).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|postgres|nowhere/i);
    await sql.end({ timeout: 1 });
  });
});

describe("currencies", () => {
  test("GET /currencies lists the registry", async () => {
    const r = await h.call("GET", "/api/v1/currencies");
    expect(r.status).toBe(200);
    expect(r.body.data).toContainEqual({ code: "JPY", kind: "fiat", exponent: 0 });
    expect(r.body.data).toContainEqual({ code: "ETH", kind: "crypto", exponent: 9 });
    expect(r.body.data.length).toBeGreaterThanOrEqual(9);
  });
});

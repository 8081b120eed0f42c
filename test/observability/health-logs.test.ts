// Probes (SPEC §5.1), /metrics protection, the access log (SPEC §5.3) and traceparent.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SYSTEM_ACTOR } from "../../src/context.ts";
import { EXPECTED_SCHEMA_VERSION } from "../../src/db/registry.ts";
import { parseTraceparent } from "../../src/observability/tracing.ts";
import { appendEvents } from "../../src/outbox/events.ts";
import { createHarness, type Harness, migratedDatabase, seedWallet } from "./harness.ts";

let h: Harness;
let walletId: string;

beforeAll(async () => {
  h = await createHarness();
  ({ walletId } = await seedWallet(h.deps.sql));
});
afterAll(async () => {
  await h?.close();
});

const accessLines = () => h.lines.filter((l) => l.msg === "request completed");

describe("probes", () => {
  test("/live is {status: pass} as health+json, ignoring query and body", async () => {
    const res = await h.app.handle(new Request("http://localhost/live?verbose=1&token=x"));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/health+json");
    expect(await res.json()).toEqual({ status: "pass" });
    expect(res.headers.get("x-request-id")).toBeTruthy();
  });

  test("/health carries version and uptime", async () => {
    const body = (await (await h.app.handle(new Request("http://localhost/health"))).json()) as Record<
      string,
      unknown
    >;
    expect(body.status).toBe("pass");
    expect(typeof body.version).toBe("string");
    expect(typeof body.uptime_seconds).toBe("number");
  });

  test("/ready passes on a migrated database, fails while draining", async () => {
    const ok = await h.app.handle(new Request("http://localhost/ready"));
    const body = (await ok.json()) as { status: string; checks: Record<string, { status: string }[]> };
    expect(ok.status).toBe(200);
    expect(body.status).toBe("pass");
    expect(body.checks["postgres:schemaVersion"]?.[0]?.status).toBe("pass");
    h.deps.lifecycle.draining = true;
    try {
      const draining = await h.app.handle(new Request("http://localhost/ready"));
      expect(draining.status).toBe(503);
      expect(((await draining.json()) as { status: string }).status).toBe("fail");
      // liveness is unaffected
      expect((await h.app.handle(new Request("http://localhost/live"))).status).toBe(200);
    } finally {
      h.deps.lifecycle.draining = false;
    }
  });

  test("/health/detailed reports pool, schema, outbox and breakers", async () => {
    const res = await h.app.handle(new Request("http://localhost/health/detailed"));
    const body = (await res.json()) as { status: string; checks: Record<string, unknown[]> };
    expect(res.status).toBe(200);
    for (const key of [
      "postgres:responseTime",
      "postgres:schemaVersion",
      "postgres:connections",
      "outbox:pending",
      "outbox:failed",
      "breaker:nats",
      "breaker:webhook",
      "uptime",
    ]) {
      expect(body.checks[key]).toBeDefined();
    }
  });

  test("/health/detailed warns (never fails) while events are parked as FAILED", async () => {
    const { userId } = await seedWallet(h.deps.sql);
    await appendEvents(h.deps.sql, [
      {
        type: "user.created",
        aggregateType: "user",
        aggregateId: userId,
        actor: SYSTEM_ACTOR,
        traceId: "t",
        data: {},
      },
    ]);
    await h.deps.sql`UPDATE outbox SET status = 'FAILED' WHERE aggregate_id = ${userId}`;
    await Bun.sleep(1_100); // past the probe cache
    try {
      const res = await h.app.handle(new Request("http://localhost/health/detailed"));
      const body = (await res.json()) as {
        status: string;
        checks: Record<string, { status: string; observedValue: number }[]>;
      };
      expect(res.status).toBe(200);
      expect(body.status).toBe("warn");
      expect(body.checks["outbox:failed"]?.[0]).toMatchObject({ status: "warn", observedValue: 1 });
    } finally {
      await h.deps
        .sql`UPDATE outbox SET status = 'PUBLISHED', published_at = now() WHERE aggregate_id = ${userId}`;
    }
  });

  test("/ready fails while the schema is behind the binary", async () => {
    const behind = await migratedDatabase(1);
    const h2 = await createHarness({}, behind);
    try {
      const res = await h2.app.handle(new Request("http://localhost/ready"));
      expect(res.status).toBe(503);
      const body = (await res.json()) as {
        checks: Record<string, { status: string; observedValue: unknown }[]>;
      };
      expect(body.checks["postgres:schemaVersion"]?.[0]?.status).toBe("fail");
      expect(body.checks["postgres:schemaVersion"]?.[0]?.observedValue).toBe(1);
      expect(EXPECTED_SCHEMA_VERSION).toBeGreaterThan(1);
    } finally {
      await h2.close();
      await behind.drop();
    }
  });

  test("with the database unreachable: /live 200, /ready 503 without error text", async () => {
    const h3 = await createHarness({ DATABASE_URL: "postgres://postgres:hunter2@127.0.0.1:1/nowhere" }, h.db);
    try {
      expect((await h3.app.handle(new Request("http://localhost/live"))).status).toBe(200);
      const res = await h3.app.handle(new Request("http://localhost/ready"));
      expect(res.status).toBe(503);
      const text = await res.text();
      expect(text).not.toContain("ECONNREFUSED");
      expect(text).not.toContain("hunter2");
      expect(text).not.toContain("127.0.0.1");
      const metrics = await h3.metricsText();
      expect(metrics).toContain("paybridge_db_up 0");
    } finally {
      await h3.close().catch(() => undefined);
    }
  });
});

describe("/metrics protection", () => {
  test("METRICS_TOKEN: missing or wrong token is 401, the right one 200", async () => {
    const h4 = await createHarness({ METRICS_TOKEN: "scrape-me-please" }, h.db);
    try {
      const none = await h4.app.handle(new Request("http://localhost/metrics"));
      expect(none.status).toBe(401);
      expect(none.headers.get("www-authenticate")).toContain("Bearer");
      const wrong = await h4.app.handle(
        new Request("http://localhost/metrics", { headers: { authorization: "Bearer nope" } }),
      );
      expect(wrong.status).toBe(401);
      const ok = await h4.app.handle(
        new Request("http://localhost/metrics", { headers: { authorization: "Bearer scrape-me-please" } }),
      );
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain("paybridge_build_info");
    } finally {
      await h4.close();
    }
  });

  test("MANAGEMENT_PORT: probes and /metrics are absent from the API app", async () => {
    const h5 = await createHarness({ MANAGEMENT_PORT: "9" }, h.db);
    try {
      expect((await h5.app.handle(new Request("http://localhost/metrics"))).status).toBe(404);
      expect((await h5.app.handle(new Request("http://localhost/live"))).status).toBe(404);
    } finally {
      await h5.close();
    }
  });
});

describe("access log", () => {
  test("one line per request, after the response, with the response's ids", async () => {
    const before = accessLines().length;
    const res = await h.request(`/api/v1/wallets/${walletId}?token=supersecret`, {
      headers: {
        authorization: `Bearer ${h.adminToken}`,
        "x-request-id": "obs-test-1",
        cookie: "sid=cookiesecret",
      },
    });
    expect(res.status).toBe(200);
    const lines = accessLines().slice(before);
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    expect(line).toMatchObject({
      level: "info",
      method: "GET",
      path: "/api/v1/wallets/:id",
      status: 200,
      request_id: "obs-test-1",
      correlation_id: "obs-test-1",
      user_id: "obs-admin",
    });
    expect(line.request_id).toBe(res.headers.get("x-request-id")!);
    expect(typeof line.duration_ms).toBe("number");
    expect(line.response_size).toBeGreaterThan(0);
    const tp = parseTraceparent(res.headers.get("traceparent"));
    expect(tp?.traceId).toBe(line.trace_id as string);
    expect(tp?.parentSpanId).toBe(line.span_id as string);
    const all = h.raw.join("\n");
    expect(all).not.toContain(h.adminToken);
    expect(all).not.toContain("supersecret");
    expect(all).not.toContain("cookiesecret");
  });

  test("error responses log their real body size (validation, malformed JSON, 404)", async () => {
    for (const [path, init] of [
      [
        "/api/v1/users",
        { method: "POST", headers: { "content-type": "application/json" }, body: '{"email":' },
      ],
      ["/api/v1/users", { method: "POST", headers: { "content-type": "application/json" }, body: '{"x":1}' }],
      ["/nope", {}],
    ] as const) {
      const before = accessLines().length;
      const res = await h.app.handle(new Request(`http://localhost${path}`, init));
      const bytes = (await res.arrayBuffer()).byteLength;
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(bytes).toBeGreaterThan(0);
      await new Promise(setImmediate);
      await Bun.sleep(10);
      const line = accessLines().slice(before)[0]!;
      expect(line.response_size).toBe(bytes);
    }
  });

  test("success bodies: the logged size is the bytes sent, the body and type are Elysia's JSON", async () => {
    // Non-ASCII in the body, so characters and bytes differ.
    const call = async (path: string, init: RequestInit = {}) => {
      const res = await h.app.handle(
        new Request(`http://localhost${path}`, {
          ...init,
          headers: { "content-type": "application/json", authorization: `Bearer ${h.adminToken}` },
        }),
      );
      const bytes = new Uint8Array(await res.arrayBuffer());
      await new Promise(setImmediate);
      return { res, bytes, text: new TextDecoder().decode(bytes) };
    };
    const created = await call("/api/v1/users", {
      method: "POST",
      body: JSON.stringify({ email: "zoe-size@example.com", full_name: "Zoë Ångström ☃" }),
    });
    expect(created.res.status).toBe(201);
    const id = (JSON.parse(created.text) as { id: string }).id;
    for (const path of [`/api/v1/users/${id}`, "/api/v1/users?limit=5", "/api/v1/currencies"]) {
      const before = accessLines().length;
      const { res, bytes, text } = await call(path);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("application/json;charset=utf-8");
      expect(JSON.stringify(JSON.parse(text))).toBe(text);
      const line = accessLines().slice(before)[0]!;
      expect(line.response_size).toBe(bytes.byteLength);
      if (path.includes(id)) expect(bytes.byteLength).toBeGreaterThan(text.length);
    }
  });

  test("garbage ids are replaced, never logged raw", async () => {
    const before = accessLines().length;
    const evil = `bad id with spaces ${"x".repeat(200)}`;
    const res = await h.request("/api/v1/currencies", {
      headers: { "x-request-id": evil, "x-correlation-id": "<script>", traceparent: "garbage-traceparent" },
    });
    const line = accessLines().slice(before)[0]!;
    expect(res.headers.get("x-request-id")).not.toBe(evil);
    expect(line.request_id).toBe(res.headers.get("x-request-id")!);
    expect(h.raw.join("\n")).not.toContain("bad id with spaces");
    expect(h.raw.join("\n")).not.toContain("garbage-traceparent");
    expect(parseTraceparent(res.headers.get("traceparent"))).not.toBeNull();
  });

  test("an incoming traceparent is continued", async () => {
    const res = await h.request("/api/v1/currencies", {
      headers: { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" },
    });
    const tp = parseTraceparent(res.headers.get("traceparent"));
    expect(tp?.traceId).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
    expect(tp?.parentSpanId).not.toBe("00f067aa0ba902b7");
  });

  test("probes and /metrics are not logged", async () => {
    const before = accessLines().length;
    for (const p of ["/live", "/health", "/ready", "/health/detailed", "/metrics"]) await h.request(p);
    expect(accessLines().length).toBe(before);
  });

  test("unmatched routes are logged under the constant, without the raw URL", async () => {
    const before = accessLines().length;
    await h.request("/wp-admin/secret-path?password=x");
    const line = accessLines().slice(before)[0]!;
    expect(line.status).toBe(404);
    expect(line.path).toBe("<unmatched>");
    expect(h.raw.slice(-3).join("\n")).not.toContain("secret-path");
  });

  test("one request can be followed from its access line to its outbox event by trace id", async () => {
    const before = accessLines().length;
    const res = await h.request(`/api/v1/wallets/${walletId}/credit`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${h.adminToken}`,
        "content-type": "application/json",
        "idempotency-key": crypto.randomUUID(),
        "x-request-id": "follow-me-1",
      },
      body: JSON.stringify({ amount: "1.00", description: "follow" }),
    });
    expect(res.status).toBe(201);
    const line = accessLines().slice(before)[0]!;
    expect(line.request_id).toBe("follow-me-1");
    expect(line.status).toBe(201);
    const events = await h.deps.sql<
      { type: string }[]
    >`SELECT type FROM outbox WHERE trace_id = ${line.trace_id as string}`;
    expect(events.map((e) => e.type)).toContain("wallet.credited");
  });
});

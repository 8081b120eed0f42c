// Signed webhooks against a local receiver (Bun.serve on port 0), and the circuit breaker.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Sql } from "../../src/db/client.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import { CircuitBreaker } from "../../src/outbox/breaker.ts";
import type { Envelope } from "../../src/outbox/envelope.ts";
import { startRelay } from "../../src/outbox/relay.ts";
import { signPayload, verifySignature } from "../../src/outbox/webhook.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";
import {
  connectSql,
  insertUsers,
  outboxCounts,
  perAggregateProblems,
  silentLogger,
  testConfig,
  waitFor,
  writeRounds,
} from "./helpers.ts";

const SECRET = "whsec_test_0123456789abcdef";

describe("verifySignature", () => {
  const body = '{"id":"e1","type":"wallet.credited"}';
  const now = 1_700_000_000;
  const good = signPayload(SECRET, now, body);
  test.each<[string, string | null, string, number, boolean]>([
    ["a fresh, correct signature", good, body, now + 10, true],
    ["a changed body", good, `${body} `, now, false],
    ["another secret", signPayload("other-secret", now, body), body, now, false],
    ["a timestamp outside the tolerance", good, body, now + 301, false],
    ["a timestamp from the future beyond tolerance", good, body, now - 301, false],
    ["no header", null, body, now, false],
    ["garbage", "nonsense", body, now, false],
    ["no v1", `t=${now}`, body, now, false],
    ["a truncated mac", good.slice(0, -2), body, now, false],
    [
      "a second v1 that matches (rotation)",
      `t=${now},v1=${"0".repeat(64)},${good.split(",")[1]}`,
      body,
      now,
      true,
    ],
  ])("%s", (_name, header, b, at, ok) => {
    expect(verifySignature(SECRET, header, b, 300, at)).toBe(ok);
  });
});

describe("CircuitBreaker", () => {
  test("closed -> open after N failures -> half-open probe after the cooldown -> closed or open", async () => {
    let now = 0;
    const changes: string[] = [];
    const b = new CircuitBreaker("t", {
      failureThreshold: 2,
      cooldownMs: 100,
      now: () => now,
      onStateChange: (s) => changes.push(s),
    });
    const fail = () => b.exec(() => Promise.reject(new Error("down")));
    const ok = () => b.exec(() => Promise.resolve("ok"));
    await expect(fail()).rejects.toThrow("down");
    expect(b.state()).toBe("closed");
    await expect(fail()).rejects.toThrow("down");
    expect(b.state()).toBe("open");
    await expect(ok()).rejects.toThrow("circuit breaker for t is open");
    now = 100;
    expect(b.state()).toBe("half_open");
    await expect(fail()).rejects.toThrow("down"); // failed probe: open again
    expect(b.state()).toBe("open");
    now = 200;
    expect(await ok()).toBe("ok");
    expect(b.state()).toBe("closed");
    expect(changes).toEqual(["open", "half_open", "open", "half_open", "closed"]);
  });

  test("only one probe at a time while half-open", async () => {
    let now = 0;
    const b = new CircuitBreaker("t", { failureThreshold: 1, cooldownMs: 10, now: () => now });
    await expect(b.exec(() => Promise.reject(new Error("x")))).rejects.toThrow("x");
    now = 10;
    let release = () => {};
    const probe = b.exec(() => new Promise<void>((r) => (release = r)));
    await expect(b.exec(() => Promise.resolve())).rejects.toThrow("open");
    release();
    await probe;
    expect(b.state()).toBe("closed");
  });
});

type Receiver = {
  url: string;
  got: Envelope[];
  badSignatures: number;
  requests: number;
  mode: "ok" | "error" | "hang";
  stop(): void;
};

function startReceiver(): Receiver {
  const r: Receiver = { url: "", got: [], badSignatures: 0, requests: 0, mode: "ok", stop: () => {} };
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const raw = await req.text();
      r.requests++;
      if (r.mode === "error") return new Response("boom", { status: 503 });
      if (r.mode === "hang") await Bun.sleep(2_000);
      if (!verifySignature(SECRET, req.headers.get("PayBridge-Signature"), raw)) {
        r.badSignatures++;
        return new Response("bad signature", { status: 401 });
      }
      r.got.push(JSON.parse(raw) as Envelope);
      return new Response(null, { status: 204 });
    },
  });
  r.url = `http://127.0.0.1:${server.port}/hooks/paybridge`;
  r.stop = () => server.stop(true);
  return r;
}

let db: TestDatabase;
let sql: Sql;
beforeAll(async () => {
  db = await createTestDatabase("pbhook");
  sql = connectSql(db.url, 6);
});
afterAll(async () => {
  await sql?.end({ timeout: 1 });
  await db?.drop();
});

describe("webhook target", () => {
  test("every event arrives signed, verifiable, and in order per aggregate", async () => {
    await sql`DELETE FROM outbox`;
    const rcv = startReceiver();
    const users = await insertUsers(sql, 10);
    await writeRounds(sql, users, 5);
    const relay = startRelay({
      config: testConfig(db.url, { WEBHOOK_URL: rcv.url, WEBHOOK_SECRET: SECRET }),
      sql,
      logger: silentLogger,
      metrics: createMetrics(),
    });
    try {
      await waitFor("all published", async () => (await outboxCounts(sql)).PUBLISHED === 50);
    } finally {
      await relay.stop();
      rcv.stop();
    }
    expect(rcv.badSignatures).toBe(0);
    expect(rcv.got.length).toBe(50);
    expect(perAggregateProblems(rcv.got)).toEqual([]);
  }, 30_000);

  test("a failing receiver opens the breaker; nothing is parked or lost; it drains when the receiver recovers", async () => {
    await sql`DELETE FROM outbox`;
    const rcv = startReceiver();
    rcv.mode = "error";
    const users = await insertUsers(sql, 20);
    await writeRounds(sql, users, 3);
    const metrics = createMetrics();
    const relay = startRelay({
      config: testConfig(db.url, { WEBHOOK_URL: rcv.url, WEBHOOK_SECRET: SECRET, OUTBOX_MAX_ATTEMPTS: "3" }),
      sql,
      logger: silentLogger,
      metrics,
      tuning: {
        breakerFailureThreshold: 3,
        breakerCooldownMs: 150,
        backoffBaseMs: 10,
        backoffMaxMs: 20,
        pollIntervalMs: 20,
      },
    });
    const gauge = async () =>
      (await metrics.registry.getSingleMetric("paybridge_breaker_state")?.get())?.values.find(
        (v) => v.labels.target === "webhook",
      )?.value;
    try {
      await waitFor(
        "breaker open",
        async () => relay.state().breakers.webhook === "open" && (await gauge()) === 2,
      );
      // Failed probes while the receiver stays down must not use up attempts: after more
      // probes than OUTBOX_MAX_ATTEMPTS nothing is parked. (The first concurrent wave of at
      // most 16 deliveries used one attempt each before the breaker opened.)
      const afterOpen = rcv.requests;
      await waitFor("five probes", () => rcv.requests >= afterOpen + 5);
      expect((await outboxCounts(sql)).FAILED).toBe(0);
      expect((await outboxCounts(sql)).PUBLISHED).toBe(0);
      rcv.mode = "ok";
      await waitFor("drained", async () => (await outboxCounts(sql)).PUBLISHED === 60);
      expect(relay.state().breakers.webhook).toBe("closed");
      expect(await gauge()).toBe(0);
    } finally {
      await relay.stop();
      rcv.stop();
    }
    expect(rcv.got.length).toBe(60);
    expect(perAggregateProblems(rcv.got)).toEqual([]);
  }, 30_000);

  test("a receiver slower than WEBHOOK_TIMEOUT_MS is a failed attempt with a clear error", async () => {
    await sql`DELETE FROM outbox`;
    const rcv = startReceiver();
    rcv.mode = "hang";
    const users = await insertUsers(sql, 1);
    await writeRounds(sql, users, 1);
    const relay = startRelay({
      config: testConfig(db.url, { WEBHOOK_URL: rcv.url, WEBHOOK_SECRET: SECRET, WEBHOOK_TIMEOUT_MS: "100" }),
      sql,
      logger: silentLogger,
      metrics: createMetrics(),
      tuning: { backoffBaseMs: 60_000 },
    });
    try {
      await waitFor("attempt recorded", async () => {
        const [r] = await sql<{ attempts: number }[]>`SELECT attempts FROM outbox`;
        return (r?.attempts ?? 0) === 1;
      });
    } finally {
      await relay.stop();
      rcv.stop();
    }
    const [row] = await sql`SELECT status, last_error, next_attempt_at > now() AS later FROM outbox`;
    expect(row).toMatchObject({ status: "PENDING", later: true });
    expect(String(row?.last_error)).toContain("webhook: webhook timed out after 100 ms");
  }, 30_000);
});

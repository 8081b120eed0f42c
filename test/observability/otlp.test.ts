// OTLP/HTTP export of request and database spans, against a tiny receiver started here.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createLogger } from "../../src/observability/logger.ts";
import { createSpanExporter, tracesUrl, unixNano } from "../../src/observability/otlp.ts";
import type { TestDatabase } from "../helpers/db.ts";
import { createHarness, type Harness, migratedDatabase, seedWallet } from "./harness.ts";

type OtlpSpan = {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: { key: string; value: Record<string, unknown> }[];
};

let received: {
  url: string;
  body: { resourceSpans: { resource: unknown; scopeSpans: { spans: OtlpSpan[] }[] }[] };
}[] = [];
let receiver: ReturnType<typeof Bun.serve>;
let db: TestDatabase;

beforeAll(async () => {
  receiver = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      received.push({
        url: new URL(req.url).pathname,
        body: (await req.json()) as (typeof received)[number]["body"],
      });
      return new Response("{}", { headers: { "content-type": "application/json" } });
    },
  });
  db = await migratedDatabase();
});
afterAll(async () => {
  await receiver?.stop(true);
  await db?.drop();
});

const spans = () =>
  received.flatMap((r) => r.body.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((s) => s.spans)));

describe("OTLP export", () => {
  test("a request exports its server span (continuing the caller's trace) and its DB spans", async () => {
    received = [];
    const h: Harness = await createHarness(
      { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}` },
      db,
    );
    try {
      const { walletId } = await seedWallet(h.deps.sql);
      const res = await h.request(`/api/v1/wallets/${walletId}`, {
        headers: {
          authorization: `Bearer ${h.adminToken}`,
          traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        },
      });
      expect(res.status).toBe(200);
    } finally {
      await h.close(); // flushes the exporter
    }
    expect(received.length).toBeGreaterThan(0);
    expect(received[0]?.url).toBe("/v1/traces");
    const all = spans();
    const server = all.find((s) => s.name === "GET /api/v1/wallets/:id");
    expect(server).toBeDefined();
    expect(server?.traceId).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
    expect(server?.parentSpanId).toBe("00f067aa0ba902b7");
    expect(server?.kind).toBe(2);
    expect(BigInt(server!.endTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(server!.startTimeUnixNano));
    const dbSpans = all.filter(
      (s) => s.traceId === server?.traceId && s.parentSpanId === server?.spanId && s.kind === 3,
    );
    expect(dbSpans.map((s) => s.name)).toContain("select wallets");
  });

  test("a collector that is down never fails the caller; spans are dropped and counted", async () => {
    const closed = Bun.serve({ port: 0, fetch: () => new Response() });
    const port = closed.port;
    await closed.stop(true);
    const exporter = createSpanExporter({
      endpoint: `http://127.0.0.1:${port}`,
      resource: { "service.name": "paybridge" },
      logger: createLogger({ logLevel: "error", logFormat: "json" }),
    });
    exporter.record({
      traceId: "a".repeat(32),
      spanId: "b".repeat(16),
      name: "x",
      kind: "internal",
      startMs: Date.now(),
      endMs: Date.now(),
    });
    await exporter.shutdown();
    expect(exporter.dropped).toBe(1);
  });

  test("endpoint and time encoding", () => {
    expect(tracesUrl("http://c:4318")).toBe("http://c:4318/v1/traces");
    expect(tracesUrl("http://c:4318/")).toBe("http://c:4318/v1/traces");
    expect(tracesUrl("http://c:4318/v1/traces")).toBe("http://c:4318/v1/traces");
    expect(unixNano(1_700_000_000_123.456)).toBe("1700000000123456000");
  });
});

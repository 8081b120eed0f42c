// Unit tests: traceparent parsing, label normalisation, statement classification, error
// classes, redaction, the stdout log destination, the metric registry's names and initial
// label sets, and the per-request series handles against prom-client's own rendering.
import { describe, expect, test } from "bun:test";
import diagnosticsChannel from "node:diagnostics_channel";
import { Writable } from "node:stream";
import { Counter, Histogram, Registry } from "prom-client";
import { requestContext } from "../../src/context.ts";
import { CURRENCY_CODES } from "../../src/ledger/money.ts";
import { classifyStatement, dbErrorType } from "../../src/observability/db-metrics.ts";
import { createLogger, REDACTED, serializeError } from "../../src/observability/logger.ts";
import { createMetrics, UNMATCHED_PATH } from "../../src/observability/metrics.ts";
import { pathLabel, responseSize, statusOf } from "../../src/observability/plugin.ts";
import { counterSeries, histogramSeries } from "../../src/observability/series.ts";
import {
  formatTraceparent,
  newSpanId,
  newTraceId,
  parseTraceparent,
  traceForRequest,
} from "../../src/observability/tracing.ts";

const VALID = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

describe("traceparent", () => {
  test("a valid header is parsed", () => {
    expect(parseTraceparent(VALID)).toEqual({
      traceId: "0af7651916cd43dd8448eb211c80319c",
      parentSpanId: "b7ad6b7169203331",
      sampled: true,
    });
    expect(parseTraceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")?.sampled).toBe(false);
  });

  test.each([
    ["empty", ""],
    ["null", null],
    ["upper case", VALID.toUpperCase()],
    ["all-zero trace id", `00-${"0".repeat(32)}-b7ad6b7169203331-01`],
    ["all-zero span id", `00-0af7651916cd43dd8448eb211c80319c-${"0".repeat(16)}-01`],
    ["version ff", `ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01`],
    ["short trace id", "00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01"],
    ["extra field on version 00", `${VALID}-extra`],
    ["garbage", "hello; DROP TABLE wallets"],
    ["overlong", `${VALID}${"-a".repeat(400)}`],
  ])("rejects %s", (_name, header) => {
    expect(parseTraceparent(header as string | null)).toBeNull();
  });

  test("a future version may carry extra fields", () => {
    expect(parseTraceparent(`01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-future`)?.traceId).toBe(
      "0af7651916cd43dd8448eb211c80319c",
    );
  });

  test("new ids are lower-case hex of the right length, and round-trip", () => {
    const t = newTraceId();
    const s = newSpanId();
    expect(t).toMatch(/^[0-9a-f]{32}$/);
    expect(s).toMatch(/^[0-9a-f]{16}$/);
    expect(parseTraceparent(formatTraceparent(t, s))).toEqual({ traceId: t, parentSpanId: s, sampled: true });
  });

  test("a request continues a valid trace with its own span, else starts a new one", () => {
    const cont = traceForRequest(VALID);
    expect(cont.traceId).toBe("0af7651916cd43dd8448eb211c80319c");
    expect(cont.parentSpanId).toBe("b7ad6b7169203331");
    expect(cont.spanId).not.toBe("b7ad6b7169203331");
    const fresh = traceForRequest("garbage");
    expect(fresh.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(fresh.parentSpanId).toBeUndefined();
  });
});

describe("label normalisation", () => {
  test("path is the route template or the unmatched constant", () => {
    expect(pathLabel("/api/v1/wallets/:id")).toBe("/api/v1/wallets/:id");
    expect(pathLabel(undefined)).toBe(UNMATCHED_PATH);
    expect(pathLabel("")).toBe(UNMATCHED_PATH);
  });

  test("status is numeric", () => {
    expect(statusOf(201)).toBe(201);
    expect(statusOf("404")).toBe(404);
    expect(statusOf(undefined)).toBe(200);
  });

  test.each([
    ["select * from wallets where id = $", "select", "wallets"],
    ["SELECT w.id FROM wallets w JOIN users u ON u.id = w.user_id", "select", "wallets"],
    ["insert into ledger_entries (a) values ($)", "insert", "ledger_entries"],
    ["UPDATE wallets SET available_balance = $", "update", "wallets"],
    ["delete from idempotency_keys where created_at < $", "delete", "idempotency_keys"],
    ["with x as (select 1) insert into outbox select * from x", "insert", "outbox"],
    ["with x as (select * from users) select * from x", "select", "users"],
    ["select 1", "select", "none"],
    ["select * from secret_table_of_someone", "select", "other"],
    ["select * from public.wallets", "select", "wallets"],
    ["-- comment\n select * from users", "select", "users"],
    ["lock table wallets", "other", "none"],
  ])("%s → %s/%s", (text, operation, table) => {
    expect(classifyStatement(text)).toEqual({ operation: operation as never, table });
  });

  test.each([
    [{ code: "ECONNREFUSED" }, "connection"],
    [{ code: "08006" }, "connection"],
    [{ code: "57P01" }, "connection"],
    [{ code: "57014" }, "timeout"],
    [{ code: "40001" }, "serialization"],
    [{ code: "40P01" }, "deadlock"],
    [{ code: "23505" }, "unique_violation"],
    [{ code: "23514" }, "constraint"],
    [{ code: "42P01" }, "syntax"],
    [new Error("x"), "other"],
    [null, "other"],
  ])("db error #%# → %s", (err, type) => {
    expect(dbErrorType(err)).toBe(type);
  });

  test("response sizes", () => {
    expect(responseSize("héllo")).toBe(6);
    expect(responseSize({ a: 1 })).toBe(7);
    expect(responseSize(undefined)).toBe(0);
    expect(responseSize(new Uint8Array(5))).toBe(5);
    expect(responseSize("x", { "content-length": "42" })).toBe(42);
  });
});

function capture() {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split("\n")) {
        if (l.trim() === "") continue;
        raw.push(l);
        lines.push(JSON.parse(l));
      }
      cb();
    },
  });
  return { lines, raw, destination };
}

describe("logger", () => {
  test("lines carry time (ISO), level label, msg and the request ids from async context", () => {
    const { lines, destination } = capture();
    const log = createLogger({ logLevel: "info", logFormat: "json" }, { destination });
    log.info("outside");
    requestContext.run(
      {
        requestId: "r-1",
        correlationId: "c-1",
        traceId: "t".repeat(32),
        spanId: "s".repeat(16),
        userId: "u-1",
      },
      () => {
        log.info({ a: 1 }, "inside");
      },
    );
    expect(lines[0]?.msg).toBe("outside");
    expect(lines[0]?.request_id).toBeUndefined();
    expect(lines[0]?.level).toBe("info");
    expect(String(lines[0]?.time)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(lines[1]).toMatchObject({
      msg: "inside",
      request_id: "r-1",
      correlation_id: "c-1",
      trace_id: "t".repeat(32),
      span_id: "s".repeat(16),
      user_id: "u-1",
      a: 1,
    });
  });

  test("secrets are redacted wherever they appear", () => {
    const { raw, lines, destination } = capture();
    const log = createLogger({ logLevel: "info", logFormat: "json" }, { destination });
    log.info(
      {
        authorization: "Bearer SECRET-1",
        headers: { authorization: "Bearer SECRET-2", cookie: "sid=SECRET-3" },
        password: "SECRET-4",
        req: { headers: { authorization: "Bearer SECRET-5" } },
        config: { databaseUrl: "postgres://u:SECRET-6@h/db", jwtSecret: "SECRET-7" },
        token: "SECRET-8",
      },
      "with secrets",
    );
    expect(raw.join("\n")).not.toContain("SECRET");
    expect(lines[0]?.authorization).toBe(REDACTED);
  });

  test("a line without a message still has msg", () => {
    const { lines, destination } = capture();
    const log = createLogger({ logLevel: "info", logFormat: "json" }, { destination });
    log.info({ a: 1 });
    expect(typeof lines[0]?.msg).toBe("string");
  });

  test("errors keep their cause chain", () => {
    const inner = Object.assign(new Error("connection refused"), { code: "ECONNREFUSED" });
    const outer = new Error("could not load wallet", { cause: inner });
    const s = serializeError(outer) as { message: string; cause: { message: string; code: string } };
    expect(s.message).toBe("could not load wallet");
    expect(s.cause.message).toBe("connection refused");
    expect(s.cause.code).toBe("ECONNREFUSED");
  });

  test("levels below LOG_LEVEL are dropped", () => {
    const { lines, destination } = capture();
    const log = createLogger({ logLevel: "warn", logFormat: "json" }, { destination });
    log.info("no");
    log.warn("yes");
    expect(lines.map((l) => l.msg)).toEqual(["yes"]);
  });

  test("pino's serialisation tracing channel is skipped while nobody subscribes", () => {
    createLogger({ logLevel: "info", logFormat: "json" }, { destination: capture().destination });
    const channel = diagnosticsChannel.tracingChannel("pino_asJson");
    expect(channel.hasSubscribers).toBe(false);
    const subscriber = { start() {} };
    channel.subscribe(subscriber);
    expect(channel.hasSubscribers).toBe(true);
    channel.unsubscribe(subscriber);
  });

  test("stdout is written in batches, and every line is out when the process exits", async () => {
    // A reader that waits before reading: the pipe fills up while the child is still logging.
    const logger = new URL("../../src/observability/logger.ts", import.meta.url).pathname;
    const child = Bun.spawn(
      [
        process.execPath,
        "-e",
        `const { createLogger } = await import(${JSON.stringify(logger)});
         const log = createLogger({ logLevel: "info", logFormat: "json" });
         for (let i = 0; i < 20000; i++) log.info({ i }, "line");
         process.exit(0);`,
      ],
      { stdout: "pipe", stderr: "inherit" },
    );
    await Bun.sleep(200);
    const out = await new Response(child.stdout).text();
    expect(await child.exited).toBe(0);
    const numbers = out
      .trim()
      .split("\n")
      .map((l) => (JSON.parse(l) as { i: number }).i);
    expect(numbers.length).toBe(20000);
    expect(numbers.every((n, i) => n === i)).toBe(true);
  });
});

describe("metric registry", () => {
  test("known label values start at 0 and build_info is 1", async () => {
    const m = createMetrics({ defaultMetrics: false });
    const text = await m.registry.metrics();
    for (const c of CURRENCY_CODES)
      expect(text).toContain(`paybridge_business_wallets_total{status="ACTIVE",currency="${c}"} 0`);
    expect(text).toContain('paybridge_business_users_total{kyc_status="VERIFIED"} 0');
    expect(text).toContain('paybridge_breaker_state{target="nats"} 0');
    expect(text).toContain('paybridge_rate_limited_total{scope="money"} 0');
    expect(text).toMatch(/paybridge_build_info\{version="[^"]+",revision="[^"]+",bun_version="[^"]+"\} 1/);
  });

  test("process metrics stay, always-zero Bun defaults are gone", async () => {
    const text = await createMetrics().registry.metrics();
    expect(text).toContain("process_cpu_seconds_total");
    expect(text).toContain("process_resident_memory_bytes");
    expect(text).toContain("nodejs_eventloop_lag_seconds");
    expect(text).not.toContain("nodejs_heap_space_size");
    expect(text).not.toContain("nodejs_active_handles");
    expect(text).not.toContain("nodejs_gc_duration");
  });
});

describe("per-request series handles (series.ts)", () => {
  // A handle writes into prom-client's own storage; the exposition must be exactly what
  // prom-client renders when it is fed the same updates through its public API.
  const histogramConfig = {
    name: "t_seconds",
    help: "h",
    labelNames: ["method", "path"] as const,
    buckets: [0.001, 0.01, 0.1, 1],
  };
  const counterConfig = { name: "t_total", help: "c", labelNames: ["method", "path", "status"] as const };

  function pair() {
    const plain = new Registry();
    const fast = new Registry();
    return {
      plain,
      fast,
      h: [
        new Histogram({ ...histogramConfig, registers: [plain] }),
        new Histogram({ ...histogramConfig, registers: [fast] }),
      ] as const,
      c: [
        new Counter({ ...counterConfig, registers: [plain] }),
        new Counter({ ...counterConfig, registers: [fast] }),
      ] as const,
    };
  }

  test("histogram and counter handles render byte-identical exposition", async () => {
    const { plain, fast, h, c } = pair();
    // Values on bucket bounds, between them, above the last bound (+Inf), zero and negative.
    const values = [0, 0.001, 0.0011, 0.01, 0.05, 0.1, 0.99, 1, 1.5, 120, -3, 0.000_01];
    const labelSets = [
      { method: "GET", path: "/a" },
      { method: "POST", path: "/a" },
      { method: "GET", path: "/b/:id" },
    ];
    const series = labelSets.map((l) => ({
      h: histogramSeries(h[1], l),
      c: counterSeries(c[1], { ...l, status: "200" }),
    }));
    for (let round = 0; round < 3; round++) {
      labelSets.forEach((l, i) => {
        for (const v of values) {
          h[0].observe(l, v * (i + 1));
          series[i]?.h.observe(v * (i + 1));
          c[0].inc({ ...l, status: "200" });
          series[i]?.c.inc();
        }
      });
    }
    const text = await fast.metrics();
    expect(text).toBe(await plain.metrics());
    expect(text).toContain('t_seconds_bucket{le="+Inf",method="GET",path="/a"} 36');
    expect(text).toContain('t_total{method="POST",path="/a",status="200"} 36');
  });

  test("a handle survives reset() and refuses what prom-client refuses", async () => {
    const { plain, fast, h, c } = pair();
    const labels = { method: "GET", path: "/a" };
    const hs = histogramSeries(h[1], labels);
    const cs = counterSeries(c[1], { ...labels, status: "500" });
    hs.observe(0.5);
    cs.inc();
    h[1].reset();
    c[1].reset();
    hs.observe(0.002);
    cs.inc();
    h[0].observe(labels, 0.002);
    c[0].inc({ ...labels, status: "500" });
    expect(await fast.metrics()).toBe(await plain.metrics());
    expect(() => hs.observe(Number.NaN)).toThrow(TypeError);
    expect(() => histogramSeries(h[1], { method: "GET", bogus: "x" } as never).observe(1)).toThrow();
  });

  test("the app's metrics: route series, query series and the in-flight gauge read at scrape", async () => {
    const m = createMetrics({ defaultMetrics: false });
    const route = m.httpSeries("/api/v1/wallets/:id", "GET");
    expect(m.httpSeries("/api/v1/wallets/:id", "GET")).toBe(route);
    route.requests(404).inc();
    route.requests(404).inc();
    route.duration.observe(0.003);
    route.size.observe(300);
    const cls = { operation: "select", table: "wallets" };
    m.dbQuerySeries(cls).observe(0.0004);
    expect(m.dbQuerySeries(cls)).toBe(m.dbQuerySeries(cls));
    m.inFlight.count = 3;
    const text = await m.registry.metrics();
    expect(text).toContain(
      'paybridge_http_requests_total{method="GET",path="/api/v1/wallets/:id",status="404"} 2',
    );
    expect(text).toContain(
      'paybridge_http_request_duration_seconds_bucket{le="0.005",method="GET",path="/api/v1/wallets/:id"} 1',
    );
    expect(text).toContain(
      'paybridge_http_response_size_bytes_sum{method="GET",path="/api/v1/wallets/:id"} 300',
    );
    expect(text).toContain(
      'paybridge_db_query_duration_seconds_bucket{le="0.0005",operation="select",table="wallets"} 1',
    );
    expect(text).toContain("paybridge_http_requests_in_flight 3");
    m.inFlight.count = 0;
  });
});

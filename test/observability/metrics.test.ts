// Each metric moves when its event happens: requests on the real app, over a real database.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { UNMATCHED_PATH } from "../../src/observability/metrics.ts";
import { createHarness, type Harness, sample, seedWallet } from "./harness.ts";

let h: Harness;
let walletId: string;

beforeAll(async () => {
  h = await createHarness();
  ({ walletId } = await seedWallet(h.deps.sql));
});
afterAll(async () => {
  await h?.close();
});

const auth = () => ({ authorization: `Bearer ${h.adminToken}` });

describe("HTTP metrics", () => {
  test("a request to a known route is counted under its template, with duration and size", async () => {
    const series = 'paybridge_http_requests_total{method="GET",path="/api/v1/wallets/:id",status="200"}';
    const before = sample(await h.metricsText(), series) ?? 0;
    const res = await h.request(`/api/v1/wallets/${walletId}`, { headers: auth() });
    expect(res.status).toBe(200);
    const text = await h.metricsText();
    expect(sample(text, series)).toBe(before + 1);
    expect(
      sample(text, 'paybridge_http_request_duration_seconds_count{method="GET",path="/api/v1/wallets/:id"}'),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sample(text, 'paybridge_http_response_size_bytes_sum{method="GET",path="/api/v1/wallets/:id"}'),
    ).toBeGreaterThan(50);
    // the raw URL (with the uuid) never becomes a label
    expect(text).not.toContain(walletId);
  });

  test("an unmatched request lands in the one unmatched path", async () => {
    const res = await h.request(`/no/such/route/${crypto.randomUUID()}?x=1`);
    expect(res.status).toBe(404);
    const text = await h.metricsText();
    expect(
      sample(text, `paybridge_http_requests_total{method="GET",path="${UNMATCHED_PATH}",status="404"}`),
    ).toBeGreaterThanOrEqual(1);
  });

  test("the final status is recorded (401 without a token, 404 for an unknown wallet)", async () => {
    await h.request(`/api/v1/wallets/${walletId}`);
    await h.request(`/api/v1/wallets/${crypto.randomUUID()}`, { headers: auth() });
    const text = await h.metricsText();
    expect(
      sample(text, 'paybridge_http_requests_total{method="GET",path="/api/v1/wallets/:id",status="401"}'),
    ).toBe(1);
    expect(
      sample(text, 'paybridge_http_requests_total{method="GET",path="/api/v1/wallets/:id",status="404"}'),
    ).toBe(1);
  });

  test("/metrics itself is not measured, and nothing stays in flight", async () => {
    await h.metricsText();
    const text = await h.metricsText();
    expect(text).not.toMatch(/paybridge_http_requests_total\{[^}]*path="\/metrics"/);
    expect(sample(text, "paybridge_http_requests_in_flight")).toBe(0);
  });
});

describe("database metrics", () => {
  test("queries are timed by operation and table", async () => {
    const series = 'paybridge_db_query_duration_seconds_count{operation="select",table="wallets"}';
    const before = sample(await h.metricsText(), series) ?? 0;
    await h.request(`/api/v1/wallets/${walletId}`, { headers: auth() });
    expect(sample(await h.metricsText(), series)).toBeGreaterThan(before);
  });

  test("a database error bumps the error counter with its class", async () => {
    const series = 'paybridge_db_errors_total{operation="insert",error_type="constraint"}';
    const before = sample(await h.metricsText(), series) ?? 0;
    // a wallet for a user that does not exist: foreign key violation
    const failed = await h.deps
      .sql`INSERT INTO wallets (user_id, currency, kind) VALUES (${crypto.randomUUID()}, 'USD', 'fiat')`.then(
      () => false,
      () => true,
    );
    expect(failed).toBe(true);
    expect(sample(await h.metricsText(), series)).toBe(before + 1);
  });

  test("transactions are timed as a whole and their queries individually", async () => {
    const text0 = await h.metricsText();
    const tx0 =
      sample(text0, 'paybridge_db_query_duration_seconds_count{operation="transaction",table="none"}') ?? 0;
    const up0 =
      sample(text0, 'paybridge_db_query_duration_seconds_count{operation="update",table="wallets"}') ?? 0;
    await h.deps.sql.begin(async (tx) => {
      await tx`UPDATE wallets SET updated_at = now() WHERE id = ${walletId}`;
    });
    const text = await h.metricsText();
    expect(
      sample(text, 'paybridge_db_query_duration_seconds_count{operation="transaction",table="none"}'),
    ).toBe(tx0 + 1);
    expect(
      sample(text, 'paybridge_db_query_duration_seconds_count{operation="update",table="wallets"}'),
    ).toBe(up0 + 1);
  });

  test("pool gauges: max is the pool size, in_use counts a held transaction", async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let entered!: () => void;
    const inside = new Promise<void>((r) => {
      entered = r;
    });
    const tx = h.deps.sql.begin(async (t) => {
      await t`SELECT 1`;
      entered();
      await held;
    });
    await inside;
    const text = await h.metricsText();
    release();
    await tx;
    expect(sample(text, 'paybridge_db_connections{state="max"}')).toBe(h.deps.config.dbPoolMax);
    expect(sample(text, 'paybridge_db_connections{state="in_use"}')).toBe(1);
    expect(sample(text, 'paybridge_db_connections{state="idle"}')).toBeGreaterThanOrEqual(0);
  });

  test("scrape-time gauges read the database", async () => {
    const text = await h.metricsText();
    expect(sample(text, "paybridge_db_up")).toBe(1);
    expect(sample(text, "paybridge_schema_version")).toBe(sample(text, "paybridge_schema_expected_version"));
    expect(
      sample(text, 'paybridge_business_wallets_total{status="ACTIVE",currency="USD"}'),
    ).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'paybridge_business_users_total{kyc_status="VERIFIED"}')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'paybridge_business_wallets_total{status="CLOSED",currency="JPY"}')).toBe(0);
    expect(sample(text, "paybridge_outbox_pending_events")).toBeGreaterThanOrEqual(0);
  });
});

describe("business metrics (fed by the money path)", () => {
  test("a credit moves the transaction counter and the amount histogram (major units)", async () => {
    const counter = 'paybridge_business_transactions_total{type="DEPOSIT",status="COMPLETED",currency="USD"}';
    const count = 'paybridge_business_transaction_amount_count{type="DEPOSIT",currency="USD"}';
    const sum = 'paybridge_business_transaction_amount_sum{type="DEPOSIT",currency="USD"}';
    const t0 = await h.metricsText();
    const res = await h.request(`/api/v1/wallets/${walletId}/credit`, {
      method: "POST",
      headers: { ...auth(), "content-type": "application/json", "idempotency-key": crypto.randomUUID() },
      body: JSON.stringify({ amount: "12.50", description: "observability test" }),
    });
    expect(res.status).toBe(201);
    const t1 = await h.metricsText();
    expect(sample(t1, counter)).toBe((sample(t0, counter) ?? 0) + 1);
    expect(sample(t1, count)).toBe((sample(t0, count) ?? 0) + 1);
    expect(sample(t1, sum)).toBeCloseTo((sample(t0, sum) ?? 0) + 12.5, 6);
    expect(
      sample(
        t1,
        'paybridge_http_requests_total{method="POST",path="/api/v1/wallets/:id/credit",status="201"}',
      ),
    ).toBe(1);
  });
});

// Many replicas (issue 7 §6): two `serve` processes of the compiled binary on different ports,
// one database, one Redis. Shows that the shared rate limit holds across them, that the same
// Idempotency-Key sent to both at once has one effect, that hold expiry (run by both
// sweepers every second) happens once per hold, and that the outbox relays of both replicas
// deliver each event to the webhook once.
//
// Callers are admin tokens with random subjects, so every rate-limit bucket in the shared
// Redis is unique to this run (and expires on its own); setup calls use a fresh subject each.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import postgres from "postgres";
import { loadConfig } from "../../src/config.ts";
import { mintToken } from "../../src/http/auth.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";
import { TEST_JWT_SECRET } from "../protection/helpers.ts";
import { binaryPath, type Served, startServe } from "../protection/serve-process.ts";

const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
/** Capacity 10 tokens per caller and scope, refilling 1 a minute: no refill during the test. */
const API_PER_MIN = 1;
const MONEY_PER_MIN = 1;
const BURST = 9;
const CAPACITY = API_PER_MIN + BURST;
/** Holds are created with the minimum expiry, then moved into the past in the database. */
const HOLDS = 8;
const SWEEP_WAIT_MS = 20_000;
const IDEMPOTENCY_ROUNDS = 6;

setDefaultTimeout(60_000);

let db: TestDatabase;
let sql: postgres.Sql;
let replicas: Served[] = [];
/** Webhook deliveries received, by PayBridge-Event-Id. */
const deliveries = new Map<string, number>();
let receiver: ReturnType<typeof Bun.serve> | undefined;
const RELAY_WAIT_MS = 20_000;
const config = loadConfig({ JWT_SECRET: TEST_JWT_SECRET }, "token");

/** The `n` of a `SELECT count(*)::int AS n` query. */
const countOf = async (rows: PromiseLike<readonly postgres.Row[]>) => Number((await rows)[0]?.n ?? -1);

const token = (sub: string) => mintToken(config, { sub, role: "admin", ttlSeconds: 600 });
const freshAdmin = () => token(`admin-${crypto.randomUUID()}`);

async function call(
  replica: Served,
  method: string,
  path: string,
  opts: { body?: unknown; bearer?: string; key?: string } = {},
) {
  const headers: Record<string, string> = {
    authorization: `Bearer ${opts.bearer ?? (await freshAdmin())}`,
  };
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  if (opts.key !== undefined) headers["idempotency-key"] = opts.key;
  const res = await fetch(`http://127.0.0.1:${replica.port}${path}`, {
    method,
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
  };
}

async function verifiedWallet(replica: Served, currency = "USD"): Promise<string> {
  const email = `replica-${crypto.randomUUID()}@example.com`;
  const user = await call(replica, "POST", "/api/v1/users", { body: { email, full_name: "Replica Test" } });
  expect(user.status).toBe(201);
  const userId = user.body.id as string;
  expect((await call(replica, "POST", `/api/v1/users/${userId}/kyc/start`)).status).toBe(200);
  expect(
    (await call(replica, "POST", `/api/v1/users/${userId}/kyc`, { body: { approved: true } })).status,
  ).toBe(200);
  const wallet = await call(replica, "POST", "/api/v1/wallets", { body: { currency, user_id: userId } });
  expect(wallet.status).toBe(201);
  const walletId = wallet.body.id as string;
  const credit = await call(replica, "POST", `/api/v1/wallets/${walletId}/credit`, {
    body: { amount: "1000.00", description: "seed" },
    key: crypto.randomUUID(),
  });
  expect(credit.status).toBe(201);
  return walletId;
}

beforeAll(async () => {
  binaryPath(); // builds dist/paybridge when stale, before any timer starts
  db = await createTestDatabase("pbreplicas");
  sql = postgres(db.url, { max: 2, onnotice: () => {}, types: { bigint: postgres.BigInt } });
  receiver = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      await req.arrayBuffer();
      const id = req.headers.get("paybridge-event-id") ?? "missing";
      deliveries.set(id, (deliveries.get(id) ?? 0) + 1);
      return new Response(null, { status: 204 });
    },
  });
  const env = {
    DATABASE_URL: db.url,
    JWT_SECRET: TEST_JWT_SECRET,
    REDIS_URL,
    RATE_LIMIT_API_PER_MIN: String(API_PER_MIN),
    RATE_LIMIT_MONEY_PER_MIN: String(MONEY_PER_MIN),
    RATE_LIMIT_BURST: String(BURST),
    HOLD_SWEEP_SECONDS: "1",
    OUTBOX_RELAY: "on",
    WEBHOOK_URL: `http://127.0.0.1:${receiver.port}/hook`,
    WEBHOOK_SECRET: "replica-test-webhook-secret",
  };
  replicas = await Promise.all([startServe(env), startServe(env)]);
  expect(replicas[0]!.port).not.toBe(replicas[1]!.port);
}, 300_000);

afterAll(async () => {
  const codes = await Promise.all(replicas.map((r) => r.stop()));
  receiver?.stop(true);
  await sql?.end({ timeout: 1 });
  await db?.drop();
  expect(codes).toEqual(codes.map(() => 0));
});

describe("two replicas, one database, one Redis", () => {
  test("the rate limit is shared: one caller alternating replicas gets exactly the capacity", async () => {
    const bearer = await freshAdmin();
    const results = [];
    for (let i = 0; i < CAPACITY * 2; i++) {
      const r = await call(replicas[i % 2]!, "GET", "/api/v1/currencies", { bearer });
      results.push({ replica: i % 2, status: r.status, remaining: r.headers.get("ratelimit-remaining") });
    }
    expect(results.filter((r) => r.status === 200).length).toBe(CAPACITY);
    expect(results.slice(CAPACITY).every((r) => r.status === 429)).toBe(true);
    // Each replica alone saw only half the requests, yet both refuse: the bucket is shared.
    expect(results.filter((r) => r.replica === 1 && r.status === 429).length).toBeGreaterThan(0);
    expect(results.filter((r) => r.replica === 0 && r.status === 429).length).toBeGreaterThan(0);
    expect(results.map((r) => r.remaining).slice(0, CAPACITY)).toEqual(
      Array.from({ length: CAPACITY }, (_, i) => String(CAPACITY - 1 - i)),
    );
    // Another caller is unaffected.
    expect((await call(replicas[1]!, "GET", "/api/v1/currencies")).status).toBe(200);
  });

  test("the same Idempotency-Key sent to both replicas at once has one effect", async () => {
    const walletId = await verifiedWallet(replicas[0]!);
    for (let round = 0; round < IDEMPOTENCY_ROUNDS; round++) {
      const bearer = await freshAdmin(); // idempotency scope is (caller, key)
      const key = `replica-${round}-${crypto.randomUUID()}`;
      const body = { amount: "1.25", description: `round ${round}` };
      const [a, b] = await Promise.all(
        replicas.map((r) => call(r, "POST", `/api/v1/wallets/${walletId}/debit`, { bearer, key, body })),
      );
      const statuses = [a!.status, b!.status].sort();
      // One does the work; the other replays it (201, Idempotent-Replayed) or finds it in flight (409).
      expect(statuses.includes(201)).toBe(true);
      for (const r of [a!, b!]) {
        if (r.status === 409) expect(r.body.code).toBe("IDEMPOTENCY_KEY_IN_USE");
        else expect(r.status).toBe(201);
      }
      const n = await countOf(
        sql`SELECT count(*)::int AS n FROM transactions WHERE idempotency_key = ${key}`,
      );
      expect(n).toBe(1);
    }
    const [w] = await sql`SELECT available_balance FROM wallets WHERE id = ${walletId}`;
    expect(w!.available_balance).toBe(100_000n - 125n * BigInt(IDEMPOTENCY_ROUNDS));
    const debits = await countOf(sql`
      SELECT count(*)::int AS n FROM transactions WHERE wallet_id = ${walletId} AND type = 'WITHDRAW'`);
    expect(debits).toBe(IDEMPOTENCY_ROUNDS);
  });

  test("hold expiry runs on both replicas yet each expired hold is cancelled once", async () => {
    const walletId = await verifiedWallet(replicas[1]!);
    const holdIds: string[] = [];
    for (let i = 0; i < HOLDS; i++) {
      const r = await call(replicas[i % 2]!, "POST", `/api/v1/wallets/${walletId}/holds`, {
        body: { amount: "10.00", description: `hold ${i}`, expires_in_seconds: 60 },
        key: crypto.randomUUID(),
      });
      expect(r.status).toBe(201);
      holdIds.push(((r.body.transaction ?? r.body) as { id: string }).id);
    }
    const [before] = await sql`SELECT available_balance, pending_balance FROM wallets WHERE id = ${walletId}`;
    expect(before!.pending_balance).toBe(1000n * BigInt(HOLDS));
    // Expire them all at once, so both sweepers find work on their next tick.
    await sql`UPDATE transactions SET expires_at = now() - interval '1 second' WHERE id IN ${sql(holdIds)}`;

    const deadline = Date.now() + SWEEP_WAIT_MS;
    let pending = HOLDS;
    while (pending > 0 && Date.now() < deadline) {
      await Bun.sleep(200);
      pending = await countOf(sql`
        SELECT count(*)::int AS n FROM transactions WHERE id IN ${sql(holdIds)} AND status = 'PENDING'`);
    }
    expect(pending).toBe(0);

    const statuses = await sql`SELECT DISTINCT status FROM transactions WHERE id IN ${sql(holdIds)}`;
    expect(statuses.map((s) => s.status)).toEqual(["CANCELLED"]);
    const cancelled = await countOf(sql`
      SELECT count(*)::int AS n FROM outbox
      WHERE type = 'transaction.cancelled' AND aggregate_id IN ${sql(holdIds)}`);
    expect(cancelled).toBe(HOLDS);
    const [after] = await sql`SELECT available_balance, pending_balance FROM wallets WHERE id = ${walletId}`;
    expect(after!.pending_balance).toBe(0n);
    expect(after!.available_balance).toBe(before!.available_balance + 1000n * BigInt(HOLDS));
  });

  test("both relays run, yet every outbox event reaches the webhook exactly once", async () => {
    const deadline = Date.now() + RELAY_WAIT_MS;
    let unpublished = -1;
    while (unpublished !== 0 && Date.now() < deadline) {
      unpublished = await countOf(sql`SELECT count(*)::int AS n FROM outbox WHERE status <> 'PUBLISHED'`);
      if (unpublished !== 0) await Bun.sleep(200);
    }
    expect(unpublished).toBe(0);
    const ids = (await sql`SELECT id FROM outbox`).map((r) => r.id as string);
    expect(ids.length).toBeGreaterThan(HOLDS);
    expect([...deliveries.keys()].sort()).toEqual([...ids].sort());
    const duplicated = [...deliveries.entries()].filter(([, n]) => n > 1);
    expect(duplicated).toEqual([]);
  });
});

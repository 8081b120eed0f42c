// In-process HTTP harness for the money routes: the real app (buildApp) plus the money
// plugins (mounted here until the lead wires them into buildApp), real tokens, a fresh DB.
import pino from "pino";
import { buildApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { createServePools, type PostingPool, type Sql } from "../../src/db/client.ts";
import { createAuthenticator, mintToken } from "../../src/http/auth.ts";
import { reconciliationRoutes } from "../../src/modules/reconciliation/index.ts";
import { transactionRoutes } from "../../src/modules/transactions/index.ts";
import { createMetrics, type Metrics } from "../../src/observability/metrics.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";

const SECRET = "money-test-secret-0123456789-abcdefghij";

export type Reply = { status: number; headers: Headers; body: any; text: string };
export type CallOptions = {
  token?: string;
  body?: unknown;
  key?: string | null;
  headers?: Record<string, string>;
};

export type MoneyHarness = {
  db: TestDatabase;
  /** The pool for everything but the batched postings (which run on `postings`, as in serve). */
  sql: Sql;
  postings: PostingPool | undefined;
  metrics: Metrics;
  adminToken: string;
  token: (sub: string, role: "user" | "admin") => Promise<string>;
  call: (method: string, path: string, opts?: CallOptions) => Promise<Reply>;
  /** A VERIFIED user with one wallet; `balance` (minor units) is deposited through the API. */
  wallet: (opts?: {
    currency?: string;
    balance?: bigint | string;
    userId?: string;
  }) => Promise<{ id: string; userId: string; token: string }>;
  close: () => Promise<void>;
};

export async function startMoneyHarness(prefix = "pbmoneyhttp", poolMax = 8): Promise<MoneyHarness> {
  const db = await createTestDatabase(prefix);
  const config = loadConfig(
    {
      DATABASE_URL: db.url,
      JWT_SECRET: SECRET,
      PAYBRIDGE_ENV: "test",
      RATE_LIMIT_ENABLED: "false",
      LOG_LEVEL: "error",
      // As serve: the posting lanes are connections of their own, carved out of the pool.
      DB_POOL_MAX: String(poolMax),
    },
    "serve",
  );
  const pools = createServePools(config, { applicationName: "paybridge-money-test" });
  const { sql, postings } = pools;
  const { auth } = await createAuthenticator(config);
  const metrics = createMetrics();
  const deps = {
    config,
    sql,
    logger: pino({ level: "silent" }),
    lifecycle: { draining: false, startedAt: Date.now() },
    auth,
    metrics,
    postings,
  };
  const app = buildApp(deps).use(transactionRoutes(deps)).use(reconciliationRoutes(deps));
  const token = (sub: string, role: "user" | "admin") => mintToken(config, { sub, role, ttlSeconds: 3600 });
  const adminToken = await token("admin-ops", "admin");
  const call = async (method: string, path: string, opts: CallOptions = {}): Promise<Reply> => {
    const headers: Record<string, string> = { ...opts.headers };
    headers.authorization = `Bearer ${opts.token ?? adminToken}`;
    if (opts.key !== null && method === "POST") headers["idempotency-key"] = opts.key ?? crypto.randomUUID();
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers["content-type"] = "application/json";
    }
    const res = await app.handle(new Request(`http://localhost${path}`, { method, headers, body }));
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {}
    return { status: res.status, headers: res.headers, body: parsed, text };
  };
  const wallet: MoneyHarness["wallet"] = async (opts = {}) => {
    const currency = opts.currency ?? "USD";
    let userId = opts.userId;
    if (userId === undefined) {
      const [u] = await sql`
        INSERT INTO users (email, full_name, kyc_status)
        VALUES (${`${crypto.randomUUID()}@example.test`}, 'Money User', 'VERIFIED') RETURNING id`;
      userId = (u as { id: string }).id;
    }
    const kind = ["BTC", "ETH", "USDT", "USDC"].includes(currency) ? "crypto" : "fiat";
    const [w] =
      await sql`INSERT INTO wallets (user_id, currency, kind) VALUES (${userId}, ${currency}, ${kind}) RETURNING id`;
    const id = (w as { id: string }).id;
    if (opts.balance !== undefined) {
      const r = await call("POST", `/api/v1/wallets/${id}/credit`, {
        body: { amount: String(opts.balance), description: "opening" },
      });
      if (r.status !== 201) throw new Error(`credit failed: ${r.status} ${r.text}`);
    }
    return { id, userId, token: await token(userId, "user") };
  };
  return {
    db,
    sql,
    postings,
    metrics,
    adminToken,
    token,
    call,
    wallet,
    close: async () => {
      await pools.end(2);
      await db.drop();
    },
  };
}

/** Everything a rejected request must leave untouched. */
export async function ledgerSnapshot(sql: Sql): Promise<string> {
  const [r] = await sql`
    SELECT (SELECT coalesce(string_agg(id::text || ':' || available_balance || '/' || pending_balance || '/' || version, ',' ORDER BY id), '') FROM wallets) AS w,
           (SELECT count(*) FROM ledger_entries)::int AS e, (SELECT count(*) FROM transactions)::int AS t,
           (SELECT coalesce(string_agg(id::text || status || retry_count, ',' ORDER BY id), '') FROM transactions) AS s,
           (SELECT count(*) FROM outbox)::int AS o`;
  return JSON.stringify(r);
}

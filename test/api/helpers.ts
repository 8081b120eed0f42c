// In-process harness for the API tests: a fresh database, the real app (buildApp) and real
// tokens signed with the test secret. Requests go through app.handle, no socket.
import pino from "pino";
import { type App, buildApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { createSql, type Sql } from "../../src/db/client.ts";
import { createAuthenticator, mintToken } from "../../src/http/auth.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";

export const TEST_SECRET = "test-secret-0123456789-abcdefghijklmnop";

export type Harness = {
  db: TestDatabase;
  sql: Sql;
  app: App;
  token: (sub: string, role: "user" | "admin") => Promise<string>;
  call: (method: string, path: string, opts?: CallOptions) => Promise<Reply>;
  close: () => Promise<void>;
};

export type CallOptions = { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> };
export type Reply = { status: number; headers: Headers; body: any; text: string };

export async function startHarness(): Promise<Harness> {
  const db = await createTestDatabase("pbapi");
  const config = loadConfig(
    { DATABASE_URL: db.url, JWT_SECRET: TEST_SECRET, PAYBRIDGE_ENV: "test", RATE_LIMIT_ENABLED: "false" },
    "serve",
  );
  const sql = createSql(config, { applicationName: "paybridge-test", max: 4 });
  const { auth } = await createAuthenticator(config);
  const app = buildApp({
    config,
    sql,
    logger: pino({ level: "silent" }),
    lifecycle: { draining: false, startedAt: Date.now() },
    auth,
    metrics: createMetrics(),
  });
  const call = async (method: string, path: string, opts: CallOptions = {}): Promise<Reply> => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
    let body: string | undefined;
    if (opts.raw !== undefined) body = opts.raw;
    else if (opts.body !== undefined) body = JSON.stringify(opts.body);
    if (body !== undefined && headers["content-type"] === undefined)
      headers["content-type"] = "application/json";
    const res = await app.handle(new Request(`http://localhost${path}`, { method, headers, body }));
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {}
    return { status: res.status, headers: res.headers, body: parsed, text };
  };
  return {
    db,
    sql,
    app,
    token: (sub, role) => mintToken(config, { sub, role, ttlSeconds: 600 }),
    call,
    close: async () => {
      await sql.end({ timeout: 1 });
      await db.drop();
    },
  };
}

/** Row counts of every table a bad request could touch: compare before/after. */
export async function counts(sql: Sql): Promise<Record<string, number>> {
  const [r] = await sql<{ users: number; wallets: number; outbox: number; updated: string }[]>`
    SELECT (SELECT count(*)::int FROM users) AS users,
           (SELECT count(*)::int FROM wallets) AS wallets,
           (SELECT count(*)::int FROM outbox) AS outbox,
           (SELECT coalesce(max(updated_at)::text, '') FROM users) ||
           (SELECT coalesce(max(updated_at)::text, '') FROM wallets) AS updated`;
  return r as unknown as Record<string, number>;
}

/** Registers a user and (optionally) drives KYC to VERIFIED; returns its id and token. */
export async function makeUser(
  h: Harness,
  adminToken: string,
  opts: { email?: string; verified?: boolean } = {},
): Promise<{ id: string; token: string }> {
  const email = opts.email ?? `u${crypto.randomUUID().slice(0, 8)}@example.com`;
  const r = await h.call("POST", "/api/v1/users", { body: { email, full_name: "Test User" } });
  if (r.status !== 201) throw new Error(`register failed: ${r.status} ${r.text}`);
  const id = r.body.id as string;
  const token = await h.token(id, "user");
  if (opts.verified) {
    const s = await h.call("POST", `/api/v1/users/${id}/kyc/start`, { token });
    const a = await h.call("POST", `/api/v1/users/${id}/kyc`, {
      token: adminToken,
      body: { approved: true },
    });
    if (s.status !== 200 || a.status !== 200) throw new Error(`kyc failed: ${s.text} ${a.text}`);
  }
  return { id, token };
}

export function expectProblemShape(r: Reply): void {
  const ct = r.headers.get("content-type") ?? "";
  if (!ct.startsWith("application/problem+json"))
    throw new Error(`not a problem: ${r.status} ${ct} ${r.text}`);
  for (const k of ["type", "title", "status", "detail", "instance", "code", "request_id"]) {
    if (!(k in r.body)) throw new Error(`problem lacks ${k}: ${r.text}`);
  }
  if (r.body.status !== r.status) throw new Error("problem status differs from HTTP status");
  if (r.body.request_id !== r.headers.get("x-request-id"))
    throw new Error("request_id differs from X-Request-ID");
}

// End to end on the compiled binary, as an API client would use it: tokens from
// `paybridge token`, then register → KYC → wallet over real HTTP.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";
import { ensureBinary } from "./ensure-binary.ts";

const SECRET = "e2e-secret-0123456789-abcdefghijklmnopqr";
/** How long the binary may take to start listening (it is ~140 ms normally). */
const START_TIMEOUT_MS = 20_000;
/** `make build` may run first when the binary is stale. */
const BUILD_TIMEOUT_MS = 240_000;

let bin: string;
let db: TestDatabase;
let server: Subprocess<"ignore", "pipe", "pipe"> | undefined;
let base: string;
let env: Record<string, string>;

function run(args: string[]) {
  const r = Bun.spawnSync([bin, ...args], { env, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

async function freePort(): Promise<number> {
  const s = Bun.serve({ port: 0, fetch: () => new Response() });
  const port = s.port as number;
  s.stop(true);
  return port;
}

async function startServer(): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const proc = Bun.spawn([bin, "serve"], {
      env: { ...env, PORT: String(port), HOST: "127.0.0.1" },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline && proc.exitCode === null) {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/api/v1/currencies`);
        if (r.status === 200) {
          server = proc;
          base = `http://127.0.0.1:${port}`;
          return;
        }
      } catch {}
      await Bun.sleep(50);
    }
    proc.kill();
    await proc.exited;
  }
  throw new Error("paybridge serve did not start");
}

beforeAll(async () => {
  bin = ensureBinary();
  db = await createTestDatabase("pbe2eapi");
  env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    DATABASE_URL: db.url,
    JWT_SECRET: SECRET,
    PAYBRIDGE_ENV: "test",
    RATE_LIMIT_ENABLED: "false",
    OUTBOX_RELAY: "off",
    RECONCILE_INTERVAL_SECONDS: "0",
    LOG_LEVEL: "warn",
  };
  await startServer();
}, BUILD_TIMEOUT_MS);

afterAll(async () => {
  if (server !== undefined) {
    server.kill("SIGTERM");
    await server.exited;
  }
  await db?.drop();
});

async function api(method: string, path: string, token?: string, body?: unknown) {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const r = await fetch(`${base}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, headers: r.headers, body: text === "" ? null : JSON.parse(text) };
}

describe("paybridge token", () => {
  test("prints a JWT; bad arguments exit 2; no key exits 1", () => {
    const ok = run(["token", "--sub", "ops", "--role", "admin", "--ttl", "10m"]);
    expect(ok.code).toBe(0);
    expect(ok.out.trim()).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const payload = JSON.parse(Buffer.from(ok.out.split(".")[1] ?? "", "base64url").toString());
    expect(payload.exp - payload.iat).toBe(600);
    for (const bad of [
      ["token"],
      ["token", "--sub", "x"],
      ["token", "--sub", "x", "--role", "root"],
      ["token", "--sub", "x", "--role", "admin", "--ttl", "31d"],
      ["token", "--sub", "x", "--role", "admin", "--ttl", "soon"],
      ["token", "--sub", "not-a-uuid", "--role", "user"],
      ["token", "--sub", "x", "--role", "admin", "--bogus"],
    ]) {
      const r = run(bad);
      expect(r.code).toBe(2);
      expect(r.err).toContain("paybridge token:");
    }
    const { JWT_SECRET: _s, ...noKey } = env;
    const r = Bun.spawnSync([bin, "token", "--sub", "x", "--role", "admin"], { env: noKey, stderr: "pipe" });
    expect(r.exitCode).toBe(1);
    expect(r.stderr.toString()).toContain("no signing key");
  });
});

describe("register → KYC → wallet over HTTP", () => {
  test("the documented flow works with minted tokens", async () => {
    const admin = run(["token", "--sub", "ops-admin", "--role", "admin"]).out.trim();

    const reg = await api("POST", "/api/v1/users", undefined, {
      email: "Ada@Example.com",
      full_name: "Ada Lovelace",
    });
    expect(reg.status).toBe(201);
    expect(reg.body.email).toBe("ada@example.com");
    expect(reg.headers.get("x-request-id")).toBeTruthy();
    const userId: string = reg.body.id;

    const user = run(["token", "--sub", userId, "--role", "user", "--ttl", "1h"]).out.trim();

    const early = await api("POST", "/api/v1/wallets", user, { currency: "USD" });
    expect(early.status).toBe(422);
    expect(early.headers.get("content-type")).toContain("application/problem+json");
    expect(early.body.code).toBe("USER_NOT_VERIFIED");

    expect((await api("POST", `/api/v1/users/${userId}/kyc/start`, user)).body.kyc_status).toBe("PENDING");
    expect((await api("POST", `/api/v1/users/${userId}/kyc`, user, { approved: true })).status).toBe(403);
    const approved = await api("POST", `/api/v1/users/${userId}/kyc`, admin, { approved: true });
    expect(approved.status).toBe(200);
    expect(approved.body.kyc_status).toBe("VERIFIED");

    const wallet = await api("POST", "/api/v1/wallets", user, { currency: "USD" });
    expect(wallet.status).toBe(201);
    expect(wallet.body).toMatchObject({
      user_id: userId,
      currency: "USD",
      status: "ACTIVE",
      total_balance: "0.00",
    });

    const me = await api("GET", "/api/v1/wallets/me", user);
    expect(me.body.data.map((w: { id: string }) => w.id)).toEqual([wallet.body.id]);
    const got = await api("GET", `/api/v1/wallets/${wallet.body.id}`, admin);
    expect(got.body.id).toBe(wallet.body.id);

    expect((await api("GET", "/api/v1/users", user)).status).toBe(403);
    const anon = await api("GET", `/api/v1/wallets/${wallet.body.id}`);
    expect(anon.status).toBe(401);
    expect(anon.headers.get("www-authenticate")).toContain("Bearer");
  });

  test("framework errors from the binary are problems too; /openapi.json and /docs are served", async () => {
    const missing = await api("GET", "/api/v1/nope");
    expect(missing.status).toBe(404);
    expect(missing.body.code).toBe("NOT_FOUND");
    const wrong = await api("DELETE", "/api/v1/wallets");
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("GET, POST");
    const big = await fetch(`${base}/api/v1/users`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "a@b.co", full_name: "x".repeat(70_000) }),
    });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { code: string }).code).toBe("PAYLOAD_TOO_LARGE");

    const doc = await api("GET", "/openapi.json");
    expect(doc.body.openapi).toMatch(/^3\.1/);
    expect(doc.body.paths["/api/v1/wallets/{id}/close"].post).toBeDefined();
    const page = await fetch(`${base}/docs`);
    expect(page.status).toBe(200);
    const bundle = await fetch(`${base}/docs/swagger-ui-bundle.js`);
    expect((await bundle.text()).length).toBeGreaterThan(100_000);
  });
});

describe("money through the binary", () => {
  /** A POST with an Idempotency-Key; the raw body text is kept for byte comparisons. */
  async function money(path: string, token: string, key: string, body: unknown) {
    const r = await fetch(`${base}${path}`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        "idempotency-key": key,
      },
      body: JSON.stringify(body),
    });
    const text = await r.text();
    return { status: r.status, headers: r.headers, text, body: JSON.parse(text) };
  }

  test("48 concurrent transfers: each answered with its own transaction, committed in batches, ledger balanced", async () => {
    const admin = run(["token", "--sub", "ops-admin", "--role", "admin"]).out.trim();
    const wallets: string[] = [];
    for (let i = 0; i < 4; i++) {
      const reg = await api("POST", "/api/v1/users", undefined, {
        email: `batch${i}@example.com`,
        full_name: `B ${i}`,
      });
      const userId: string = reg.body.id;
      const user = run(["token", "--sub", userId, "--role", "user"]).out.trim();
      await api("POST", `/api/v1/users/${userId}/kyc/start`, user);
      await api("POST", `/api/v1/users/${userId}/kyc`, admin, { approved: true });
      const w = await api("POST", "/api/v1/wallets", user, { currency: "USD" });
      expect(w.status).toBe(201);
      const funded = await money(`/api/v1/wallets/${w.body.id}/credit`, admin, crypto.randomUUID(), {
        amount: "100.00",
        description: "opening",
      });
      expect(funded.status).toBe(201);
      wallets.push(w.body.id);
    }
    const keys = Array.from({ length: 48 }, () => crypto.randomUUID());
    const replies = await Promise.all(
      keys.map((key, i) =>
        money(`/api/v1/wallets/${wallets[i % 4]}/transfer`, admin, key, {
          destination_wallet_id: wallets[(i + 1 + (i % 3)) % 4],
          amount: `1.${String(i).padStart(2, "0")}`,
          description: `t${i}`,
        }),
      ),
    );
    expect(replies.map((r) => r.status)).toEqual(Array(48).fill(201));
    expect(replies.map((r) => r.body.transaction.amount)).toEqual(
      keys.map((_, i) => `1.${String(i).padStart(2, "0")}`),
    );
    expect(new Set(replies.map((r) => r.body.transaction.id)).size).toBe(48);

    // A replay is the stored response, byte for byte.
    const again = await money(`/api/v1/wallets/${wallets[0]}/transfer`, admin, keys[0]!, {
      destination_wallet_id: wallets[1],
      amount: "1.00",
      description: "t0",
    });
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.text).toBe(replies[0]!.text);

    const sql = (await import("postgres")).default(db.url, { max: 1, onnotice: () => {} });
    try {
      const [r] = await sql`
        SELECT count(*)::int AS n, count(DISTINCT xmin::text)::int AS x,
               (SELECT sum(available_balance)::text FROM wallets) AS total
          FROM transactions WHERE type = 'TRANSFER'`;
      expect(r!.n).toBe(48);
      expect(r!.x).toBeLessThan(48);
      expect(r!.total).toBe("40000");
    } finally {
      await sql.end();
    }
    const rec = await api("GET", "/api/v1/admin/reconciliation", admin);
    expect(rec.body.status).toBe("ok");
  });
});

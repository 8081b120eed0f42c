// The compiled binary as an operator runs it: Prometheus scrape + promtool, probes with the
// database unreachable, graceful shutdown with requests in flight, port in use, management port.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import postgres from "postgres";
import type { TestDatabase } from "../helpers/db.ts";
import { migratedDatabase } from "../observability/harness.ts";

const ROOT = join(import.meta.dir, "..", "..");
const BIN = join(ROOT, "dist", "paybridge");
const JWT_SECRET = "e2e-observability-secret-0123456789abcdef";
const STARTUP_TIMEOUT_MS = 15_000;

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** Builds dist/paybridge when it is missing or older than the sources. */
async function ensureBinary(): Promise<void> {
  const stale =
    !existsSync(BIN) ||
    statSync(BIN).mtimeMs < Math.max(newestMtime(join(ROOT, "src")), newestMtime(join(ROOT, "migrations")));
  if (!stale) return;
  const p = Bun.spawn(["make", "build"], { cwd: ROOT, stdout: "ignore", stderr: "pipe" });
  if ((await p.exited) !== 0) throw new Error(`make build failed: ${await new Response(p.stderr).text()}`);
}

async function freePort(): Promise<number> {
  const s = Bun.serve({ port: 0, fetch: () => new Response() });
  const port = s.port as number;
  await s.stop(true);
  return port;
}

type Proc = ReturnType<typeof Bun.spawn> & { out: () => Promise<string>; err: () => Promise<string> };

function spawnServe(env: Record<string, string>): Proc {
  const p = Bun.spawn([BIN, "serve"], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      JWT_SECRET,
      HOST: "127.0.0.1",
      RATE_LIMIT_ENABLED: "false",
      ...env,
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  let out: Promise<string> | undefined;
  let err: Promise<string> | undefined;
  return Object.assign(p, {
    out: () => (out ??= new Response(p.stdout as ReadableStream).text()),
    err: () => (err ??= new Response(p.stderr as ReadableStream).text()),
  });
}

async function waitLive(port: number, proc: Proc): Promise<void> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`serve exited ${proc.exitCode}: ${await proc.err()}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/live`);
      if (r.status === 200) return;
    } catch {
      // not listening yet
    }
    await Bun.sleep(50);
  }
  throw new Error("serve did not answer /live in time");
}

let db: TestDatabase;

beforeAll(async () => {
  await ensureBinary();
  db = await migratedDatabase();
}, 300_000);
afterAll(async () => {
  await db?.drop();
});

describe("compiled binary", () => {
  test("metrics scrape passes promtool (only the two customer-named gauges are reported)", async () => {
    const port = await freePort();
    const proc = spawnServe({ DATABASE_URL: db.url, PORT: String(port) });
    try {
      await waitLive(port, proc);
      await fetch(`http://127.0.0.1:${port}/api/v1/currencies`);
      await fetch(`http://127.0.0.1:${port}/nope`);
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toContain("text/plain");
      const text = await res.text();
      for (const name of [
        "paybridge_http_requests_total",
        "paybridge_http_request_duration_seconds_bucket",
        "paybridge_http_requests_in_flight",
        "paybridge_http_response_size_bytes_bucket",
        "paybridge_business_transactions_total",
        "paybridge_business_transaction_amount",
        "paybridge_business_wallets_total",
        "paybridge_business_users_total",
        "paybridge_db_query_duration_seconds",
        "paybridge_db_connections",
        "paybridge_db_errors_total",
        "paybridge_build_info",
        "paybridge_db_up 1",
        "paybridge_schema_version",
        "paybridge_schema_expected_version",
        "paybridge_outbox_pending_events",
        "paybridge_outbox_oldest_pending_age_seconds",
        "process_cpu_seconds_total",
        "nodejs_eventloop_lag_seconds",
      ]) {
        expect(text).toContain(name);
      }
      const check = Bun.spawn(["promtool", "check", "metrics"], {
        stdin: new TextEncoder().encode(text),
        stdout: "pipe",
        stderr: "pipe",
      });
      await check.exited;
      const report = `${await new Response(check.stdout).text()}${await new Response(check.stderr).text()}`;
      const problems = report.split("\n").filter((l) => l.trim() !== "");
      expect(problems.length).toBeGreaterThan(0);
      for (const line of problems) expect(line).toMatch(/^paybridge_business_(wallets|users)_total .*_total/);
    } finally {
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
    }
  }, 60_000);

  test("database unreachable: starts, /live 200, /ready 503, stops cleanly", async () => {
    const port = await freePort();
    const closed = await freePort();
    const proc = spawnServe({
      DATABASE_URL: `postgres://postgres:pw-secret@127.0.0.1:${closed}/paybridge`,
      PORT: String(port),
    });
    try {
      await waitLive(port, proc);
      const ready = await fetch(`http://127.0.0.1:${port}/ready`);
      expect(ready.status).toBe(503);
      expect(ready.headers.get("content-type")).toBe("application/health+json");
      const body = await ready.text();
      expect(body).not.toContain("pw-secret");
      expect(body).not.toContain("ECONNREFUSED");
      expect((await fetch(`http://127.0.0.1:${port}/live`)).status).toBe(200);
      expect(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).toContain("paybridge_db_up 0");
    } finally {
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
    }
  }, 60_000);

  test("SIGTERM with 20 requests blocked on a wallet row lock: readiness fails, all complete, exit 0", async () => {
    const port = await freePort();
    const admin = postgres(db.url, { max: 2, onnotice: () => {} });
    const [user] = await admin<{ id: string }[]>`
      INSERT INTO users (email, full_name) VALUES (${`e2e-${Date.now()}@example.com`}, 'E2E') RETURNING id`;
    const [wallet] = await admin<{ id: string }[]>`
      INSERT INTO wallets (user_id, currency, kind) VALUES (${user!.id}, 'USD', 'fiat') RETURNING id`;
    const proc = spawnServe({
      DATABASE_URL: db.url,
      PORT: String(port),
      SHUTDOWN_DRAIN_SECONDS: "1",
      SHUTDOWN_TIMEOUT_SECONDS: "30",
      DB_STATEMENT_TIMEOUT_MS: "60000",
    });
    const locker = await admin.reserve();
    try {
      await waitLive(port, proc);
      const token = (
        await Bun.spawn([BIN, "token", "--sub", "e2e-admin", "--role", "admin"], {
          env: { JWT_SECRET },
          stdout: "pipe",
        }).stdout.text()
      ).trim();
      await locker`BEGIN`;
      await locker`SELECT id FROM wallets WHERE id = ${wallet!.id} FOR UPDATE`;
      const requests = Array.from({ length: 20 }, (_, i) =>
        fetch(`http://127.0.0.1:${port}/api/v1/wallets/${wallet!.id}/limits`, {
          method: "PATCH",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ daily_limit: `${100 + i}.00` }),
        }).then(async (r) => ({ status: r.status, body: await r.text() })),
      );
      // Wait until the server's sessions are really blocked on the lock (as many as its pool allows).
      for (;;) {
        const [row] = await admin<{ n: number }[]>`
          SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE application_name = 'paybridge-serve' AND wait_event_type = 'Lock'`;
        if ((row?.n ?? 0) >= 1) break;
        await Bun.sleep(50);
      }
      proc.kill("SIGTERM");
      // readiness flips at once, while the listener still accepts during the drain delay
      let sawNotReady = false;
      for (let i = 0; i < 20 && !sawNotReady; i++) {
        const r = await fetch(`http://127.0.0.1:${port}/ready`).catch(() => undefined);
        if (r?.status === 503) sawNotReady = true;
        else await Bun.sleep(25);
      }
      expect(sawNotReady).toBe(true);
      // the requests are still waiting: the process must not have exited
      await Bun.sleep(1_500);
      expect(proc.exitCode).toBeNull();
      await locker`COMMIT`;
      const results = await Promise.all(requests);
      expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
      expect(await proc.exited).toBe(0);
      const out = await proc.out();
      expect(out).toContain("shutdown complete");
      expect(out.split("\n").filter((l) => l.includes('"request completed"')).length).toBe(20);
    } finally {
      locker.release();
      await admin.end();
      if (proc.exitCode === null) proc.kill("SIGKILL");
    }
  }, 90_000);

  test("shutdown that cannot finish within SHUTDOWN_TIMEOUT_SECONDS: exit 1", async () => {
    const port = await freePort();
    const admin = postgres(db.url, { max: 2, onnotice: () => {} });
    const [user] = await admin<{ id: string }[]>`
      INSERT INTO users (email, full_name) VALUES (${`e2e-t-${Date.now()}@example.com`}, 'E2E') RETURNING id`;
    const [wallet] = await admin<{ id: string }[]>`
      INSERT INTO wallets (user_id, currency, kind) VALUES (${user!.id}, 'USD', 'fiat') RETURNING id`;
    const proc = spawnServe({
      DATABASE_URL: db.url,
      PORT: String(port),
      SHUTDOWN_DRAIN_SECONDS: "0",
      SHUTDOWN_TIMEOUT_SECONDS: "2",
      DB_STATEMENT_TIMEOUT_MS: "60000",
    });
    const locker = await admin.reserve();
    try {
      await waitLive(port, proc);
      const token = (
        await Bun.spawn([BIN, "token", "--sub", "e2e-admin", "--role", "admin"], {
          env: { JWT_SECRET },
          stdout: "pipe",
        }).stdout.text()
      ).trim();
      await locker`BEGIN`;
      await locker`SELECT id FROM wallets WHERE id = ${wallet!.id} FOR UPDATE`;
      const stuck = fetch(`http://127.0.0.1:${port}/api/v1/wallets/${wallet!.id}/limits`, {
        method: "PATCH",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ daily_limit: "5.00" }),
      }).catch(() => undefined);
      for (;;) {
        const [row] = await admin<{ n: number }[]>`
          SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE application_name = 'paybridge-serve' AND wait_event_type = 'Lock'`;
        if ((row?.n ?? 0) >= 1) break;
        await Bun.sleep(50);
      }
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(1);
      expect(await proc.out()).toContain("shutdown timed out");
      await locker`ROLLBACK`;
      await stuck;
    } finally {
      locker.release();
      await admin.end();
      if (proc.exitCode === null) proc.kill("SIGKILL");
    }
  }, 60_000);

  test("unreadable TLS files: exit 1 with a clear line", async () => {
    const proc = spawnServe({
      DATABASE_URL: db.url,
      PORT: String(await freePort()),
      TLS_CERT_FILE: "/nonexistent/cert.pem",
      TLS_KEY_FILE: "/nonexistent/key.pem",
    });
    expect(await proc.exited).toBe(1);
    expect(await proc.err()).toContain("TLS_CERT_FILE: cannot read /nonexistent/cert.pem");
  }, 30_000);

  test("as PID 1 (own PID namespace) SIGTERM still shuts down cleanly", async () => {
    const probe = Bun.spawnSync(["unshare", "-p", "-f", "--mount-proc", "--", "true"]);
    if (probe.exitCode !== 0) {
      console.warn("skipped: unshare -p is not permitted here");
      return;
    }
    const port = await freePort();
    const p = Bun.spawn(["unshare", "-p", "-f", "--mount-proc", "--", BIN, "serve"], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        JWT_SECRET,
        HOST: "127.0.0.1",
        DATABASE_URL: db.url,
        PORT: String(port),
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    const proc = Object.assign(p, {
      out: () => new Response(p.stdout).text(),
      err: () => new Response(p.stderr).text(),
    });
    await waitLive(port, proc as Proc);
    // unshare forks once: its only child is the binary (PID 1 inside); signal it by its host pid
    const child = Bun.spawnSync(["pgrep", "-P", String(p.pid)])
      .stdout.toString()
      .trim();
    expect(child).toMatch(/^\d+$/);
    const inside = (await Bun.file(`/proc/${child}/status`).text()).match(/^NSpid:\s+\d+\s+(\d+)/m)?.[1];
    expect(inside).toBe("1");
    process.kill(Number(child), "SIGTERM");
    expect(await p.exited).toBe(0);
    expect(await proc.out()).toContain("shutdown complete");
  }, 60_000);

  test("port in use: exit 1 with a clear message", async () => {
    const blocker = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("taken") });
    try {
      const proc = spawnServe({ DATABASE_URL: db.url, PORT: String(blocker.port) });
      expect(await proc.exited).toBe(1);
      expect(await proc.err()).toMatch(/already in use/);
    } finally {
      await blocker.stop(true);
    }
  }, 30_000);

  test("MANAGEMENT_PORT: probes and /metrics move to the management listener", async () => {
    const port = await freePort();
    const mgmt = await freePort();
    const proc = spawnServe({ DATABASE_URL: db.url, PORT: String(port), MANAGEMENT_PORT: String(mgmt) });
    try {
      const deadline = Date.now() + STARTUP_TIMEOUT_MS;
      while (Date.now() < deadline) {
        const r = await fetch(`http://127.0.0.1:${mgmt}/live`).catch(() => undefined);
        if (r?.status === 200) break;
        await Bun.sleep(50);
      }
      expect((await fetch(`http://127.0.0.1:${mgmt}/metrics`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${mgmt}/ready`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(404);
      expect((await fetch(`http://127.0.0.1:${port}/live`)).status).toBe(404);
      expect((await fetch(`http://127.0.0.1:${port}/api/v1/currencies`)).status).toBe(200);
    } finally {
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
    }
  }, 60_000);
});

// In-process harness for the observability tests: the real app (buildApp) over a fresh,
// migrated database, with a logger whose lines are captured.
import { Writable } from "node:stream";
import { type AppDeps, buildApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { createSql, type Sql } from "../../src/db/client.ts";
import { migrateUp } from "../../src/db/migrator.ts";
import { createAuthenticator, mintToken } from "../../src/http/auth.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import { closeObservability } from "../../src/observability/plugin.ts";
import { createEmptyDatabase, type TestDatabase } from "../helpers/db.ts";

export const TEST_JWT_SECRET = "observability-test-secret-0123456789abcdef";

export type Harness = {
  db: TestDatabase;
  deps: AppDeps;
  app: ReturnType<typeof buildApp>;
  lines: Record<string, unknown>[];
  raw: string[];
  adminToken: string;
  /** app.handle + one tick, so onAfterResponse effects (metrics, access log) have landed. */
  request: (path: string, init?: RequestInit) => Promise<Response>;
  metricsText: () => Promise<string>;
  close: () => Promise<void>;
};

/** A migrated database (with the migrator's bookkeeping, so /ready can pass). */
export async function migratedDatabase(limit?: number): Promise<TestDatabase> {
  const db = await createEmptyDatabase("pbobs");
  const sql = createSql(loadConfig({ DATABASE_URL: db.url }, "migrate"), {
    applicationName: "obs-test-migrate",
    max: 1,
  });
  try {
    await migrateUp(sql, limit === undefined ? {} : { limit });
  } finally {
    await sql.end();
  }
  return db;
}

export async function createHarness(env: Record<string, string> = {}, db?: TestDatabase): Promise<Harness> {
  const database = db ?? (await migratedDatabase());
  const config = loadConfig(
    { DATABASE_URL: database.url, JWT_SECRET: TEST_JWT_SECRET, RATE_LIMIT_ENABLED: "false", ...env },
    "serve",
  );
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
  const logger = createLogger(config, { destination });
  const metrics = createMetrics();
  const sql: Sql = createSql(config, { applicationName: "paybridge-serve", metrics });
  const { auth } = await createAuthenticator(config);
  const deps: AppDeps = {
    config,
    sql,
    logger,
    metrics,
    auth,
    lifecycle: { draining: false, startedAt: Date.now() },
  };
  const app = buildApp(deps);
  const adminToken = await mintToken(config, { sub: "obs-admin", role: "admin", ttlSeconds: 600 });
  const request = async (path: string, init?: RequestInit) => {
    const res = await app.handle(new Request(`http://localhost${path}`, init));
    await res.arrayBuffer().catch(() => undefined);
    await new Promise(setImmediate);
    return res;
  };
  return {
    db: database,
    deps,
    app,
    lines,
    raw,
    adminToken,
    request,
    metricsText: async () => {
      const res = await app.handle(new Request("http://localhost/metrics"));
      return await res.text();
    },
    close: async () => {
      await closeObservability(deps);
      await sql.end({ timeout: 1 });
      if (db === undefined) await database.drop();
    },
  };
}

/** Inserts a user and a USD wallet directly; returns their ids. */
export async function seedWallet(sql: Sql, email = `u${Math.random().toString(36).slice(2)}@example.com`) {
  const [user] = await sql<{ id: string }[]>`
    INSERT INTO users (email, full_name, kyc_status) VALUES (${email}, 'Obs Test', 'VERIFIED') RETURNING id`;
  const [wallet] = await sql<{ id: string }[]>`
    INSERT INTO wallets (user_id, currency, kind) VALUES (${user!.id}, 'USD', 'fiat') RETURNING id`;
  return { userId: user!.id, walletId: wallet!.id };
}

/** The value of one sample line (`name{labels} value`), or undefined when absent. */
export function sample(text: string, series: string): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

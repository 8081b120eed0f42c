// Scrape-time gauges over the database (wallets, users, outbox backlog, schema, pool). They
// are refreshed by GET /metrics on the small probe pool, under a deadline and a short cache,
// so a scrape never waits on (or takes a connection from) the API.
import type { Sql } from "../db/client.ts";
import { CURRENCY_CODES } from "../ledger/money.ts";
import { connectionsInUse, poolTracker } from "./db-metrics.ts";
import { DB_CHECK_DEADLINE_MS, type Health, withDeadline } from "./health.ts";
import { KYC_STATUSES, type Metrics, WALLET_STATUSES } from "./metrics.ts";

/** Business gauges are recomputed at most this often (count(*) over wallets and users). */
export const BUSINESS_GAUGES_CACHE_MS = 5_000;

type BusinessRow = {
  wallets: { status: string; currency: string; n: number }[];
  users: { kyc_status: string; n: number }[];
  open_connections: number;
};

type ScrapeDeps = { sql: Sql; probeSql: Sql; health: Health };

const businessCache = new WeakMap<Metrics, { at: number; value: Promise<BusinessRow | undefined> }>();

async function readBusiness(probeSql: Sql, applicationName: string): Promise<BusinessRow | undefined> {
  try {
    const [row] = await withDeadline(
      probeSql<BusinessRow[]>`
        SELECT
          (SELECT coalesce(json_agg(w), '[]'::json)
             FROM (SELECT status, currency, count(*)::int AS n FROM wallets GROUP BY status, currency) w) AS wallets,
          (SELECT coalesce(json_agg(u), '[]'::json)
             FROM (SELECT kyc_status, count(*)::int AS n FROM users GROUP BY kyc_status) u) AS users,
          (SELECT count(*)::int FROM pg_stat_activity
             WHERE application_name = ${applicationName} AND datname = current_database()) AS open_connections`,
      DB_CHECK_DEADLINE_MS,
    );
    return row;
  } catch {
    return undefined;
  }
}

/** Brings every database gauge up to date (best effort: on failure db_up is 0, the rest keep their last values). */
export async function refreshDbGauges(metrics: Metrics, deps: ScrapeDeps): Promise<void> {
  const t = poolTracker(deps.sql);
  const snap = await deps.health.snapshot();
  metrics.dbUp.set(snap.up ? 1 : 0);
  if (snap.schema !== undefined) metrics.schemaVersion.set(snap.schema.version ?? 0);
  else if (!snap.up) metrics.schemaVersion.set(-1);
  if (snap.outbox !== undefined) {
    metrics.outboxPending.set(snap.outbox.pending);
    metrics.outboxOldestAge.set(snap.outbox.oldestPendingAgeSeconds ?? 0);
  }

  const inUse = t === undefined ? 0 : connectionsInUse(t);
  const max = t?.max ?? 0;
  metrics.dbConnections.set({ state: "in_use" }, inUse);
  metrics.dbConnections.set({ state: "max" }, max);
  if (!snap.up) {
    metrics.dbConnections.set({ state: "idle" }, 0);
    return;
  }

  const now = Date.now();
  let entry = businessCache.get(metrics);
  if (entry === undefined || now - entry.at > BUSINESS_GAUGES_CACHE_MS) {
    entry = { at: now, value: readBusiness(deps.probeSql, t?.applicationName ?? "paybridge-serve") };
    businessCache.set(metrics, entry);
  }
  const row = await entry.value;
  if (row === undefined) return;
  for (const status of WALLET_STATUSES) {
    for (const currency of CURRENCY_CODES) metrics.businessWallets.set({ status, currency }, 0);
  }
  for (const w of row.wallets) metrics.businessWallets.set({ status: w.status, currency: w.currency }, w.n);
  for (const kyc_status of KYC_STATUSES) metrics.businessUsers.set({ kyc_status }, 0);
  for (const u of row.users) metrics.businessUsers.set({ kyc_status: u.kyc_status }, u.n);
  // Open connections are counted by the server (postgres.js does not expose its pool);
  // several replicas sharing one application_name would see each other's here.
  metrics.dbConnections.set({ state: "idle" }, Math.max(0, Math.min(max, row.open_connections) - inUse));
}

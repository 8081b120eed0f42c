// Shared fixtures for the money tests: a private database, VERIFIED users with funded wallets
// (funded through the money path itself, so the ledger stays balanced), and ledger checks.
import { afterAll, beforeAll } from "bun:test";
import postgres from "postgres";
import type { RequestScope } from "../../src/context.ts";
import type { Sql } from "../../src/db/client.ts";
import { postOrThrow } from "../../src/ledger/postings.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";

export type MoneyDb = { db: TestDatabase; sql: Sql };

export async function openMoneyDb(prefix: string, max = 12): Promise<MoneyDb> {
  const db = await createTestDatabase(prefix);
  const sql = postgres(db.url, {
    max,
    types: { bigint: postgres.BigInt },
    onnotice: () => {},
  }) as unknown as Sql;
  return { db, sql };
}

/**
 * A private database for one test file: opened before its tests, dropped after them. The
 * object returned is filled in by the beforeAll hook, so tests use it as `m.sql`.
 */
export function useMoneyDb(prefix: string, max?: number): MoneyDb {
  const m = {} as MoneyDb;
  beforeAll(async () => {
    Object.assign(m, await openMoneyDb(prefix, max));
  });
  afterAll(async () => {
    await closeMoneyDb(m.sql === undefined ? undefined : m);
  });
  return m;
}

export async function closeMoneyDb(m: MoneyDb | undefined): Promise<void> {
  if (m === undefined) return;
  await m.sql.end({ timeout: 5 });
  await m.db.drop();
}

export function scopeOf(id = "admin-1", role: "user" | "admin" | "system" = "admin"): RequestScope {
  return {
    actor: { id, role },
    requestId: crypto.randomUUID(),
    correlationId: crypto.randomUUID(),
    traceId: crypto.randomUUID().replaceAll("-", ""),
    spanId: "0123456789abcdef",
  };
}

export const ADMIN = scopeOf();

export type WalletSpec = {
  currency?: string;
  balance?: bigint;
  dailyLimit?: bigint | null;
  monthlyLimit?: bigint | null;
  kyc?: "VERIFIED" | "PENDING";
  userId?: string;
};

/** A user (VERIFIED unless said otherwise) with one wallet, funded by a DEPOSIT through the money path. */
export async function makeWallet(
  sql: Sql,
  spec: WalletSpec = {},
): Promise<{ walletId: string; userId: string }> {
  const currency = spec.currency ?? "USD";
  let userId = spec.userId;
  if (userId === undefined) {
    const [u] = await sql`
      INSERT INTO users (email, full_name, kyc_status)
      VALUES (${`${crypto.randomUUID()}@example.test`}, 'Test User', 'VERIFIED') RETURNING id`;
    userId = (u as { id: string }).id;
  }
  const kind = ["BTC", "ETH", "USDT", "USDC"].includes(currency) ? "crypto" : "fiat";
  const [w] = await sql`
    INSERT INTO wallets (user_id, currency, kind, daily_limit, monthly_limit)
    VALUES (${userId}, ${currency}, ${kind}, ${spec.dailyLimit?.toString() ?? null}, ${spec.monthlyLimit?.toString() ?? null}) RETURNING id`;
  const walletId = (w as { id: string }).id;
  if (spec.balance !== undefined && spec.balance > 0n) {
    await postOrThrow(sql, ADMIN, {
      op: "move",
      type: "DEPOSIT",
      direction: "credit",
      walletId,
      amount: spec.balance,
      description: "opening balance",
    });
  }
  if (spec.kyc !== undefined && spec.kyc !== "VERIFIED") {
    await sql`UPDATE users SET kyc_status = ${spec.kyc} WHERE id = ${userId}`;
  }
  return { walletId, userId };
}

export async function balances(sql: Sql, walletId: string): Promise<{ available: bigint; pending: bigint }> {
  const [w] = await sql`SELECT available_balance, pending_balance FROM wallets WHERE id = ${walletId}`;
  const r = w as { available_balance: bigint; pending_balance: bigint };
  return { available: r.available_balance, pending: r.pending_balance };
}

/** Wallets whose available+pending differs from the sum of their entries (should be none). */
export async function ledgerMismatches(sql: Sql): Promise<number> {
  const [r] = await sql`
    SELECT count(*)::int AS n FROM wallets w
    WHERE w.available_balance + w.pending_balance
          <> coalesce((SELECT sum(amount) FROM ledger_entries e WHERE e.wallet_id = w.id), 0)`;
  return (r as { n: number }).n;
}

/** Transactions whose entries do not sum to zero (should be none). */
export async function unbalancedTransactions(sql: Sql): Promise<number> {
  const [r] = await sql`
    SELECT count(*)::int AS n FROM (
      SELECT transaction_id FROM ledger_entries GROUP BY transaction_id HAVING sum(amount) <> 0) x`;
  return (r as { n: number }).n;
}

export async function counts(
  sql: Sql,
): Promise<{ tx: number; entries: number; outbox: number; idem: number }> {
  const [r] = await sql`
    SELECT (SELECT count(*) FROM transactions)::int AS tx, (SELECT count(*) FROM ledger_entries)::int AS entries,
           (SELECT count(*) FROM outbox)::int AS outbox, (SELECT count(*) FROM idempotency_keys)::int AS idem`;
  return r as { tx: number; entries: number; outbox: number; idem: number };
}

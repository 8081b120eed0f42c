// Reconciliation (SPEC §2.4): re-derives every invariant of the ledger from scratch and lists
// what disagrees. Read-only; safe to run at any time on a live system (it reads one snapshot:
// REPEATABLE READ, so concurrent postings cannot show up half-applied).
import type { Sql } from "../../db/client.ts";
import { formatSignedAmount } from "../../ledger/money.ts";

export type MismatchKind =
  | "unbalanced_transaction"
  | "wallet_balance"
  | "negative_balance"
  | "pending_balance"
  | "missing_entries"
  | "missing_events";

export type Mismatch = {
  kind: MismatchKind;
  wallet_id?: string;
  transaction_id?: string;
  expected: string;
  actual: string;
};

export type ReconciliationReport = {
  status: "ok" | "mismatch";
  checked_at: string;
  wallets_checked: number;
  transactions_checked: number;
  mismatches: Mismatch[];
};

/** At most this many mismatches are listed (all are counted in the metric). */
export const MAX_MISMATCHES_LISTED = 1_000;
/** The reconciliation's own statement timeout: it scans whole tables. */
export const RECONCILE_STATEMENT_TIMEOUT_MS = 10 * 60 * 1000;

type Row = {
  kind: MismatchKind;
  wallet_id: string | null;
  transaction_id: string | null;
  currency: string;
  expected: bigint;
  actual: bigint;
};

/** Advisory lock key of the background reconciler ("PBRECON" as a number): one replica at a time. */
export const RECONCILER_LOCK_KEY = 0x50425245434f4en;

export type RunResult = ReconciliationReport & { mismatch_count: number };

/** Runs every check. With `exclusive`, returns undefined when another replica is running one. */
export async function runReconciliation(
  sql: Sql,
  opts: { exclusive?: boolean } = {},
): Promise<RunResult | undefined> {
  const checkedAt = new Date();
  return await sql.begin("isolation level repeatable read read only", async (tx) => {
    const [lock] = await tx`
      SELECT set_config('statement_timeout', ${String(RECONCILE_STATEMENT_TIMEOUT_MS)}, true),
             CASE WHEN ${opts.exclusive === true} THEN NOT pg_try_advisory_xact_lock(${RECONCILER_LOCK_KEY.toString()}::bigint)
                  ELSE false END AS busy`;
    if ((lock as { busy: boolean }).busy) return undefined;
    const [totals] = await tx`
      SELECT (SELECT count(*) FROM wallets)::int AS wallets, (SELECT count(*) FROM transactions)::int AS transactions`;
    const rows = (await tx`
      WITH sums AS (
        SELECT wallet_id, sum(amount) AS s FROM ledger_entries WHERE wallet_id IS NOT NULL GROUP BY wallet_id
      ), holds AS (
        SELECT wallet_id, sum(amount) AS s FROM transactions WHERE type = 'PAYOUT' AND status = 'PENDING' GROUP BY wallet_id
      ), entry_counts AS (
        SELECT transaction_id, count(*) AS n FROM ledger_entries GROUP BY transaction_id
      )
      -- entries of one transaction sum to zero (per currency)
      SELECT 'unbalanced_transaction' AS kind, NULL::uuid AS wallet_id, e.transaction_id, min(e.currency) AS currency,
             0::bigint AS expected, sum(e.amount)::bigint AS actual
        FROM ledger_entries e GROUP BY e.transaction_id, e.currency HAVING sum(e.amount) <> 0
      UNION ALL
      -- a wallet's total equals the sum of its entries
      SELECT 'wallet_balance', w.id, NULL, w.currency, coalesce(s.s, 0)::bigint, (w.available_balance + w.pending_balance)
        FROM wallets w LEFT JOIN sums s ON s.wallet_id = w.id
       WHERE w.available_balance + w.pending_balance <> coalesce(s.s, 0)
      UNION ALL
      SELECT 'negative_balance', w.id, NULL, w.currency, 0, least(w.available_balance, w.pending_balance)
        FROM wallets w WHERE w.available_balance < 0 OR w.pending_balance < 0
      UNION ALL
      -- pending money is exactly the open holds
      SELECT 'pending_balance', w.id, NULL, w.currency, coalesce(h.s, 0)::bigint, w.pending_balance
        FROM wallets w LEFT JOIN holds h ON h.wallet_id = w.id
       WHERE w.pending_balance <> coalesce(h.s, 0)
      UNION ALL
      -- every completed money transaction wrote its entries (two: wallet and counterpart)...
      SELECT 'missing_entries', NULL, t.id, t.currency, 2, coalesce(c.n, 0)
        FROM transactions t LEFT JOIN entry_counts c ON c.transaction_id = t.id
       WHERE t.status = 'COMPLETED' AND coalesce(c.n, 0) < 2
      UNION ALL
      -- ...and its events: created + completed at least (event_seq survives outbox purges)
      SELECT 'missing_events', NULL, t.id, t.currency, 2, t.event_seq
        FROM transactions t WHERE t.status = 'COMPLETED' AND t.event_seq < 2
      LIMIT ${MAX_MISMATCHES_LISTED + 1}`) as unknown as Row[];
    const t = totals as { wallets: number; transactions: number };
    const render = (r: Row): Mismatch => {
      const money = r.kind !== "missing_entries" && r.kind !== "missing_events";
      const fmt = (v: bigint) => (money ? formatSignedAmount(v, r.currency) : v.toString());
      const m: Mismatch = { kind: r.kind, expected: fmt(BigInt(r.expected)), actual: fmt(BigInt(r.actual)) };
      if (r.wallet_id !== null) m.wallet_id = r.wallet_id;
      if (r.transaction_id !== null) m.transaction_id = r.transaction_id;
      return m;
    };
    const mismatches = rows.slice(0, MAX_MISMATCHES_LISTED).map(render);
    return {
      status: rows.length === 0 ? "ok" : "mismatch",
      checked_at: checkedAt.toISOString(),
      wallets_checked: t.wallets,
      transactions_checked: t.transactions,
      mismatches,
      mismatch_count: rows.length,
    };
  });
}

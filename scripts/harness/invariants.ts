// The invariants a bank test holds the database to, straight from SQL after the run (no
// faults any more), compared with what the careful client was told. Each check returns a
// result with a short detail; any failed check fails the run.
import type postgres from "postgres";
import { type Bank, expectedBalances, type OpRecord } from "./bank.ts";
import type { CarefulClient } from "./client.ts";
import type { WalletSpec } from "./workload.ts";

export type CheckResult = { name: string; ok: boolean; detail: string };
const MAX_EXAMPLES = 5;
const SWEEP_SLACK_SECONDS = 30;

function result(name: string, problems: string[], okDetail: string): CheckResult {
  return problems.length === 0
    ? { name, ok: true, detail: okDetail }
    : {
        name,
        ok: false,
        detail: `${problems.length} problem(s): ${problems.slice(0, MAX_EXAMPLES).join("; ")}`,
      };
}

type TxRow = { id: string; type: string; status: string; idempotency_key: string | null };

/** Checks that need only the database: ledger, balances, entries, outbox consistency. */
export async function databaseChecks(sql: postgres.Sql): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const ledger = await sql<{ currency: string; total: string }[]>`
    SELECT currency, sum(amount)::text AS total FROM ledger_entries GROUP BY currency HAVING sum(amount) <> 0`;
  out.push(
    result(
      "ledger sums to zero per currency (system accounts included)",
      ledger.map((r) => `${r.currency}: ${r.total}`),
      "every currency nets to 0",
    ),
  );

  const negative = await sql<{ id: string }[]>`
    SELECT id FROM wallets WHERE available_balance < 0 OR pending_balance < 0`;
  out.push(
    result(
      "no negative balance",
      negative.map((r) => r.id),
      "none",
    ),
  );

  const drift = await sql<{ id: string; total: string; entries: string }[]>`
    SELECT w.id, (w.available_balance + w.pending_balance)::text AS total, coalesce(e.sum, 0)::text AS entries
      FROM wallets w LEFT JOIN (SELECT wallet_id, sum(amount) AS sum FROM ledger_entries WHERE wallet_id IS NOT NULL GROUP BY wallet_id) e
        ON e.wallet_id = w.id
     WHERE w.available_balance + w.pending_balance <> coalesce(e.sum, 0)`;
  const [wc] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM wallets`;
  out.push(
    result(
      "each wallet: available + pending = sum of its entries",
      drift.map((r) => `${r.id} total ${r.total} entries ${r.entries}`),
      `${wc?.n ?? 0} wallets match`,
    ),
  );

  const pendingHolds = await sql<{ id: string; pending: string; holds: string }[]>`
    SELECT w.id, w.pending_balance::text AS pending, coalesce(h.sum, 0)::text AS holds
      FROM wallets w LEFT JOIN (SELECT wallet_id, sum(amount) AS sum FROM transactions
                                 WHERE type = 'PAYOUT' AND status = 'PENDING' GROUP BY wallet_id) h ON h.wallet_id = w.id
     WHERE w.pending_balance <> coalesce(h.sum, 0)`;
  out.push(
    result(
      "each wallet: pending = sum of its PENDING holds",
      pendingHolds.map((r) => `${r.id} pending ${r.pending} holds ${r.holds}`),
      "all match",
    ),
  );

  // Every transaction has the events of SPEC §2.5 exactly once, and nothing else points at a
  // transaction that does not exist (a rolled-back change writes no event).
  const evMissing = await sql<{ id: string; type: string; status: string; problem: string }[]>`
    WITH ev AS (
      SELECT aggregate_id AS tx,
             count(*) FILTER (WHERE type = 'transaction.created') AS created,
             count(*) FILTER (WHERE type = 'transaction.completed') AS completed,
             count(*) FILTER (WHERE type = 'transaction.cancelled') AS cancelled
        FROM outbox WHERE aggregate_type = 'transaction' GROUP BY 1
    ), wev AS (
      SELECT (data->>'transaction_id')::uuid AS tx,
             count(*) FILTER (WHERE type = 'wallet.credited') AS credited,
             count(*) FILTER (WHERE type = 'wallet.debited') AS debited
        FROM outbox WHERE type IN ('wallet.credited', 'wallet.debited') GROUP BY 1
    ), x AS (
      SELECT t.id, t.type, t.status,
             coalesce(ev.created, 0) AS created, coalesce(ev.completed, 0) AS completed,
             coalesce(ev.cancelled, 0) AS cancelled, coalesce(wev.credited, 0) AS credited,
             coalesce(wev.debited, 0) AS debited,
             (t.status = 'COMPLETED' AND (t.direction = 'credit' OR t.type = 'TRANSFER'))::int AS want_credited,
             (t.status = 'COMPLETED' AND t.direction = 'debit')::int AS want_debited
        FROM transactions t LEFT JOIN ev ON ev.tx = t.id LEFT JOIN wev ON wev.tx = t.id
    )
    SELECT id, type, status,
           concat_ws(',', CASE WHEN created <> 1 THEN 'created=' || created END,
                          CASE WHEN completed <> (status = 'COMPLETED')::int THEN 'completed=' || completed END,
                          CASE WHEN cancelled <> (status = 'CANCELLED')::int THEN 'cancelled=' || cancelled END,
                          CASE WHEN credited <> want_credited THEN 'credited=' || credited END,
                          CASE WHEN debited <> want_debited THEN 'debited=' || debited END) AS problem
      FROM x
     WHERE created <> 1 OR completed <> (status = 'COMPLETED')::int OR cancelled <> (status = 'CANCELLED')::int
        OR credited <> want_credited OR debited <> want_debited`;
  const evProblems = evMissing
    .filter((r) => r.problem !== "")
    .map((r) => `${r.type} ${r.status} ${r.id}: ${r.problem}`);
  const [tc] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM transactions`;
  out.push(
    result(
      "every committed transaction has its outbox events, once",
      evProblems,
      `${tc?.n ?? 0} transactions have exactly their events`,
    ),
  );

  // The sweeper runs every HOLD_SWEEP_SECONDS (5 in the harness); the slack covers faults.
  const overdue = await sql<{ id: string }[]>`
    SELECT id FROM transactions
     WHERE type = 'PAYOUT' AND status = 'PENDING' AND expires_at < now() - make_interval(secs => ${SWEEP_SLACK_SECONDS})`;
  const [swept] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM transactions
     WHERE type = 'PAYOUT' AND status = 'CANCELLED' AND failure_reason = 'expired'`;
  out.push(
    result(
      `expired holds are cancelled by the service (within ${SWEEP_SLACK_SECONDS} s)`,
      overdue.map((r) => r.id),
      `none overdue; ${swept?.n ?? 0} expired holds cancelled by the sweeper`,
    ),
  );

  const noCreated = await sql<{ kind: string; id: string }[]>`
    SELECT 'user' AS kind, u.id FROM users u
     WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.aggregate_type = 'user' AND o.aggregate_id = u.id AND o.type = 'user.created')
    UNION ALL
    SELECT 'wallet', w.id FROM wallets w
     WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.aggregate_type = 'wallet' AND o.aggregate_id = w.id AND o.type = 'wallet.created')`;
  out.push(
    result(
      "every user and wallet has its .created event",
      noCreated.map((r) => `${r.kind} ${r.id}`),
      "all present",
    ),
  );

  const orphans = await sql<{ id: string; type: string }[]>`
    SELECT o.id, o.type FROM outbox o
     WHERE (o.aggregate_type = 'transaction' AND NOT EXISTS (SELECT 1 FROM transactions t WHERE t.id = o.aggregate_id))
        OR (o.type IN ('wallet.credited', 'wallet.debited')
            AND NOT EXISTS (SELECT 1 FROM transactions t WHERE t.id = (o.data->>'transaction_id')::uuid))
        OR (o.aggregate_type = 'wallet' AND NOT EXISTS (SELECT 1 FROM wallets w WHERE w.id = o.aggregate_id))`;
  out.push(
    result(
      "no outbox event refers to a missing (rolled-back) change",
      orphans.map((r) => `${r.type} ${r.id}`),
      "none",
    ),
  );

  const gaps = await sql<{ aggregate_type: string; aggregate_id: string; n: number; max: number }[]>`
    SELECT aggregate_type, aggregate_id, count(*)::int AS n, max(sequence)::int AS max
      FROM outbox GROUP BY 1, 2 HAVING count(*) <> max(sequence) OR min(sequence) <> 1`;
  out.push(
    result(
      "outbox sequences per aggregate are 1..n without gaps",
      gaps.map((r) => `${r.aggregate_type} ${r.aggregate_id}: ${r.n} events, max ${r.max}`),
      "contiguous",
    ),
  );
  return out;
}

/** Checks that compare the database with what the client was told. */
export async function acknowledgedChecks(
  sql: postgres.Sql,
  specs: WalletSpec[],
  bank: Bank,
  records: OpRecord[],
): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const all = [...bank.funding, ...records];
  const unknown = all.flatMap((r) => r.sent.filter((s) => s.outcome.kind === "unknown").map((s) => s.key));
  out.push(
    result("every request got a definitive answer (after the client's own retries)", unknown, "all answered"),
  );

  const txs = await sql<TxRow[]>`SELECT id, type, status, idempotency_key FROM transactions`;
  const byKey = new Map<string, TxRow[]>();
  const byId = new Map<string, TxRow>();
  for (const t of txs) {
    byId.set(t.id, t);
    if (t.idempotency_key === null) continue;
    const list = byKey.get(t.idempotency_key) ?? [];
    list.push(t);
    byKey.set(t.idempotency_key, list);
  }
  const stored = new Map<string, number>();
  for (const r of await sql<
    { key: string; status_code: number }[]
  >`SELECT key, status_code FROM idempotency_keys`) {
    stored.set(r.key, r.status_code);
  }

  const problems: string[] = [];
  const okKeys = new Set<string>();
  let acknowledged = 0;
  let rejected = 0;
  for (const r of all) {
    for (const s of r.sent) {
      if (s.outcome.kind === "unknown") continue;
      const status = s.outcome.answer.status;
      const creates = s.label !== "complete" && s.label !== "partial" && s.label !== "cancel";
      const rows = byKey.get(s.key) ?? [];
      if (s.outcome.kind === "ok") {
        acknowledged++;
        if (creates) {
          okKeys.add(s.key);
          const id = (s.outcome.answer.body as { transaction?: { id?: string } }).transaction?.id;
          if (rows.length !== 1) problems.push(`${s.key}: acknowledged but ${rows.length} transactions`);
          else if (rows[0]!.id !== id)
            problems.push(`${s.key}: acknowledged ${id} but stored ${rows[0]!.id}`);
        } else {
          const id = (s.outcome.answer.body as { transaction?: { id?: string } }).transaction?.id ?? "";
          const t = byId.get(id);
          const want = s.label === "cancel" ? "CANCELLED" : "COMPLETED";
          if (t === undefined || t.status !== want)
            problems.push(`${s.key}: acknowledged ${want} but ${t?.status ?? "missing"}`);
        }
      } else {
        rejected++;
        if (creates && rows.length !== 0)
          problems.push(`${s.key}: rejected (${status}) but ${rows.length} transactions`);
      }
      const kept = stored.get(s.key);
      const storable = status < 300 || status === 404 || status === 409 || status === 422;
      if (storable && kept !== status)
        problems.push(`${s.key}: answered ${status}, idempotency record ${kept ?? "missing"}`);
    }
  }
  out.push(
    result(
      "every acknowledged operation present exactly once (by idempotency key)",
      problems,
      `${acknowledged} acknowledged, ${rejected} rejected: all as told`,
    ),
  );

  const strays = txs.filter((t) => t.idempotency_key === null || !okKeys.has(t.idempotency_key));
  const dupes = [...byKey.entries()].filter(([, l]) => l.length > 1);
  out.push(
    result(
      "no duplicate or unacknowledged effect (retries applied once)",
      [
        ...dupes.map(([k, l]) => `${k}: ${l.length} transactions`),
        ...strays.map((t) => `stray ${t.type} ${t.id} key ${t.idempotency_key}`),
      ],
      `${txs.length} transactions, each from one acknowledged request`,
    ),
  );

  const expired = await sql<{ key: string }[]>`
    SELECT idempotency_key AS key FROM transactions
     WHERE type = 'PAYOUT' AND status = 'CANCELLED' AND failure_reason = 'expired' AND idempotency_key IS NOT NULL`;
  const expected = expectedBalances(specs.length, all, new Set(expired.map((r) => r.key)));
  if (expected === undefined) {
    out.push({
      name: "balances equal the acknowledged operations",
      ok: false,
      detail: "some outcomes unknown",
    });
    return out;
  }
  // bigint columns travel as text and are parsed here: this connection has no bigint type.
  const rows = await sql<{ id: string; available: string; pending: string }[]>`
    SELECT id, available_balance::text AS available, pending_balance::text AS pending FROM wallets`;
  const actual = new Map(
    rows.map((r) => [r.id, { available_balance: BigInt(r.available), pending_balance: BigInt(r.pending) }]),
  );
  const balanceProblems: string[] = [];
  const perCurrency = new Map<string, { expected: bigint; actual: bigint }>();
  specs.forEach((spec, w) => {
    const id = bank.walletIds[w]!;
    const a = actual.get(id);
    const e = expected[w]!;
    const c = perCurrency.get(spec.currency) ?? { expected: 0n, actual: 0n };
    c.expected += e.available + e.pending;
    c.actual += a === undefined ? 0n : a.available_balance + a.pending_balance;
    perCurrency.set(spec.currency, c);
    if (a === undefined) balanceProblems.push(`wallet ${w} missing`);
    else if (a.available_balance !== e.available || a.pending_balance !== e.pending) {
      balanceProblems.push(
        `wallet ${w}: available ${a.available_balance} pending ${a.pending_balance}, expected ${e.available}/${e.pending}`,
      );
    }
  });
  out.push(
    result(
      "each wallet's balances equal its acknowledged operations",
      balanceProblems,
      `${specs.length} wallets exact`,
    ),
  );

  const system = new Map(
    (
      await sql<{ currency: string; total: string }[]>`
      SELECT currency, sum(amount)::text AS total FROM ledger_entries WHERE system_account IS NOT NULL GROUP BY currency`
    ).map((r) => [r.currency, BigInt(r.total)]),
  );
  const conservation: string[] = [];
  const summary: string[] = [];
  for (const [cur, c] of perCurrency) {
    const sys = system.get(cur) ?? 0n;
    if (c.expected !== c.actual || -sys !== c.actual) {
      conservation.push(
        `${cur}: deposits−withdrawals ${c.expected}, balances ${c.actual}, system account ${sys}`,
      );
    }
    summary.push(`${cur} ${c.actual}`);
  }
  out.push(
    result(
      "money conserved per currency (deposits − withdrawals = sum of balances = −system account)",
      conservation,
      summary.join(", "),
    ),
  );
  return out;
}

/** GET /admin/reconciliation must report ok. */
export async function reconciliationCheck(client: CarefulClient): Promise<CheckResult> {
  const o = await client.send("GET", "/api/v1/admin/reconciliation", undefined, undefined, 60_000);
  if (o.kind === "unknown") return { name: "/admin/reconciliation is ok", ok: false, detail: o.lastError };
  const body = o.answer.body as { status?: string; mismatches?: unknown[]; wallets_checked?: number };
  if (o.answer.status !== 200) {
    return {
      name: "/admin/reconciliation is ok",
      ok: false,
      detail: `HTTP ${o.answer.status} ${JSON.stringify(body).slice(0, 200)}`,
    };
  }
  return {
    name: "/admin/reconciliation is ok",
    ok: body.status === "ok",
    detail:
      body.status === "ok"
        ? `ok (${body.wallets_checked} wallets checked)`
        : `${body.status}: ${JSON.stringify(body.mismatches).slice(0, 300)}`,
  };
}

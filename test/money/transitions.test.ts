// Table-driven transitions: every (status, action) pair of a PAYOUT is driven through the
// database and compared with HOLD_TRANSITIONS; non-PAYOUT transactions refuse every action.
// Plus hold expiry by the sweeper (SKIP LOCKED, twice in parallel = once) and the
// append-only ledger.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { HOLD_ACTIONS, type HoldAction, nextHoldStatus } from "../../src/ledger/hold-states.ts";
import { sweepOnce } from "../../src/ledger/hold-sweeper.ts";
import { type MoneyOp, post, postOrThrow } from "../../src/ledger/postings.ts";
import { TX_STATUSES, type TxStatus } from "../../src/ledger/types.ts";
import { ADMIN, balances, ledgerMismatches, makeWallet, useMoneyDb } from "./helpers.ts";

// Under a loaded CI machine a database-bound test may take a while; this is not a timing assertion.
setDefaultTimeout(60_000);

const m = useMoneyDb("pbmoneytrans", 6);

/** A PAYOUT brought into `status` through the money path itself. */
async function payoutIn(status: TxStatus, walletId: string): Promise<string> {
  const hold = await postOrThrow(m.sql, ADMIN, {
    op: "hold",
    walletId,
    amount: 100n,
    description: "h",
    expiresInSeconds: 3600,
  });
  const id = hold.transaction.id;
  if (status === "COMPLETED") await postOrThrow(m.sql, ADMIN, { op: "complete", transactionId: id });
  if (status === "FAILED") await postOrThrow(m.sql, ADMIN, { op: "fail", transactionId: id, reason: "r" });
  if (status === "CANCELLED") await postOrThrow(m.sql, ADMIN, { op: "cancel", transactionId: id });
  return id;
}

function opFor(action: HoldAction, transactionId: string): MoneyOp {
  switch (action) {
    case "complete":
      return { op: "complete", transactionId };
    case "fail":
      return { op: "fail", transactionId, reason: "bank said no" };
    case "cancel":
      return { op: "cancel", transactionId };
    case "retry":
      return { op: "retry", transactionId };
    case "expire":
      return { op: "expire", transactionId };
  }
}

describe("PAYOUT transitions follow HOLD_TRANSITIONS", () => {
  for (const status of TX_STATUSES) {
    for (const action of HOLD_ACTIONS) {
      const expected = nextHoldStatus(status, action);
      test(`${status} --${action}--> ${expected ?? "409"}`, async () => {
        const w = await makeWallet(m.sql, { balance: 10_000n });
        const id = await payoutIn(status, w.walletId);
        // expiry only applies once the hold is due
        if (action === "expire")
          await m.sql`UPDATE transactions SET expires_at = now() - interval '1 second' WHERE id = ${id}`;
        const before = await balances(m.sql, w.walletId);
        const out = await post(m.sql, ADMIN, opFor(action, id));
        const [row] = await m.sql`SELECT status FROM transactions WHERE id = ${id}`;
        if (expected === undefined) {
          expect(out.kind).toBe("rejected");
          if (out.kind === "rejected") {
            expect(out.error.code).toBe("TRANSACTION_INVALID_TRANSITION");
            expect(out.error.extra?.current_status).toBe(status);
          }
          expect((row as { status: string }).status).toBe(status);
          expect(await balances(m.sql, w.walletId)).toEqual(before);
        } else {
          expect(out.kind).toBe("posted");
          expect((row as { status: string }).status).toBe(expected);
        }
        expect(await ledgerMismatches(m.sql)).toBe(0);
      });
    }
  }

  test("every non-PAYOUT type is final", async () => {
    const w = await makeWallet(m.sql, { balance: 10_000n });
    const d = await postOrThrow(m.sql, ADMIN, {
      op: "move",
      type: "FEE",
      direction: "debit",
      walletId: w.walletId,
      amount: 1n,
      description: "f",
    });
    for (const action of HOLD_ACTIONS) {
      const out = await post(m.sql, ADMIN, opFor(action, d.transaction.id));
      expect(out.kind === "rejected" && out.error.code).toBe("TRANSACTION_INVALID_TRANSITION");
    }
  });

  test("complete after expiry is HOLD_EXPIRED; the sweeper cancels it once even when two sweep at once", async () => {
    const w = await makeWallet(m.sql, { balance: 10_000n });
    const ids = [];
    for (let i = 0; i < 6; i++) ids.push(await payoutIn("PENDING", w.walletId));
    await m.sql`UPDATE transactions SET expires_at = now() - interval '1 second' WHERE id IN ${m.sql(ids)}`;
    const late = await post(m.sql, ADMIN, { op: "complete", transactionId: ids[0]! });
    expect(late.kind === "rejected" && late.error.code).toBe("HOLD_EXPIRED");
    const [a, b] = await Promise.all([
      sweepOnce(m.sql, { idempotencyTtlHours: 168 }),
      sweepOnce(m.sql, { idempotencyTtlHours: 168 }),
    ]);
    expect(a.expired + b.expired).toBe(6);
    expect(await balances(m.sql, w.walletId)).toEqual({ available: 10_000n, pending: 0n });
    const events =
      await m.sql`SELECT count(*)::int AS n FROM outbox WHERE type = 'transaction.cancelled' AND aggregate_id IN ${m.sql(ids)}`;
    expect((events[0] as { n: number }).n).toBe(6);
    // the transaction keeps its creator as actor; the cancellation event names the service
    const [r] = await m.sql`
      SELECT t.failure_reason, o.actor->>'role' AS role FROM transactions t
      JOIN outbox o ON o.aggregate_id = t.id AND o.type = 'transaction.cancelled' WHERE t.id = ${ids[1]!}`;
    expect(r).toEqual({ failure_reason: "expired", role: "system" });
  });
});

describe("the ledger is append-only", () => {
  for (const stmt of ["UPDATE", "DELETE", "TRUNCATE"] as const) {
    test(`${stmt} on ledger_entries is refused by the database`, async () => {
      await makeWallet(m.sql, { balance: 500n });
      const attempt =
        stmt === "UPDATE"
          ? m.sql`UPDATE ledger_entries SET amount = amount + 1`
          : stmt === "DELETE"
            ? m.sql`DELETE FROM ledger_entries`
            : m.sql`TRUNCATE ledger_entries CASCADE`;
      await expect(attempt).rejects.toThrow(/append-only/);
      const [r] = await m.sql`SELECT count(*)::int AS n FROM ledger_entries`;
      expect((r as { n: number }).n).toBeGreaterThan(0);
    });
  }
});

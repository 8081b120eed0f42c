// The bank invariant through the HTTP API: many wallets, concurrent random transfers (some
// must fail: overdrafts, self-transfers, unknown or foreign-currency destinations), then the
// total is unchanged, nothing is negative, every wallet equals the sum of its entries,
// reconciliation is clean, and no response was a 5xx; with transfers committed in batches.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { ledgerMismatches, unbalancedTransactions } from "./helpers.ts";
import { type MoneyHarness, startMoneyHarness } from "./http.ts";

// Under a loaded CI machine a database-bound test may take a while; this is not a timing assertion.
setDefaultTimeout(60_000);

let h: MoneyHarness;
beforeAll(async () => {
  h = await startMoneyHarness("pbmoneybank", 10);
});
afterAll(async () => {
  await h.close();
});

const WALLETS = 12;
const TRANSFERS = 300;
const CONCURRENCY = 16;

test("concurrent random transfers keep the bank invariant", async () => {
  const wallets: { id: string; userId: string; token: string }[] = [];
  for (let i = 0; i < WALLETS; i++) wallets.push(await h.wallet({ balance: "50.00" }));
  const eur = await h.wallet({ currency: "EUR", balance: "10.00" });
  const total = async () => {
    const [r] =
      await h.sql`SELECT sum(available_balance + pending_balance)::bigint AS s FROM wallets WHERE currency = 'USD'`;
    return (r as { s: bigint }).s;
  };
  const before = await total();
  expect(before).toBe(BigInt(WALLETS) * 5_000n);

  const statuses = new Map<number, number>();
  const codes = new Map<string, number>();
  let next = 0;
  const worker = async () => {
    while (next < TRANSFERS) {
      const i = next++;
      const src = wallets[Math.floor(Math.random() * WALLETS)]!;
      const roll = Math.random();
      let dst: string;
      if (roll < 0.05)
        dst = src.id; // SELF_TRANSFER
      else if (roll < 0.08)
        dst = crypto.randomUUID(); // DESTINATION_WALLET_NOT_FOUND
      else if (roll < 0.11)
        dst = eur.id; // CURRENCY_MISMATCH
      else dst = wallets[Math.floor(Math.random() * WALLETS)]!.id;
      // amounts up to 30.00 against 50.00 balances: many overdrafts under contention
      const amount = `${1 + Math.floor(Math.random() * 30)}.${String(i % 100).padStart(2, "0")}`;
      const byAdmin = Math.random() < 0.2;
      const r = await h.call("POST", `/api/v1/wallets/${src.id}/transfer`, {
        token: byAdmin ? h.adminToken : src.token,
        body: { destination_wallet_id: dst, amount, description: `bank ${i}` },
      });
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      if (r.status !== 201) codes.set(r.body.code, (codes.get(r.body.code) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));

  const fiveXX = [...statuses.entries()].filter(([s]) => s >= 500);
  expect(fiveXX).toEqual([]);
  expect(statuses.get(201) ?? 0).toBeGreaterThan(50);
  // only the business rejections we provoked
  for (const code of codes.keys()) {
    expect([
      "INSUFFICIENT_BALANCE",
      "SELF_TRANSFER",
      "DESTINATION_WALLET_NOT_FOUND",
      "CURRENCY_MISMATCH",
    ]).toContain(code);
  }
  expect(await total()).toBe(before);
  const [neg] =
    await h.sql`SELECT count(*)::int AS n FROM wallets WHERE available_balance < 0 OR pending_balance < 0`;
  expect((neg as { n: number }).n).toBe(0);
  expect(await ledgerMismatches(h.sql)).toBe(0);
  expect(await unbalancedTransactions(h.sql)).toBe(0);
  // each completed transfer wrote exactly its 4 events
  const [ev] = await h.sql`
    SELECT count(*)::int AS n FROM transactions t
    WHERE t.type = 'TRANSFER' AND (SELECT count(*) FROM outbox o WHERE o.data->>'transaction_id' = t.id::text OR o.aggregate_id = t.id) <> 4`;
  expect((ev as { n: number }).n).toBe(0);
  // The invariants above held under group commit: 16 clients on 2 posting lanes, so many
  // transfers shared a database transaction (src/ledger/batcher.ts) and hence an xmin.
  const [gc] = await h.sql`
    SELECT count(*)::int AS transfers, count(DISTINCT xmin::text)::int AS transactions
      FROM transactions WHERE type = 'TRANSFER'`;
  const { transfers, transactions } = gc as { transfers: number; transactions: number };
  expect(transactions).toBeLessThan(transfers);
  const rec = await h.call("GET", "/api/v1/admin/reconciliation");
  expect(rec.status).toBe(200);
  expect(rec.body.status).toBe("ok");
  expect(rec.body.mismatches).toEqual([]);
  expect(rec.body.wallets_checked).toBe(WALLETS + 1);
});

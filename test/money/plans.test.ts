// The money path's lookups stay index lookups however stale the planner's statistics are.
// A pooled connection caches the plans of the money functions for its lifetime. Planned while
// idempotency_keys was still small (a fresh deployment, the first requests after a start) and
// never analysed since (autovacuum off, or between its runs), the key lookup of every later
// request on that connection was a sequential scan of the whole table: seen under `make bench`
// as one backend of sixteen reading ~2,000-9,000 rows per claim, more with every request.
// The foreign-key checks of a posting (entries and the idempotency record look up their
// transaction, transactions and entries their wallets) did the same on transactions (00011).
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { type MoneyHarness, startMoneyHarness } from "./http.ts";

setDefaultTimeout(60_000);

let h: MoneyHarness;
beforeAll(async () => {
  // One pooled connection: every request below runs in the same backend, with its cached plans.
  h = await startMoneyHarness("pbmoneyplans", 1);
  // Statistics as a fresh deployment has them, and nothing refreshing them during the test.
  await h.sql`ALTER TABLE idempotency_keys SET (autovacuum_enabled = false)`;
  await h.sql`ANALYZE idempotency_keys`;
});
afterAll(async () => {
  await h.close();
});

async function seqScans(table: string): Promise<number> {
  // This backend's counters reach the shared statistics at its next report; force it.
  await h.sql`SELECT pg_stat_force_next_flush()`;
  await h.sql`SELECT 1`;
  const [row] = await h.sql`SELECT seq_scan::int AS n FROM pg_stat_user_tables WHERE relname = ${table}`;
  return (row as { n: number }).n;
}
const idempotencySeqScans = () => seqScans("idempotency_keys");

/** Two fresh wallets and a function that transfers 0.01 from the first to the second. */
async function walletPair() {
  const a = await h.wallet({ balance: "1000.00" });
  const b = await h.wallet();
  const transfer = () =>
    h.call("POST", `/api/v1/wallets/${a.id}/transfer`, {
      token: a.token,
      body: { destination_wallet_id: b.id, amount: "0.01", description: "plan" },
    });
  return { b, transfer };
}

test("a key lookup planned on an empty table is still an index lookup once the table is large", async () => {
  const { transfer } = await walletPair();
  // More than five executions: PostgreSQL then settles on the generic plan it keeps.
  for (let i = 0; i < 8; i++) expect((await transfer()).status).toBe(201);
  await h.sql`
    INSERT INTO idempotency_keys (scope, key, fingerprint, status_code, response_body)
    SELECT 'bulk', g::text, 'f', 201, '{}' FROM generate_series(1, 20000) g`;
  const before = await idempotencySeqScans();
  for (let i = 0; i < 10; i++) expect((await transfer()).status).toBe(201);
  expect((await idempotencySeqScans()) - before).toBe(0);
});

test("the foreign-key checks of a posting stay index lookups once transactions is large (00011)", async () => {
  const { b, transfer } = await walletPair();
  // Plans made while transactions is small; then it grows by 20,000 rows.
  for (let i = 0; i < 8; i++) expect((await transfer()).status).toBe(201);
  await h.sql`
    INSERT INTO transactions (type, status, wallet_id, direction, amount, currency, description, actor)
    SELECT 'ADJUSTMENT', 'COMPLETED', ${b.id}, 'credit', 1, 'USD', 'bulk', '{}' FROM generate_series(1, 20000)`;
  const before = { tx: await seqScans("transactions"), wallets: await seqScans("wallets") };
  // Each transfer checks its transaction for its two ledger entries and its idempotency record,
  // and its wallets for the transaction and the entries: without 00011, 20 full scans of
  // transactions here.
  for (let i = 0; i < 10; i++) expect((await transfer()).status).toBe(201);
  expect((await seqScans("transactions")) - before.tx).toBe(0);
  expect((await seqScans("wallets")) - before.wallets).toBe(0);
});

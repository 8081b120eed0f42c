// The database's own rules for the five tables a posting writes (migration 00010: one rules
// function per table instead of one CHECK constraint per rule). Every rule still refuses a row
// that breaks it, with check_violation (23514) naming the rule as its old CHECK did, and the
// refused statement changes nothing.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { ledgerSnapshot, type MoneyHarness, startMoneyHarness } from "./http.ts";

setDefaultTimeout(60_000);

let h: MoneyHarness;
let w: string; // a funded wallet
let v: string; // a second wallet
let tx: string; // a completed transfer w → v
beforeAll(async () => {
  h = await startMoneyHarness("pbcheckrules", 2);
  const a = await h.wallet({ balance: "1000" });
  const b = await h.wallet();
  w = a.id;
  v = b.id;
  const r = await h.call("POST", `/api/v1/wallets/${w}/transfer`, {
    token: a.token,
    body: { destination_wallet_id: v, amount: "1.00", description: "rules" },
  });
  expect(r.status).toBe(201);
  tx = r.body.transaction.id;
});
afterAll(async () => {
  await h.close();
});

type Case = [rule: string, statement: () => string];

const updateWallet = (set: string) => () => `UPDATE wallets SET ${set} WHERE id = '${w}'`;
const updateTx = (set: string) => () => `UPDATE transactions SET ${set} WHERE id = '${tx}'`;
type Columns = Record<string, string>;
/** An INSERT of a valid row of `table` (SQL expressions per column), with `cols` changed. */
const insert = (table: string, valid: () => Columns) => (cols: Columns) => (): string => {
  const row = { ...valid(), ...cols };
  return `INSERT INTO ${table} (${Object.keys(row).join(", ")}) VALUES (${Object.values(row).join(", ")})`;
};
const entry = insert("ledger_entries", () => ({
  transaction_id: `'${tx}'`,
  wallet_id: `'${w}'`,
  system_account: "NULL",
  currency: "'USD'",
  amount: "1",
  balance_after: "1",
}));
const event = insert("outbox", () => ({
  type: "'test.checked'",
  aggregate_type: "'wallet'",
  aggregate_id: "gen_random_uuid()",
  sequence: "1",
  data: "'{}'",
}));
const idem = insert("idempotency_keys", () => ({
  scope: "'rules'",
  key: "gen_random_uuid()::text",
  fingerprint: "'f'",
  status_code: "201",
  response_body: "'{}'",
}));

const cases: Case[] = [
  ["wallets_currency_check", updateWallet("currency = 'usd'")],
  ["wallets_kind_check", updateWallet("kind = 'gold'")],
  ["wallets_status_check", updateWallet("status = 'FROZEN'")],
  ["wallets_available_balance_check", updateWallet("available_balance = -1")],
  ["wallets_pending_balance_check", updateWallet("pending_balance = -1")],
  ["wallets_daily_limit_check", updateWallet("daily_limit = -1")],
  ["wallets_monthly_limit_check", updateWallet("monthly_limit = -1")],
  ["wallets_monthly_ge_daily", updateWallet("daily_limit = 10, monthly_limit = 5")],
  ["wallets_closed_empty", updateWallet("status = 'CLOSED', closed_at = now()")],
  ["wallets_closed_at", updateWallet("closed_at = now()")],
  ["transactions_type_check", updateTx("type = 'GIFT'")],
  ["transactions_status_check", updateTx("status = 'DONE'")],
  ["transactions_direction_check", updateTx("direction = 'sideways'")],
  ["transactions_amount_check", updateTx("amount = 0")],
  ["transactions_check", updateTx("captured_amount = amount + 1")],
  ["transactions_currency_check", updateTx("currency = 'usd'")],
  ["transactions_description_check", updateTx("description = repeat('x', 1001)")],
  ["transactions_external_reference_check", updateTx("external_reference = repeat('x', 256)")],
  ["transactions_metadata_check", updateTx(`metadata = '[]'`)],
  ["transactions_failure_reason_check", updateTx("failure_reason = repeat('x', 1001)")],
  ["transactions_retry_count_check", updateTx("retry_count = 4")],
  ["transactions_idempotency_key_check", updateTx("idempotency_key = ''")],
  ["transactions_transfer_dest", updateTx("destination_wallet_id = NULL")],
  ["transactions_not_self", updateTx("destination_wallet_id = wallet_id")],
  ["transactions_hold_expiry", updateTx("expires_at = now()")],
  ["transactions_capture_payout", updateTx("captured_amount = 1")],
  ["transactions_refund_original", updateTx("original_transaction_id = id")],
  ["transactions_pending_payout", updateTx("status = 'PENDING'")],
  ["ledger_entries_currency_check", entry({ currency: "'usd'" })],
  [
    "ledger_entries_system_account_check",
    entry({ wallet_id: "NULL", system_account: "'usd'", balance_after: "NULL" }),
  ],
  ["ledger_entries_amount_check", entry({ amount: "0" })],
  ["ledger_entries_one_account", entry({ wallet_id: "NULL", balance_after: "NULL" })],
  [
    "ledger_entries_system_currency",
    entry({ wallet_id: "NULL", system_account: "'EUR'", balance_after: "NULL" }),
  ],
  ["ledger_entries_wallet_balance", entry({ balance_after: "NULL" })],
  ["outbox_type_check", event({ type: "'NotAnEvent'" })],
  ["outbox_sequence_check", event({ sequence: "0" })],
  ["outbox_status_check", event({ status: "'LOST'" })],
  ["outbox_aggregate_type_check", event({ aggregate_type: "'account'" })],
  ["idempotency_keys_status_code_check", idem({ status_code: "100" })],
  ["idempotency_keys_scope_check", idem({ scope: "''" })],
  ["idempotency_keys_key_check", idem({ key: "repeat('k', 256)" })],
];

describe("a row that breaks a rule is refused with that rule's name, and nothing changes", () => {
  test.each(cases)("%s", async (rule, statement) => {
    const before = await ledgerSnapshot(h.sql);
    const err = await h.sql.unsafe(statement()).then(
      () => undefined,
      (e: unknown) => e as { code?: string; constraint_name?: string },
    );
    expect(err?.code).toBe("23514");
    expect(err?.constraint_name).toBe(rule);
    expect(await ledgerSnapshot(h.sql)).toBe(before);
  });
});

test("a rule that yields NULL holds, as in a CHECK constraint", async () => {
  // No limits at all (NULL daily and monthly limits), an entry of a system account (NULL wallet
  // and balance_after), an idempotency record without a transaction.
  await h.sql.unsafe(`UPDATE wallets SET daily_limit = NULL, monthly_limit = NULL WHERE id = '${w}'`);
  await h.sql.unsafe(
    entry({ wallet_id: "NULL", system_account: "'USD'", balance_after: "NULL", amount: "-1" })(),
  );
  await h.sql.unsafe(entry({ wallet_id: `'${w}'`, amount: "1" })());
  await h.sql.unsafe(idem({})());
});

test("each table a posting writes carries one CHECK constraint, not one per rule", async () => {
  // PostgreSQL re-reads and re-plans every CHECK of a table in each statement that writes it;
  // the rules live in one function per table (planned once per connection).
  const rows = await h.sql`
    SELECT conrelid::regclass::text AS t, count(*)::int AS n FROM pg_constraint
     WHERE contype = 'c' AND conrelid::regclass::text IN ('wallets', 'transactions', 'ledger_entries', 'outbox', 'idempotency_keys')
     GROUP BY 1 ORDER BY 1`;
  expect(rows.map((r) => `${r.t}:${r.n}`)).toEqual([
    "idempotency_keys:1",
    "ledger_entries:1",
    "outbox:1",
    "transactions:1",
    "wallets:1",
  ]);
});

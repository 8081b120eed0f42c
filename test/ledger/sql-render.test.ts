// The HTTP money path renders its response bodies and event data in PostgreSQL (migration
// 00006: pb_tx_json, pb_wallet_json, pb_movement, pb_problem) so that a posting is one
// statement. These must say exactly what the JS renderers say (src/ledger/render.ts,
// renderWallet, toProblem): every currency's exponent, amounts up to 2^63−1 minor units,
// nulls, escaping, millisecond timestamps.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import type { Sql } from "../../src/db/client.ts";
import { AppError, PROBLEM_TYPE_BASE, toProblem } from "../../src/http/errors.ts";
import { CURRENCIES, MAX_MINOR_UNITS } from "../../src/ledger/money.ts";
import { transactionJson, walletJson, walletMovementJson } from "../../src/ledger/render.ts";
import type { TransactionRow, WalletRow } from "../../src/ledger/types.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";

let db: TestDatabase;
let sql: Sql;
beforeAll(async () => {
  db = await createTestDatabase("pbsqlrender");
  sql = postgres(db.url, {
    max: 2,
    types: { bigint: postgres.BigInt },
    onnotice: () => {},
  }) as unknown as Sql;
});
afterAll(async () => {
  await sql?.end({ timeout: 5 });
  await db?.drop();
});

const AMOUNTS = [1n, 5n, 10n, 99n, 100n, 12_345n, 1_000_000_007n, MAX_MINOR_UNITS];

async function fixture(currency: string, amount: bigint) {
  const kind = ["BTC", "ETH", "USDT", "USDC"].includes(currency) ? "crypto" : "fiat";
  const [u] = await sql`
    INSERT INTO users (email, full_name, kyc_status)
    VALUES (${`${crypto.randomUUID()}@example.test`}, 'R', 'VERIFIED') RETURNING id`;
  const userId = (u as { id: string }).id;
  const [w] = await sql`
    INSERT INTO wallets (user_id, currency, kind, available_balance, pending_balance, daily_limit)
    VALUES (${userId}, ${currency}, ${kind}, ${amount.toString()}::bigint, 0, ${amount.toString()}::bigint)
    RETURNING id`;
  const walletId = (w as { id: string }).id;
  const [t] = await sql`
    INSERT INTO transactions (type, status, wallet_id, direction, amount, currency, description, metadata,
                              idempotency_key, actor, expires_at)
    VALUES ('PAYOUT', 'PENDING', ${walletId}, 'debit', ${amount.toString()}::bigint, ${currency},
            ${'quote " backslash \\ newline \n ü'}, '{"a":{"b":[1,"x"]}}'::jsonb, ${'k"\\ey'},
            '{"id":"admin-1","role":"admin"}'::jsonb, now() + interval '1 hour')
    RETURNING id`;
  return { walletId, txId: (t as { id: string }).id };
}

describe("SQL rendering equals the JS rendering", () => {
  for (const c of CURRENCIES) {
    test(`${c.code}: transaction, wallet and movement for amounts up to 2^63−1`, async () => {
      for (const amount of AMOUNTS) {
        const { walletId, txId } = await fixture(c.code, amount);
        const [row] = await sql`
          SELECT pb_tx_json(t) AS tx, pb_wallet_json(w) AS w, pb_movement(w, t.id, t.amount) AS m
          FROM transactions t JOIN wallets w ON w.id = t.wallet_id WHERE t.id = ${txId}`;
        const r = row as { tx: string; w: string; m: unknown };
        const [tRow] = await sql`SELECT * FROM transactions WHERE id = ${txId}`;
        const [wRow] = await sql`SELECT * FROM wallets WHERE id = ${walletId}`;
        const t = tRow as TransactionRow;
        const w = wRow as WalletRow;
        expect(JSON.parse(r.tx)).toEqual(transactionJson(t));
        // key order matters for humans reading the body: same as JSON.stringify's
        expect(Object.keys(JSON.parse(r.tx))).toEqual(Object.keys(transactionJson(t)));
        expect(JSON.parse(r.w)).toEqual(walletJson(w));
        expect(Object.keys(JSON.parse(r.w))).toEqual(Object.keys(walletJson(w)));
        expect(r.m).toEqual(walletMovementJson(w, t.id, t.amount));
      }
    });
  }

  test("a stored rejection's problem document equals toProblem", async () => {
    const titles = Object.fromEntries(
      [404, 409, 422].map((s) => [String(s), toProblem(new AppError("X", s, ""), "", "").title]),
    );
    const p = { problem_type_base: PROBLEM_TYPE_BASE, titles, instance: "/api/v1/x", request_id: "req-1" };
    const cases: AppError[] = [
      new AppError("WALLET_NOT_FOUND", 404, "Wallet not found."),
      new AppError("INSUFFICIENT_BALANCE", 422, 'The "available" balance does not cover this.'),
      new AppError("TRANSACTION_INVALID_TRANSITION", 409, "Cannot x.", undefined, undefined, {
        current_status: "FAILED",
      }),
    ];
    for (const e of cases) {
      const err = { error: e.code, status: e.status, detail: e.detail, extra: e.extra ?? null };
      const [row] =
        await sql`SELECT pb_problem(${JSON.stringify(p)}::text::jsonb, ${JSON.stringify(err)}::text::jsonb) AS b`;
      const body = (row as { b: string }).b;
      expect(JSON.parse(body)).toEqual(JSON.parse(JSON.stringify(toProblem(e, p.instance, p.request_id))));
    }
  });
});

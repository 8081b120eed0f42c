// The money routes through the HTTP API: shapes, idempotency (§3.1), holds, adjustments,
// lists, and the bad-input list of issue 4 — each answers its precise code AND changes nothing.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { ledgerSnapshot, type MoneyHarness, startMoneyHarness } from "./http.ts";

// Under a loaded CI machine a database-bound test may take a while; this is not a timing assertion.
setDefaultTimeout(60_000);

let h: MoneyHarness;
beforeAll(async () => {
  h = await startMoneyHarness("pbmoneyroutes", 6);
});
afterAll(async () => {
  await h.close();
});

const W = (id: string, action: string) => `/api/v1/wallets/${id}/${action}`;
const T = (id: string, action: string) => `/api/v1/transactions/${id}/${action}`;

describe("money movements", () => {
  test("credit, debit and transfer answer 201 with the transaction and wallets after the change", async () => {
    const a = await h.wallet({ balance: "100.00" });
    const b = await h.wallet();
    const d = await h.call("POST", W(a.id, "debit"), {
      token: a.token,
      body: { amount: "0.50", description: "atm" },
    });
    expect(d.status).toBe(201);
    expect(d.body.transaction).toMatchObject({
      type: "WITHDRAW",
      status: "COMPLETED",
      amount: "0.50",
      currency: "USD",
    });
    expect(d.body.transaction.actor).toEqual({ id: a.userId, role: "user" });
    expect(d.body.wallet).toMatchObject({ available_balance: "99.50", total_balance: "99.50" });
    const t = await h.call("POST", W(a.id, "transfer"), {
      token: a.token,
      body: { destination_wallet_id: b.id, amount: "9.50", description: "rent", metadata: { ref: 7 } },
    });
    expect(t.status).toBe(201);
    expect(t.body.source_wallet.available_balance).toBe("90.00");
    expect(t.body.destination_wallet.available_balance).toBe("9.50");
    expect(t.body.transaction.metadata).toEqual({ ref: 7 });
    // the receiver sees the incoming transfer, in its list and by id
    const list = await h.call("GET", "/api/v1/transactions?type=TRANSFER", { token: b.token });
    expect(list.body.data.map((x: { id: string }) => x.id)).toEqual([t.body.transaction.id]);
    expect(
      (await h.call("GET", `/api/v1/transactions/${t.body.transaction.id}`, { token: b.token })).status,
    ).toBe(200);
    // a stranger does not
    const c = await h.wallet();
    expect(
      (await h.call("GET", `/api/v1/transactions/${t.body.transaction.id}`, { token: c.token })).body.code,
    ).toBe("TRANSACTION_NOT_FOUND");
    // statement: balance_after per entry, newest first, paginated
    const e1 = await h.call("GET", `${W(a.id, "entries")}?limit=2`, { token: a.token });
    expect(e1.body.data.map((x: { amount: string }) => x.amount)).toEqual(["-9.50", "-0.50"]);
    expect(e1.body.data.map((x: { balance_after: string }) => x.balance_after)).toEqual(["90.00", "99.50"]);
    expect(e1.body.has_more).toBe(true);
    const e2 = await h.call("GET", `${W(a.id, "entries")}?limit=2&cursor=${e1.body.next_cursor}`, {
      token: a.token,
    });
    expect(e2.body.data.map((x: { amount: string }) => x.amount)).toEqual(["100.00"]);
    expect(e2.body.has_more).toBe(false);
    // period filter (half-open)
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const none = await h.call("GET", `${W(a.id, "transactions")}?created_from=${future}`, { token: a.token });
    expect(none.body.data).toEqual([]);
    expect((await h.call("GET", `${W(a.id, "entries")}?cursor=garbage`, { token: a.token })).status).toBe(
      400,
    );
  });

  test("adjustments: fee, refund within the original, adjustment both ways", async () => {
    const a = await h.wallet({ balance: "20.00" });
    const fee = await h.call("POST", W(a.id, "adjustments"), {
      body: { type: "FEE", amount: "1.00", description: "fee" },
    });
    expect(fee.status).toBe(201);
    expect(fee.body.wallet.available_balance).toBe("19.00");
    const refund = {
      type: "REFUND",
      amount: "0.60",
      description: "refund",
      original_transaction_id: fee.body.transaction.id,
    };
    expect((await h.call("POST", W(a.id, "adjustments"), { body: refund })).status).toBe(201);
    const over = await h.call("POST", W(a.id, "adjustments"), { body: refund });
    expect(over.status).toBe(422);
    expect(over.body.code).toBe("REFUND_EXCEEDS_ORIGINAL");
    const up = await h.call("POST", W(a.id, "adjustments"), {
      body: { type: "ADJUSTMENT", direction: "credit", amount: "5.00", description: "goodwill" },
    });
    expect(up.body.wallet.available_balance).toBe("24.60");
    const noDir = await h.call("POST", W(a.id, "adjustments"), {
      body: { type: "ADJUSTMENT", amount: "1.00", description: "x" },
    });
    expect(noDir.status).toBe(400);
    // admin only
    expect((await h.call("POST", W(a.id, "adjustments"), { token: a.token, body: refund })).status).toBe(403);
  });

  test("holds: partial capture, cancel, fail → retry (max 3), and the entries they write", async () => {
    const a = await h.wallet({ balance: "100.00" });
    const hold = await h.call("POST", W(a.id, "holds"), {
      token: a.token,
      body: { amount: "30.00", description: "payout" },
    });
    expect(hold.status).toBe(201);
    expect(hold.body.transaction).toMatchObject({ type: "PAYOUT", status: "PENDING" });
    expect(hold.body.transaction.expires_at).not.toBeNull();
    expect(hold.body.wallet).toMatchObject({
      available_balance: "70.00",
      pending_balance: "30.00",
      total_balance: "100.00",
    });
    const id = hold.body.transaction.id;
    const tooMuch = await h.call("POST", T(id, "complete"), { body: { amount: "30.01" } });
    expect(tooMuch.body.code).toBe("AMOUNT_EXCEEDS_HOLD");
    const done = await h.call("POST", T(id, "complete"), { body: { amount: "12.34" } });
    expect(done.status).toBe(200);
    expect(done.body.transaction).toMatchObject({ status: "COMPLETED", captured_amount: "12.34" });
    expect(done.body.wallet).toMatchObject({ available_balance: "87.66", pending_balance: "0.00" });
    const again = await h.call("POST", T(id, "cancel"), { token: a.token });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ code: "TRANSACTION_INVALID_TRANSITION", current_status: "COMPLETED" });

    const h2 = (
      await h.call("POST", W(a.id, "holds"), { token: a.token, body: { amount: "10.00", description: "p2" } })
    ).body.transaction.id;
    for (let i = 1; i <= 3; i++) {
      expect(
        (await h.call("POST", T(h2, "fail"), { body: { reason: "bank down" } })).body.transaction.status,
      ).toBe("FAILED");
      const retried = await h.call("POST", T(h2, "retry"), { token: a.token });
      expect(retried.status).toBe(200);
      expect(retried.body.transaction.retry_count).toBe(i);
    }
    expect((await h.call("POST", T(h2, "fail"), { body: { reason: "still down" } })).status).toBe(200);
    const fourth = await h.call("POST", T(h2, "retry"), { token: a.token });
    expect(fourth.body.code).toBe("RETRY_LIMIT_REACHED");
    const w = await h.call("GET", `${W(a.id, "entries")}`, { token: a.token });
    // deposit + captured 12.34 only: holds, failures, retries write no entries
    expect(w.body.data.map((x: { amount: string }) => x.amount)).toEqual(["-12.34", "100.00"]);
    const events = await h.sql`SELECT type FROM outbox WHERE aggregate_id = ${id} ORDER BY sequence`;
    expect(events.map((e) => (e as { type: string }).type)).toEqual([
      "transaction.created",
      "transaction.completed",
    ]);
  });
});

describe("idempotency", () => {
  test("replay is byte-identical with Idempotent-Replayed; another payload is 422; rejections replay", async () => {
    const a = await h.wallet({ balance: "10.00" });
    const body = { amount: "1.00", description: "coffee" };
    const first = await h.call("POST", W(a.id, "debit"), { token: a.token, key: "idem-1", body });
    const replay = await h.call("POST", W(a.id, "debit"), {
      token: a.token,
      key: "idem-1",
      body: { description: "coffee", amount: "1.00" },
    });
    expect(replay.status).toBe(201);
    expect(replay.text).toBe(first.text);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    expect(replay.headers.get("x-request-id")).not.toBe(first.headers.get("x-request-id"));
    const reused = await h.call("POST", W(a.id, "debit"), {
      token: a.token,
      key: "idem-1",
      body: { ...body, amount: "2.00" },
    });
    expect(reused.status).toBe(422);
    expect(reused.body.code).toBe("IDEMPOTENCY_KEY_REUSED");
    // the same key in another caller's scope is independent
    const admin = await h.call("POST", W(a.id, "debit"), { key: "idem-1", body });
    expect(admin.status).toBe(201);
    expect(admin.body.wallet.available_balance).toBe("8.00");
    // a business rejection is stored: topping up does not flip the replayed outcome
    const poor = await h.call("POST", W(a.id, "debit"), {
      token: a.token,
      key: "idem-2",
      body: { amount: "50.00", description: "tv" },
    });
    expect(poor.body.code).toBe("INSUFFICIENT_BALANCE");
    await h.call("POST", W(a.id, "credit"), { body: { amount: "100.00", description: "salary" } });
    const poorAgain = await h.call("POST", W(a.id, "debit"), {
      token: a.token,
      key: "idem-2",
      body: { amount: "50.00", description: "tv" },
    });
    expect(poorAgain.status).toBe(422);
    expect(poorAgain.text).toBe(poor.text);
    // a validation failure is not stored: the key stays usable
    const bad = await h.call("POST", W(a.id, "debit"), {
      token: a.token,
      key: "idem-3",
      body: { amount: "1.001", description: "x" },
    });
    expect(bad.status).toBe(400);
    const good = await h.call("POST", W(a.id, "debit"), {
      token: a.token,
      key: "idem-3",
      body: { amount: "1.00", description: "x" },
    });
    expect(good.status).toBe(201);
    // by-key: the caller's transaction
    const byKey = await h.call("GET", "/api/v1/transactions/by-key/idem-1", { token: a.token });
    expect(byKey.body.id).toBe(first.body.transaction.id);
    expect((await h.call("GET", "/api/v1/transactions/by-key/idem-2", { token: a.token })).status).toBe(404);
    const stranger = await h.wallet();
    expect(
      (await h.call("GET", "/api/v1/transactions/by-key/idem-1", { token: stranger.token })).status,
    ).toBe(404);
    const replays = (await h.metrics.idempotentReplays.get()).values[0]?.value ?? 0;
    expect(replays).toBeGreaterThanOrEqual(2);
  });

  test("the purge removes old records; by-key then answers 404", async () => {
    const a = await h.wallet({ balance: "5.00" });
    await h.call("POST", W(a.id, "debit"), {
      token: a.token,
      key: "old-key",
      body: { amount: "1.00", description: "x" },
    });
    await h.sql`UPDATE idempotency_keys SET created_at = now() - interval '200 hours' WHERE key = 'old-key'`;
    const { sweepOnce } = await import("../../src/ledger/hold-sweeper.ts");
    const r = await sweepOnce(h.sql, { idempotencyTtlHours: 168 });
    expect(r.purgedKeys).toBe(1);
    expect((await h.call("GET", "/api/v1/transactions/by-key/old-key", { token: a.token })).status).toBe(404);
  });
});

describe("list paging bounds", () => {
  test("limit outside 1–100 is 400 on `limit` for transaction and entry lists (found by the fuzzer)", async () => {
    const a = await h.wallet({ balance: "1.00" });
    for (const path of [
      "/api/v1/transactions",
      `/api/v1/wallets/${a.id}/transactions`,
      `/api/v1/wallets/${a.id}/entries`,
    ]) {
      for (const limit of ["-1", "0", "101"]) {
        const r = await h.call("GET", `${path}?limit=${limit}`, { token: a.token });
        expect([path, limit, r.status]).toEqual([path, limit, 400]);
        expect(r.body.errors[0].field).toBe("limit");
      }
      expect((await h.call("GET", `${path}?limit=100`, { token: a.token })).status).toBe(200);
    }
  });
});

describe("bad input changes nothing", () => {
  test("each bad request gets its precise code and leaves balances, entries and events as they were", async () => {
    const a = await h.wallet({ balance: "10.00" });
    const other = await h.wallet({ balance: "10.00" });
    const eur = await h.wallet({ currency: "EUR", balance: "1.00" });
    const closed = await h.wallet();
    await h.sql`UPDATE wallets SET status = 'CLOSED', closed_at = now() WHERE id = ${closed.id}`;
    const suspended = await h.wallet({ balance: "3.00" });
    await h.sql`UPDATE wallets SET status = 'SUSPENDED' WHERE id = ${suspended.id}`;
    const done = (
      await h.call("POST", W(a.id, "debit"), { token: a.token, body: { amount: "1.00", description: "x" } })
    ).body.transaction.id;
    const hold = (
      await h.call("POST", W(a.id, "holds"), { token: a.token, body: { amount: "2.00", description: "h" } })
    ).body.transaction.id;
    const used = "used-key";
    await h.call("POST", W(a.id, "debit"), {
      token: a.token,
      key: used,
      body: { amount: "0.01", description: "u" },
    });
    const d = (amount: unknown) => ({ amount, description: "bad" });
    const cases: [
      string,
      string,
      string,
      { token?: string; body?: unknown; key?: string | null },
      number,
      string,
    ][] = [
      [
        "too many decimals",
        "POST",
        W(a.id, "debit"),
        { token: a.token, body: d("1.001") },
        400,
        "VALIDATION_ERROR",
      ],
      ["zero", "POST", W(a.id, "debit"), { token: a.token, body: d("0.00") }, 400, "VALIDATION_ERROR"],
      ["negative", "POST", W(a.id, "debit"), { token: a.token, body: d("-1.00") }, 400, "VALIDATION_ERROR"],
      ["non-numeric", "POST", W(a.id, "debit"), { token: a.token, body: d("ten") }, 400, "VALIDATION_ERROR"],
      [
        "number instead of string",
        "POST",
        W(a.id, "debit"),
        { token: a.token, body: d(1) },
        400,
        "VALIDATION_ERROR",
      ],
      ["exponent", "POST", W(a.id, "credit"), { body: d("1e3") }, 400, "VALIDATION_ERROR"],
      [
        "above bigint",
        "POST",
        W(a.id, "credit"),
        { body: d("99999999999999999999") },
        400,
        "VALIDATION_ERROR",
      ],
      [
        "unknown field",
        "POST",
        W(a.id, "debit"),
        { token: a.token, body: { ...d("1.00"), extra: 1 } },
        400,
        "VALIDATION_ERROR",
      ],
      [
        "unknown wallet",
        "POST",
        W(crypto.randomUUID(), "debit"),
        { body: d("1.00") },
        404,
        "WALLET_NOT_FOUND",
      ],
      [
        "someone else's wallet",
        "POST",
        W(other.id, "debit"),
        { token: a.token, body: d("1.00") },
        404,
        "WALLET_NOT_FOUND",
      ],
      [
        "credit to a closed wallet",
        "POST",
        W(closed.id, "credit"),
        { body: d("1.00") },
        422,
        "WALLET_CLOSED",
      ],
      [
        "debit a suspended wallet",
        "POST",
        W(suspended.id, "debit"),
        { body: d("1.00") },
        422,
        "WALLET_NOT_ACTIVE",
      ],
      [
        "overdraft",
        "POST",
        W(a.id, "debit"),
        { token: a.token, body: d("100.00") },
        422,
        "INSUFFICIENT_BALANCE",
      ],
      [
        "transfer to self",
        "POST",
        W(a.id, "transfer"),
        { token: a.token, body: { ...d("1.00"), destination_wallet_id: a.id } },
        422,
        "SELF_TRANSFER",
      ],
      [
        "wrong currency",
        "POST",
        W(a.id, "transfer"),
        { token: a.token, body: { ...d("1.00"), destination_wallet_id: eur.id } },
        422,
        "CURRENCY_MISMATCH",
      ],
      [
        "unknown destination",
        "POST",
        W(a.id, "transfer"),
        { token: a.token, body: { ...d("1.00"), destination_wallet_id: crypto.randomUUID() } },
        422,
        "DESTINATION_WALLET_NOT_FOUND",
      ],
      [
        "transfer to a closed wallet",
        "POST",
        W(a.id, "transfer"),
        { token: a.token, body: { ...d("1.00"), destination_wallet_id: closed.id } },
        422,
        "WALLET_CLOSED",
      ],
      [
        "hold on someone else's wallet",
        "POST",
        W(other.id, "holds"),
        { token: a.token, body: d("1.00") },
        404,
        "WALLET_NOT_FOUND",
      ],
      [
        "hold expiry too short",
        "POST",
        W(a.id, "holds"),
        { token: a.token, body: { ...d("1.00"), expires_in_seconds: 59 } },
        400,
        "VALIDATION_ERROR",
      ],
      [
        "complete more than held",
        "POST",
        T(hold, "complete"),
        { body: { amount: "2.01" } },
        422,
        "AMOUNT_EXCEEDS_HOLD",
      ],
      [
        "complete a final transaction",
        "POST",
        T(done, "complete"),
        {},
        409,
        "TRANSACTION_INVALID_TRANSITION",
      ],
      [
        "retry a completed one",
        "POST",
        T(done, "retry"),
        { token: a.token },
        409,
        "TRANSACTION_INVALID_TRANSITION",
      ],
      [
        "cancel someone else's hold",
        "POST",
        T(hold, "cancel"),
        { token: other.token },
        404,
        "TRANSACTION_NOT_FOUND",
      ],
      ["user completes (admin only)", "POST", T(hold, "complete"), { token: a.token }, 403, "FORBIDDEN"],
      [
        "user credits (admin only)",
        "POST",
        W(a.id, "credit"),
        { token: a.token, body: d("1.00") },
        403,
        "FORBIDDEN",
      ],
      [
        "missing key",
        "POST",
        W(a.id, "debit"),
        { token: a.token, key: null, body: d("1.00") },
        400,
        "IDEMPOTENCY_KEY_REQUIRED",
      ],
      [
        "overlong key",
        "POST",
        W(a.id, "debit"),
        { token: a.token, key: "k".repeat(256), body: d("1.00") },
        400,
        "VALIDATION_ERROR",
      ],
      [
        "key with a space",
        "POST",
        W(a.id, "debit"),
        { token: a.token, key: "a b", body: d("1.00") },
        400,
        "VALIDATION_ERROR",
      ],
      [
        "reused key",
        "POST",
        W(a.id, "debit"),
        { token: a.token, key: used, body: d("0.02") },
        422,
        "IDEMPOTENCY_KEY_REUSED",
      ],
      ["malformed wallet id", "POST", W("not-a-uuid", "debit"), { body: d("1.00") }, 400, "VALIDATION_ERROR"],
    ];
    for (const [name, method, path, opts, status, code] of cases) {
      const before = await ledgerSnapshot(h.sql);
      const r = await h.call(method, path, opts);
      expect({ name, status: r.status, code: r.body.code }).toEqual({ name, status, code });
      expect(r.headers.get("content-type")).toStartWith("application/problem+json");
      expect(await ledgerSnapshot(h.sql)).toBe(before);
    }
  });
});

// Concurrency of the one money path, at service level against real PostgreSQL: opposite
// transfers never deadlock or lose updates; racing debits never overdraw and exactly the
// affordable number succeed; racing debits never exceed a daily limit; one idempotency key
// sent 20 times at once has exactly one effect.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { AppError } from "../../src/http/errors.ts";
import { type PostOutcome, post } from "../../src/ledger/postings.ts";
import {
  ADMIN,
  balances,
  counts,
  ledgerMismatches,
  makeWallet,
  unbalancedTransactions,
  useMoneyDb,
} from "./helpers.ts";

// Under a loaded CI machine a database-bound test may take a while; this is not a timing assertion.
setDefaultTimeout(60_000);

const m = useMoneyDb("pbmoneyconc", 16);

async function settle<T>(ps: Promise<T>[]) {
  const rs = await Promise.allSettled(ps);
  const errors = rs.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason);
  const values = rs
    .filter((r) => r.status === "fulfilled")
    .map((r) => (r as PromiseFulfilledResult<T>).value);
  return { values, errors };
}

const codeOf = (o: PostOutcome) => (o.kind === "rejected" ? o.error.code : o.kind);

describe("concurrency", () => {
  test("opposite transfers A→B and B→A in parallel: no deadlock error, no lost update", async () => {
    const a = await makeWallet(m.sql, { balance: 1_000_000n });
    const b = await makeWallet(m.sql, { balance: 1_000_000n });
    const N = 60;
    const ops: Promise<PostOutcome>[] = [];
    for (let i = 0; i < N; i++) {
      ops.push(
        post(m.sql, ADMIN, {
          op: "transfer",
          walletId: a.walletId,
          destinationWalletId: b.walletId,
          amount: 100n,
          description: "a→b",
        }),
      );
      ops.push(
        post(m.sql, ADMIN, {
          op: "transfer",
          walletId: b.walletId,
          destinationWalletId: a.walletId,
          amount: 70n,
          description: "b→a",
        }),
      );
    }
    const { values, errors } = await settle(ops);
    expect(errors).toEqual([]);
    expect(values.map(codeOf).filter((k) => k !== "posted")).toEqual([]);
    const ba = await balances(m.sql, a.walletId);
    const bb = await balances(m.sql, b.walletId);
    expect(ba.available).toBe(1_000_000n - BigInt(N) * 100n + BigInt(N) * 70n);
    expect(bb.available).toBe(1_000_000n + BigInt(N) * 100n - BigInt(N) * 70n);
    expect(ba.available + bb.available).toBe(2_000_000n);
    expect(await ledgerMismatches(m.sql)).toBe(0);
    expect(await unbalancedTransactions(m.sql)).toBe(0);
  });

  test("50 parallel debits racing for a balance covering 23: exactly 23 succeed, never negative", async () => {
    const w = await makeWallet(m.sql, { balance: 23_500n });
    const before = await counts(m.sql);
    const ops = Array.from({ length: 50 }, () =>
      post(m.sql, ADMIN, {
        op: "move",
        type: "WITHDRAW",
        direction: "debit",
        walletId: w.walletId,
        amount: 1_000n,
        description: "race",
      }),
    );
    const { values, errors } = await settle(ops);
    expect(errors).toEqual([]);
    const kinds = values.map(codeOf);
    expect(kinds.filter((k) => k === "posted").length).toBe(23);
    expect(kinds.filter((k) => k === "INSUFFICIENT_BALANCE").length).toBe(27);
    expect((await balances(m.sql, w.walletId)).available).toBe(500n);
    const after = await counts(m.sql);
    expect(after.tx - before.tx).toBe(23);
    expect(after.entries - before.entries).toBe(46);
    expect(await ledgerMismatches(m.sql)).toBe(0);
  });

  test("parallel debits racing a daily limit: the limit is never exceeded", async () => {
    // limit 100.00, 30 debits of 7.00 → 14 fit (98.00), 16 refused
    const w = await makeWallet(m.sql, { balance: 1_000_000n, dailyLimit: 10_000n });
    const ops = Array.from({ length: 30 }, () =>
      post(m.sql, ADMIN, {
        op: "move",
        type: "WITHDRAW",
        direction: "debit",
        walletId: w.walletId,
        amount: 700n,
        description: "limit race",
      }),
    );
    const { values, errors } = await settle(ops);
    expect(errors).toEqual([]);
    const kinds = values.map(codeOf);
    expect(kinds.filter((k) => k === "posted").length).toBe(14);
    expect(kinds.filter((k) => k === "DAILY_LIMIT_EXCEEDED").length).toBe(16);
    const [r] =
      await m.sql`SELECT sum(amount)::bigint AS s FROM transactions WHERE wallet_id = ${w.walletId} AND type = 'WITHDRAW'`;
    expect((r as { s: bigint }).s).toBe(9_800n);
  });

  test("mixed holds and transfers racing a monthly limit and the balance", async () => {
    const w = await makeWallet(m.sql, { balance: 50_000n, monthlyLimit: 20_000n });
    const dst = await makeWallet(m.sql);
    const ops: Promise<PostOutcome>[] = [];
    for (let i = 0; i < 15; i++) {
      ops.push(
        post(m.sql, ADMIN, {
          op: "hold",
          walletId: w.walletId,
          amount: 1_500n,
          description: "h",
          expiresInSeconds: 3600,
        }),
      );
      ops.push(
        post(m.sql, ADMIN, {
          op: "transfer",
          walletId: w.walletId,
          destinationWalletId: dst.walletId,
          amount: 1_500n,
          description: "t",
        }),
      );
    }
    const { values, errors } = await settle(ops);
    expect(errors).toEqual([]);
    const posted = values.filter((o) => o.kind === "posted").length;
    expect(posted).toBe(13); // 13 × 15.00 = 195.00 ≤ 200.00
    expect(
      values
        .map(codeOf)
        .filter((k) => k !== "posted")
        .every((k) => k === "MONTHLY_LIMIT_EXCEEDED"),
    ).toBe(true);
    const b = await balances(m.sql, w.walletId);
    expect(b.available + b.pending + (await balances(m.sql, dst.walletId)).available).toBe(50_000n);
    expect(await ledgerMismatches(m.sql)).toBe(0);
  });

  test("the same idempotency key 20 times in parallel: one effect", async () => {
    const w = await makeWallet(m.sql, { balance: 100_000n });
    const before = await counts(m.sql);
    let rendered = 0;
    const claim = {
      scope: "user-x",
      key: `k-${crypto.randomUUID()}`,
      fingerprint: "fp-1",
      respond: () => {
        rendered++;
        return { status: 201, body: `{"n":${rendered}}` };
      },
    };
    const ops = Array.from({ length: 20 }, () =>
      post(
        m.sql,
        ADMIN,
        {
          op: "move",
          type: "WITHDRAW",
          direction: "debit",
          walletId: w.walletId,
          amount: 1_000n,
          description: "once",
        },
        { idempotency: claim },
      ),
    );
    const { values, errors } = await settle(ops);
    const posted = values.filter((o) => o.kind === "posted");
    expect(posted.length).toBe(1);
    // every other attempt either replayed the stored body or was told the key is in flight
    for (const v of values) if (v.kind === "replayed") expect(v.response.body).toBe('{"n":1}');
    for (const e of errors) {
      expect(e).toBeInstanceOf(AppError);
      expect((e as AppError).code).toBe("IDEMPOTENCY_KEY_IN_USE");
      expect((e as AppError).headers?.["Retry-After"]).toBeDefined();
    }
    expect(values.length + errors.length).toBe(20);
    expect((await balances(m.sql, w.walletId)).available).toBe(99_000n);
    const after = await counts(m.sql);
    expect(after.tx - before.tx).toBe(1);
    expect(after.idem - before.idem).toBe(1);
    // once settled, the key replays
    const again = await post(
      m.sql,
      ADMIN,
      {
        op: "move",
        type: "WITHDRAW",
        direction: "debit",
        walletId: w.walletId,
        amount: 1_000n,
        description: "once",
      },
      { idempotency: claim },
    );
    expect(again.kind).toBe("replayed");
  });
});

// Group commit of HTTP postings (src/ledger/batcher.ts, migration 00012): postings that queue
// behind a busy lane are committed together, each with exactly the outcome, response,
// idempotency record, entries and events it gets alone; crossing batches never deadlock; a
// batch the database refuses (or a schema without the batch function) costs its other postings
// nothing; one idempotency key never shares a batch.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import upSql from "../../migrations/sql/00012_posting_batches.up.sql" with { type: "text" };
import { AppError } from "../../src/http/errors.ts";
import { idempotencyClaim } from "../../src/http/idempotency.ts";
import { PostingBatcher } from "../../src/ledger/batcher.ts";
import {
  type IdempotencyClaim,
  type MoneyOp,
  type PostOutcome,
  post,
  postingParams,
} from "../../src/ledger/postings.ts";
import {
  ADMIN,
  balances,
  ledgerMismatches,
  makeWallet,
  unbalancedTransactions,
  useMoneyDb,
} from "./helpers.ts";

setDefaultTimeout(60_000);

const m = useMoneyDb("pbbatch", 8);

/** An HTTP claim as the money routes build it (the database renders the response). */
function claim(key = crypto.randomUUID(), fingerprint = "fp"): IdempotencyClaim {
  const request = new Request("http://localhost/api/v1/test", { method: "POST" });
  return idempotencyClaim(request, { id: "admin-1", role: "admin" }, key, fingerprint, {
    status: 201,
    render: () => ({}),
  });
}

const transfer = (from: string, to: string, amount: bigint): MoneyOp => ({
  op: "transfer",
  walletId: from,
  destinationWalletId: to,
  amount,
  description: "batched",
});

/** Starts all postings in the same tick, so all but the first queue behind the single lane. */
function postAll(batcher: PostingBatcher, ops: { op: MoneyOp; idem: IdempotencyClaim }[]) {
  return Promise.allSettled(
    ops.map(({ op, idem }) => post(m.sql, ADMIN, op, { idempotency: idem, batcher })),
  );
}

const kindOf = (r: PromiseSettledResult<PostOutcome>) =>
  r.status === "rejected"
    ? `error:${r.reason instanceof AppError ? r.reason.code : String(r.reason)}`
    : r.value.kind === "stored"
      ? `${r.value.response.status}`
      : r.value.kind;

type Body = {
  code?: string;
  transaction: { id: string; amount: string };
  source_wallet: { id: string; available_balance: string };
  destination_wallet: { id: string; available_balance: string };
};
/** The stored response body of a posting settled by the database. */
function bodyOf(r: PromiseSettledResult<PostOutcome>): Body {
  if (r.status !== "fulfilled" || r.value.kind !== "stored")
    throw new Error(`not a stored response: ${kindOf(r)}`);
  return JSON.parse(r.value.response.body) as Body;
}

async function rowCounts(walletIds: string[]) {
  const [r] = await m.sql`
    SELECT (SELECT count(*) FROM ledger_entries WHERE wallet_id = ANY(${walletIds}::uuid[]))::int AS entries,
           (SELECT count(*) FROM outbox WHERE aggregate_id = ANY(${walletIds}::uuid[]))::int AS wallet_events,
           (SELECT count(*) FROM idempotency_keys)::int AS records`;
  return r as { entries: number; wallet_events: number; records: number };
}

describe("group commit of HTTP postings", () => {
  test("queued postings commit together, each with its own response, entries and events", async () => {
    const a = await makeWallet(m.sql, { balance: 10_000n });
    const b = await makeWallet(m.sql, { balance: 10_000n });
    const before = await rowCounts([a.walletId, b.walletId]);
    const batcher = new PostingBatcher(m.sql, { lanes: 1, maxBatch: 16 });
    const ops = Array.from({ length: 12 }, (_, i) => ({
      op: i % 2 === 0 ? transfer(a.walletId, b.walletId, 100n) : transfer(b.walletId, a.walletId, 30n),
      idem: claim(),
    }));
    const results = await postAll(batcher, ops);

    expect(results.map(kindOf)).toEqual(Array(12).fill("201"));
    // The first went alone (the lane was free), the other eleven queued and went as one.
    expect(batcher.stats).toEqual({ statements: 2, batches: 1, batchedPostings: 11, fallbacks: 0 });
    expect((await balances(m.sql, a.walletId)).available).toBe(10_000n - 6n * 100n + 6n * 30n);
    expect((await balances(m.sql, b.walletId)).available).toBe(10_000n + 6n * 100n - 6n * 30n);
    const after = await rowCounts([a.walletId, b.walletId]);
    expect(after.entries - before.entries).toBe(24);
    expect(after.wallet_events - before.wallet_events).toBe(24);
    expect(after.records - before.records).toBe(12);
    // Each response is that posting's own: its amount, and A's balance right after it, in
    // request order (100.00 − 1.00 + 0.30 − 1.00 ...).
    const bodies = results.map(bodyOf);
    expect(bodies.map((x) => x.transaction.amount)).toEqual(
      ops.map((_, i) => (i % 2 === 0 ? "1.00" : "0.30")),
    );
    expect(new Set(bodies.map((x) => x.transaction.id)).size).toBe(12);
    const aAfter = bodies.map(
      (x, i) => (i % 2 === 0 ? x.source_wallet : x.destination_wallet).available_balance,
    );
    expect(aAfter).toEqual(
      ops.map((_, i) =>
        ((10_000 - Math.ceil((i + 1) / 2) * 100 + Math.floor((i + 1) / 2) * 30) / 100).toFixed(2),
      ),
    );
    expect(await ledgerMismatches(m.sql)).toBe(0);
    expect(await unbalancedTransactions(m.sql)).toBe(0);
  });

  test("a rejected posting in a batch is stored as its own rejection; the others are posted", async () => {
    const a = await makeWallet(m.sql, { balance: 500n });
    const b = await makeWallet(m.sql, { balance: 0n });
    const batcher = new PostingBatcher(m.sql, { lanes: 1, maxBatch: 16 });
    const results = await postAll(batcher, [
      { op: transfer(a.walletId, b.walletId, 100n), idem: claim() },
      { op: transfer(a.walletId, b.walletId, 300n), idem: claim() },
      { op: transfer(a.walletId, b.walletId, 300n), idem: claim() }, // only 100 left
      { op: transfer(a.walletId, a.walletId, 1n), idem: claim() }, // to itself
      { op: transfer(a.walletId, b.walletId, 100n), idem: claim() },
    ]);
    expect(results.map(kindOf)).toEqual(["201", "201", "422", "422", "201"]);
    expect(batcher.stats.batches).toBe(1);
    const problems = results.filter((r) => kindOf(r) === "422").map((r) => bodyOf(r).code);
    expect(problems).toEqual(["INSUFFICIENT_BALANCE", "SELF_TRANSFER"]);
    expect((await balances(m.sql, a.walletId)).available).toBe(0n);
    expect((await balances(m.sql, b.walletId)).available).toBe(500n);
  });

  test("a batch the database refuses rolls back whole; each posting then runs alone and gets its own answer", async () => {
    const a = await makeWallet(m.sql, { balance: 1_000n });
    const b = await makeWallet(m.sql, { balance: 0n });
    // A CHECK rule breaks only inside the one posting whose description is too long for the
    // transactions table: it raises, so its batch cannot commit.
    const long = { ...transfer(a.walletId, b.walletId, 5n), description: "x".repeat(1001) } as MoneyOp;
    const batcher = new PostingBatcher(m.sql, { lanes: 1, maxBatch: 16 });
    const before = await rowCounts([a.walletId, b.walletId]);
    const results = await postAll(batcher, [
      { op: transfer(a.walletId, b.walletId, 10n), idem: claim() },
      { op: transfer(a.walletId, b.walletId, 20n), idem: claim() },
      { op: long, idem: claim() },
      { op: transfer(a.walletId, b.walletId, 40n), idem: claim() },
    ]);
    expect(batcher.stats.fallbacks).toBe(1);
    expect(batcher.stats.batches).toBe(0);
    const kinds = results.map(kindOf);
    expect(kinds[0]).toBe("201");
    expect(kinds[1]).toBe("201");
    expect(kinds[2]).toStartWith("error:");
    expect(kinds[3]).toBe("201");
    expect((await balances(m.sql, a.walletId)).available).toBe(1_000n - 70n);
    const after = await rowCounts([a.walletId, b.walletId]);
    expect(after.entries - before.entries).toBe(6);
    expect(after.records - before.records).toBe(3);
  });

  test("one idempotency key sent 10 times at once never shares a batch: one effect, the rest replay or wait", async () => {
    const a = await makeWallet(m.sql, { balance: 1_000n });
    const b = await makeWallet(m.sql, { balance: 0n });
    const batcher = new PostingBatcher(m.sql, { lanes: 1, maxBatch: 16 });
    const key = crypto.randomUUID();
    const others = Array.from({ length: 5 }, () => ({
      op: transfer(a.walletId, b.walletId, 1n),
      idem: claim(),
    }));
    const same = Array.from({ length: 10 }, () => ({
      op: transfer(a.walletId, b.walletId, 100n),
      idem: claim(key),
    }));
    const results = await postAll(batcher, [...same.slice(0, 5), ...others, ...same.slice(5)]);
    const kinds = results.map(kindOf);
    const sameKinds = [...kinds.slice(0, 5), ...kinds.slice(10)];
    expect(sameKinds.filter((k) => k === "201")).toHaveLength(1);
    expect(
      sameKinds.every((k) => k === "201" || k === "replayed" || k === "error:IDEMPOTENCY_KEY_IN_USE"),
    ).toBe(true);
    expect(kinds.slice(5, 10)).toEqual(Array(5).fill("201"));
    // The ten copies went in ten different statements.
    expect(batcher.stats.statements).toBeGreaterThanOrEqual(10);
    expect((await balances(m.sql, b.walletId)).available).toBe(100n + 5n);
  });

  test("crossing batches on four lanes never deadlock: 400 random transfers among 6 wallets, totals kept", async () => {
    const wallets = await Promise.all(
      Array.from({ length: 6 }, () => makeWallet(m.sql, { balance: 5_000n })),
    );
    const ids = wallets.map((w) => w.walletId);
    const batcher = new PostingBatcher(m.sql, { lanes: 4, maxBatch: 8 });
    const ops = Array.from({ length: 400 }, () => {
      const i = Math.floor(Math.random() * 6);
      const j = (i + 1 + Math.floor(Math.random() * 5)) % 6;
      return { op: transfer(ids[i]!, ids[j]!, BigInt(1 + Math.floor(Math.random() * 400))), idem: claim() };
    });
    const results = await postAll(batcher, ops);
    const kinds = results.map(kindOf);
    expect(kinds.filter((k) => k !== "201" && k !== "422")).toEqual([]);
    expect(batcher.stats.batches).toBeGreaterThan(0);
    expect(batcher.stats.fallbacks).toBe(0);
    let total = 0n;
    for (const id of ids) {
      const bal = (await balances(m.sql, id)).available;
      expect(bal).toBeGreaterThanOrEqual(0n);
      total += bal;
    }
    expect(total).toBe(6n * 5_000n);
    expect(await ledgerMismatches(m.sql)).toBe(0);
    expect(await unbalancedTransactions(m.sql)).toBe(0);
  });

  test("a lane sends its next batch before the postings it answered go on", async () => {
    const a = await makeWallet(m.sql, { balance: 1_000n });
    const b = await makeWallet(m.sql, { balance: 0n });
    // What the lane does, in order: each statement it sends, each answer its callers get.
    const log: string[] = [];
    const spy = ((...args: Parameters<typeof m.sql>) => {
      log.push("statement");
      return m.sql(...args);
    }) as unknown as typeof m.sql;
    const batcher = new PostingBatcher(spy, { lanes: 1, maxBatch: 16 });
    await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        batcher
          .post(
            postingParams(ADMIN, transfer(a.walletId, b.walletId, 10n), { idempotency: claim() }),
            `k${i}`,
          )
          .then(() => {
            log.push("answered");
          }),
      ),
    );
    // The first went alone; the other three queued and went as one batch, which was already on
    // its way when the first posting's caller heard back (its rendering and response no longer
    // stand between two statements of the lane).
    expect(log).toEqual(["statement", "statement", "answered", "answered", "answered", "answered"]);
    expect((await balances(m.sql, b.walletId)).available).toBe(40n);
  });

  test("a server ahead of its schema (no pb_post_http_batch yet) still answers every posting, alone", async () => {
    const a = await makeWallet(m.sql, { balance: 1_000n });
    const b = await makeWallet(m.sql, { balance: 0n });
    await m.sql.unsafe("DROP FUNCTION pb_post_http_batch(jsonb)");
    try {
      const batcher = new PostingBatcher(m.sql, { lanes: 1, maxBatch: 16 });
      const results = await postAll(
        batcher,
        Array.from({ length: 5 }, () => ({ op: transfer(a.walletId, b.walletId, 10n), idem: claim() })),
      );
      expect(results.map(kindOf)).toEqual(Array(5).fill("201"));
      expect(batcher.stats.fallbacks).toBe(1);
      expect((await balances(m.sql, b.walletId)).available).toBe(50n);
    } finally {
      await m.sql.unsafe(upSql);
    }
  });

  test("the database accepts only postings whose wallets the request names", async () => {
    const hold = JSON.stringify({ op: "complete", transaction_id: crypto.randomUUID(), idem_key: "k" });
    const refund = JSON.stringify({
      op: "move",
      original_transaction_id: crypto.randomUUID(),
      idem_key: "k",
    });
    const noKey = JSON.stringify({ op: "transfer" });
    for (const p of [hold, refund, noKey]) {
      const err = await m.sql`SELECT * FROM pb_post_http_batch(${`[${p}]`}::text::jsonb)`.catch((e) => e);
      expect(String(err.message)).toContain("only transfers and plain credits/debits");
    }
  });
});

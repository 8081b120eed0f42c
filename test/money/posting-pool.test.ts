// serve's posting lanes run on connections of their own (src/db/client.ts createServePools):
// DB_POOL_MAX in all, POSTING_LANES of them for the batched postings, at least one for the
// rest. So a pool full of slow reads does not hold up a transfer, and lanes blocked on a
// wallet's row lock do not hold up a read. Both tests fail with the lanes in the shared pool.
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import postgres from "postgres";
import { loadConfig } from "../../src/config.ts";
import { createServePools, postingLaneCount } from "../../src/db/client.ts";
import { connectionsInUse, poolTracker } from "../../src/observability/db-metrics.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import { type MoneyHarness, startMoneyHarness } from "./http.ts";

setDefaultTimeout(60_000);

/** Long enough for any posting here to finish many times over; a liveness bound, not a timing. */
const STUCK_MS = 10_000;

function within<T>(p: Promise<T>, what: string): Promise<T> {
  return Promise.race([
    p,
    Bun.sleep(STUCK_MS).then(() => {
      throw new Error(`${what}: still waiting after ${STUCK_MS} ms`);
    }),
  ]);
}

const configWith = (env: Record<string, string>) =>
  loadConfig({ DATABASE_URL: "postgres://127.0.0.1:1/none", PAYBRIDGE_ENV: "test", ...env }, "serve");

describe("how DB_POOL_MAX is split", () => {
  test.each([
    ["10", "2", 2],
    ["4", "2", 2],
    ["4", "5", 3],
    ["2", "2", 1],
    ["1", "2", 0],
  ])("DB_POOL_MAX=%s POSTING_LANES=%s: %i lanes of their own", (pool, lanes, expected) => {
    expect(postingLaneCount(configWith({ DB_POOL_MAX: pool, POSTING_LANES: lanes }))).toBe(expected);
  });

  test("the two pools report as one of DB_POOL_MAX connections", async () => {
    const config = configWith({ DB_POOL_MAX: "6", POSTING_LANES: "2" });
    const pools = createServePools(config, { applicationName: "t", metrics: createMetrics() });
    const { sql, postings } = pools;
    try {
      expect(postings?.lanes).toBe(2);
      expect(postings?.sql).not.toBe(sql);
      const t = poolTracker(sql);
      expect(t?.max).toBe(6);
      expect(poolTracker(postings!.sql)).toBe(t);
      expect(connectionsInUse(t!)).toBe(0);
    } finally {
      await pools.end(0);
    }
  });

  test("with DB_POOL_MAX=1 postings share the one connection", () => {
    const pools = createServePools(configWith({ DB_POOL_MAX: "1" }), { applicationName: "t" });
    expect(pools.postings).toBeUndefined();
    return pools.end(0);
  });
});

describe("postings and reads do not queue behind each other", () => {
  let h: MoneyHarness | undefined;
  let holder: postgres.Sql | undefined;
  afterEach(async () => {
    await holder?.end({ timeout: 1 });
    holder = undefined;
    await h?.close();
    h = undefined;
  });

  test("a transfer completes while every other connection waits on slow reads", async () => {
    h = await startMoneyHarness("pbpostpool", 4);
    const a = await h.wallet({ balance: 10_000n });
    const b = await h.wallet();
    holder = postgres(h.db.url, { max: 1 });
    const LOCK = 424_242;
    await holder`SELECT pg_advisory_lock(${LOCK})`;
    // As many blocked reads as the whole pool: every connection of the general pool waits, the
    // rest queue for one (in a single pool of 4 they would take the lanes' connections too).
    const reads = Array.from({ length: 4 }, () =>
      h!.sql`SELECT pg_advisory_lock_shared(${LOCK}) AS x`.then(() => "read"),
    );
    await Bun.sleep(200);
    try {
      const r = await within(
        h.call("POST", `/api/v1/wallets/${a.id}/transfer`, {
          body: { destination_wallet_id: b.id, amount: "25.00", description: "past the reads" },
        }),
        "transfer behind blocked reads",
      );
      expect(r.status).toBe(201);
      expect(r.body.destination_wallet.available_balance).toBe("25.00");
    } finally {
      await holder`SELECT pg_advisory_unlock(${LOCK})`;
      await Promise.all(reads);
    }
  });

  test("a read answers while every posting lane waits on a locked wallet", async () => {
    // DB_POOL_MAX=2: one lane, one connection for the rest (a shared pool gave both to postings).
    h = await startMoneyHarness("pbpostpool", 2);
    const a = await h.wallet({ balance: 10_000n });
    const b = await h.wallet();
    holder = postgres(h.db.url, { max: 1 });
    const release = Promise.withResolvers<void>();
    const locked = Promise.withResolvers<void>();
    const tx = holder.begin(async (t) => {
      await t`SELECT id FROM wallets WHERE id = ${b.id} FOR UPDATE`;
      locked.resolve();
      await release.promise;
    });
    await locked.promise;
    // More transfers than lanes, all waiting for the row lock (or for a lane).
    const transfers = Array.from({ length: 3 }, () =>
      h!.call("POST", `/api/v1/wallets/${a.id}/transfer`, {
        body: { destination_wallet_id: b.id, amount: "1.00", description: "behind the lock" },
      }),
    );
    await Bun.sleep(200);
    try {
      const r = await within(h.call("GET", `/api/v1/wallets/${a.id}`), "read behind blocked postings");
      expect(r.status).toBe(200);
      expect(r.body.available_balance).toBe("10000.00");
    } finally {
      release.resolve();
      await tx;
    }
    const done = await Promise.all(transfers);
    expect(done.map((x) => x.status)).toEqual([201, 201, 201]);
    const after = await h.call("GET", `/api/v1/wallets/${b.id}`);
    expect(after.body.available_balance).toBe("3.00");
  });
});

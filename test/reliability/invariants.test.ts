// The invariant checker itself (issue 9): green on a database the binary wrote through the
// careful client, and red — naming the broken invariant — when that database is tampered
// with behind the service's back. Plus the pure pieces: seeded workload, expected balances,
// fault plan, soak flatness.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes, randomUUID } from "node:crypto";
import postgres from "postgres";
import { type Bank, expectedBalances, type OpRecord, runOp, setupBank } from "../../scripts/harness/bank.ts";
import { CarefulClient, mintToken, ownerClients } from "../../scripts/harness/client.ts";
import { faultPlan } from "../../scripts/harness/faults.ts";
import {
  acknowledgedChecks,
  type CheckResult,
  databaseChecks,
  reconciliationCheck,
} from "../../scripts/harness/invariants.ts";
import { type Binary, privateBinary, type ServeHandle, startServe } from "../../scripts/harness/processes.ts";
import { createRng } from "../../scripts/harness/rng.ts";
import { flatness, type Sample } from "../../scripts/harness/soak-run.ts";
import { createWorkload, type Workload } from "../../scripts/harness/workload.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";

const SETUP_TIMEOUT_MS = 180_000;
const TEST_TIMEOUT_MS = 60_000;
const OPS = 120;

let db: TestDatabase;
let bin: Binary;
let serve: ServeHandle;
let sql: postgres.Sql;
let client: CarefulClient;
let wl: Workload;
let bank: Bank;
const records: OpRecord[] = [];

const failed = (results: CheckResult[]) => results.filter((r) => !r.ok).map((r) => r.name);
const allChecks = async () => [
  ...(await databaseChecks(sql)),
  ...(await acknowledgedChecks(sql, wl.wallets, bank, records)),
  await reconciliationCheck(client),
];

beforeAll(async () => {
  db = await createTestDatabase("pbreliab");
  bin = privateBinary();
  const secret = randomBytes(32).toString("hex");
  serve = await startServe(bin, {
    DATABASE_URL: db.url,
    JWT_SECRET: secret,
    PAYBRIDGE_ENV: "test",
    RATE_LIMIT_ENABLED: "false",
    OUTBOX_RELAY: "off",
    LOG_LEVEL: "warn",
    RECONCILE_INTERVAL_SECONDS: "0",
  });
  sql = postgres(db.url, { max: 2, onnotice: () => {} });
  client = new CarefulClient(serve.baseUrl, await mintToken(secret, "invariants-admin", "admin"));
  wl = createWorkload(42, 3);
  bank = await setupBank(client, wl);
  const owners = await ownerClients(serve.baseUrl, secret, bank.userIds, client.stats, 0);
  for (let i = 0; i < OPS; i++) records.push(await runOp(client, wl, bank, wl.opAt(i), 30_000, owners));
}, SETUP_TIMEOUT_MS);

afterAll(async () => {
  await serve?.proc.kill();
  await sql?.end({ timeout: 2 });
  await db?.drop();
  bin?.cleanup();
});

describe("invariant checker against the binary's own writes", () => {
  test(
    "every invariant holds after a clean run",
    async () => {
      const results = await allChecks();
      expect(failed(results)).toEqual([]);
      expect(results.length).toBeGreaterThanOrEqual(12);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "a client record the database does not back is caught (acknowledged but absent, rejected but present)",
    async () => {
      const ok = records.find((r) => r.op.kind === "credit" && r.sent[0]?.outcome.kind === "ok")!;
      const forged: OpRecord = {
        op: { ...ok.op, i: 999_999 } as OpRecord["op"],
        sent: [{ ...ok.sent[0]!, key: "never-sent-key" }],
      };
      const asRejected: OpRecord = {
        op: ok.op,
        sent: [
          {
            ...ok.sent[0]!,
            outcome: {
              kind: "rejected",
              attempts: 1,
              answer: { status: 422, body: {}, replayed: false, contentType: "" },
            },
          },
        ],
      };
      const results = await acknowledgedChecks(sql, wl.wallets, bank, [
        ...records.filter((r) => r !== ok),
        forged,
        asRejected,
      ]);
      expect(failed(results)).toContain(
        "every acknowledged operation present exactly once (by idempotency key)",
      );
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "an outbox event of a change that never committed is caught",
    async () => {
      await sql`INSERT INTO outbox (type, aggregate_type, aggregate_id, sequence, data)
              VALUES ('transaction.created', 'transaction', ${randomUUID()}, 1, '{}'::jsonb)`;
      expect(failed(await databaseChecks(sql))).toContain(
        "no outbox event refers to a missing (rolled-back) change",
      );
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "a balance changed behind the ledger's back fails the wallet, conservation and reconciliation checks",
    async () => {
      await sql`UPDATE wallets SET available_balance = available_balance + 1 WHERE id = ${bank.walletIds[0]!}`;
      const names = failed(await allChecks());
      expect(names).toContain("each wallet: available + pending = sum of its entries");
      expect(names).toContain("each wallet's balances equal its acknowledged operations");
      expect(names).toContain(
        "money conserved per currency (deposits − withdrawals = sum of balances = −system account)",
      );
      expect(names).toContain("/admin/reconciliation is ok");
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "an unbalanced ledger entry is caught",
    async () => {
      const [t] = await sql<{ id: string }[]>`SELECT id FROM transactions LIMIT 1`;
      await sql`INSERT INTO ledger_entries (transaction_id, system_account, currency, amount)
              VALUES (${t!.id}, 'USD', 'USD', 1)`;
      expect(failed(await databaseChecks(sql))).toContain(
        "ledger sums to zero per currency (system accounts included)",
      );
    },
    TEST_TIMEOUT_MS,
  );
});

describe("pure pieces", () => {
  test("the same seed gives the same workload; another seed another one", () => {
    const a = createWorkload(7, 10);
    const b = createWorkload(7, 10);
    const c = createWorkload(8, 10);
    const ops = (w: Workload) =>
      JSON.stringify(
        Array.from({ length: 200 }, (_, i) => w.opAt(i)),
        (_, v) => (typeof v === "bigint" ? v.toString() : v),
      );
    expect(ops(a)).toBe(ops(b));
    expect(ops(a)).not.toBe(ops(c));
    expect(a.keyOf(3)).toBe(b.keyOf(3));
    for (let i = 0; i < 200; i++) {
      const op = a.opAt(i);
      if (op.kind === "transfer") {
        expect(op.to).not.toBe(op.w);
        expect(a.wallets[op.to]!.currency).toBe(a.wallets[op.w]!.currency);
      }
    }
  });

  test("expected balances follow only acknowledged outcomes", () => {
    const ok = {
      kind: "ok" as const,
      attempts: 1,
      answer: { status: 201, body: {}, replayed: false, contentType: "" },
    };
    const no = {
      kind: "rejected" as const,
      attempts: 1,
      answer: { status: 422, body: {}, replayed: false, contentType: "" },
    };
    const s = (label: OpRecord["sent"][number]["label"], outcome: typeof ok | typeof no) => ({
      label,
      method: "POST" as const,
      path: "",
      body: {},
      key: label,
      outcome,
      via: client,
    });
    const recs: OpRecord[] = [
      { op: { i: -1, kind: "fund", w: 0, amount: 1000n }, sent: [s("fund", ok)] },
      {
        op: { i: 0, kind: "transfer", w: 0, to: 1, amount: 100n, byOwner: false },
        sent: [s("transfer", ok)],
      },
      { op: { i: 1, kind: "debit", w: 0, amount: 5000n, byOwner: true }, sent: [s("debit", no)] },
      {
        op: {
          i: 2,
          kind: "hold",
          w: 0,
          amount: 50n,
          followUp: { action: "partial", capture: 20n },
          byOwner: false,
        },
        sent: [s("hold", ok), s("partial", ok)],
      },
      {
        op: { i: 3, kind: "hold", w: 1, amount: 30n, followUp: { action: "leave" }, byOwner: true },
        sent: [s("hold", ok)],
      },
    ];
    expect(expectedBalances(2, recs)).toEqual([
      { available: 880n, pending: 0n },
      { available: 70n, pending: 30n },
    ]);
    const unknown: OpRecord = {
      op: { i: 4, kind: "credit", w: 1, amount: 1n },
      sent: [{ ...s("credit", ok), outcome: { kind: "unknown", attempts: 3, lastError: "x" } }],
    };
    expect(expectedBalances(2, [...recs, unknown])).toBeUndefined();
  });

  test("the fault plan uses every kind in turn, deterministically", () => {
    const kinds = ["serve-kill", "pg-restart", "pg-terminate", "relay-kill"] as const;
    const p1 = faultPlan(12, kinds, createRng(5));
    expect(p1).toEqual(faultPlan(12, kinds, createRng(5)));
    for (const k of kinds) expect(p1.filter((x) => x === k).length).toBe(3);
  });

  test("soak flatness: steady is flat, a leak is not", () => {
    const mk = (rss: number[], p99: number[]): Sample[] =>
      rss.map((r, i) => ({
        at: i * 10,
        rssMiB: r,
        lagP99Ms: 1,
        poolInUse: 1,
        poolMax: 10,
        p99Ms: p99[i]!,
        reqPerSec: 100,
      }));
    expect(flatness(mk([100, 102, 101, 103, 101, 102], [20, 22, 21, 20, 23, 21]))).toMatchObject({
      memory: true,
      latency: true,
    });
    expect(flatness(mk([100, 140, 180, 220, 260, 300], [20, 22, 21, 20, 23, 21])).memory).toBe(false);
    expect(flatness(mk([100, 100, 100, 100, 100, 100], [20, 20, 40, 80, 160, 320])).latency).toBe(false);
  });
});

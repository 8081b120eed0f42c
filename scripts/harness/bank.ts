// Drives the workload against a running serve through the careful client: setup (users, KYC,
// wallets, funding) and the money operations, recording every request and its outcome. The
// expected balances are then derived from the acknowledged outcomes only (`expectedBalances`).
import type { CarefulClient, Outcome } from "./client.ts";
import {
  amountString,
  FUNDING_UNITS,
  type Op,
  SHORTEST_HOLD_EXPIRY_SECONDS,
  type Workload,
} from "./workload.ts";

const API = "/api/v1";
/** Setup requests run before any fault; they still get a generous deadline. */
const SETUP_DEADLINE_MS = 120_000;
const SETUP_CONCURRENCY = 6;

export type Sent = {
  label: "credit" | "debit" | "transfer" | "hold" | "complete" | "partial" | "cancel" | "fund";
  method: "POST";
  path: string;
  body: Record<string, unknown>;
  key: string;
  outcome: Outcome;
  /** who sent it: a retry must come from the same caller (idempotency keys are per caller) */
  via: CarefulClient;
};
export type OpRecord = { op: Op | { i: number; kind: "fund"; w: number; amount: bigint }; sent: Sent[] };

export type Bank = { walletIds: string[]; userIds: string[]; funding: OpRecord[] };

/** Runs `fn` over 0..n-1 with at most `width` in flight. */
export async function pool(n: number, width: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, n) }, worker));
}

async function must(
  client: CarefulClient,
  method: string,
  path: string,
  body: unknown,
  okStatuses: number[],
) {
  const o = await client.send(method, path, body, undefined, SETUP_DEADLINE_MS);
  if (o.kind === "unknown") throw new Error(`setup ${method} ${path}: ${o.lastError}`);
  if (!okStatuses.includes(o.answer.status)) {
    throw new Error(
      `setup ${method} ${path}: HTTP ${o.answer.status} ${JSON.stringify(o.answer.body).slice(0, 300)}`,
    );
  }
  return o.answer;
}

/** Users (verified), one wallet per (user, currency), each funded by an idempotent credit. */
export async function setupBank(client: CarefulClient, wl: Workload): Promise<Bank> {
  const userIds: string[] = new Array(wl.users);
  await pool(wl.users, SETUP_CONCURRENCY, async (u) => {
    const email = `u${u}-s${wl.seed}@chaos.example`;
    const created = await must(
      client,
      "POST",
      `${API}/users`,
      { email, full_name: `Chaos User ${u}` },
      [201, 409],
    );
    let id = (created.body as { id?: string }).id;
    if (created.status === 409) {
      const list = await must(
        client,
        "GET",
        `${API}/users?email=${encodeURIComponent(email)}`,
        undefined,
        [200],
      );
      id = (list.body as { data: { id: string }[] }).data[0]?.id;
    }
    if (id === undefined) throw new Error(`setup: no id for user ${u}`);
    userIds[u] = id;
    await must(client, "POST", `${API}/users/${id}/kyc/start`, undefined, [200, 409]);
    await must(client, "POST", `${API}/users/${id}/kyc`, { approved: true }, [200, 409]);
  });
  const walletIds: string[] = new Array(wl.wallets.length);
  await pool(wl.wallets.length, SETUP_CONCURRENCY, async (w) => {
    const spec = wl.wallets[w]!;
    const userId = userIds[spec.userIndex]!;
    const a = await must(
      client,
      "POST",
      `${API}/wallets`,
      { currency: spec.currency, user_id: userId },
      [201, 409],
    );
    let id = (a.body as { id?: string }).id;
    if (a.status === 409) {
      const list = await must(
        client,
        "GET",
        `${API}/wallets?user_id=${userId}&currency=${spec.currency}&status=ACTIVE`,
        undefined,
        [200],
      );
      id = (list.body as { data: { id: string }[] }).data[0]?.id;
    }
    if (id === undefined) throw new Error(`setup: no id for wallet ${w}`);
    walletIds[w] = id;
  });
  const funding: OpRecord[] = new Array(wl.wallets.length);
  await pool(wl.wallets.length, SETUP_CONCURRENCY, async (w) => {
    const spec = wl.wallets[w]!;
    const amount = FUNDING_UNITS * spec.scale;
    const body = { amount: amountString(amount, spec.currency), description: `funding ${w}` };
    const key = wl.keyOf(w, "-fund");
    const path = `${API}/wallets/${walletIds[w]}/credit`;
    const outcome = await client.send("POST", path, body, key, SETUP_DEADLINE_MS);
    if (outcome.kind !== "ok")
      throw new Error(`setup: funding wallet ${w} failed: ${JSON.stringify(outcome)}`);
    funding[w] = {
      op: { i: -1 - w, kind: "fund", w, amount },
      sent: [{ label: "fund", method: "POST", path, body, key, outcome, via: client }],
    };
  });
  return { walletIds, userIds, funding };
}

/** Sends one op (a hold and its follow-up are sent in sequence by the same worker). */
/**
 * `owners` (one client per user, tokens of role user) sends the ops marked byOwner, except
 * `complete`, which is admin-only; without it everything goes through the admin client.
 */
export async function runOp(
  admin: CarefulClient,
  wl: Workload,
  bank: Bank,
  op: Op,
  deadlineMs: number,
  owners?: CarefulClient[],
): Promise<OpRecord> {
  const spec = wl.wallets[op.w]!;
  const amount = amountString(op.amount, spec.currency);
  const description = `chaos ${op.kind} ${op.i}`;
  const rec: OpRecord = { op, sent: [] };
  const owner = op.kind !== "credit" && op.byOwner ? owners?.[spec.userIndex] : undefined;
  const send = async (label: Sent["label"], path: string, body: Record<string, unknown>, key: string) => {
    const via = label === "complete" || label === "partial" ? admin : (owner ?? admin);
    const outcome = await via.send("POST", path, body, key, deadlineMs);
    const s: Sent = { label, method: "POST", path, body, key, outcome, via };
    rec.sent.push(s);
    return s;
  };
  const walletPath = `${API}/wallets/${bank.walletIds[op.w]}`;
  switch (op.kind) {
    case "credit":
    case "debit":
      await send(op.kind, `${walletPath}/${op.kind}`, { amount, description }, wl.keyOf(op.i));
      break;
    case "transfer":
      await send(
        "transfer",
        `${walletPath}/transfer`,
        { destination_wallet_id: bank.walletIds[op.to], amount, description },
        wl.keyOf(op.i),
      );
      break;
    case "hold": {
      const expiry =
        op.followUp.action === "expire" ? { expires_in_seconds: SHORTEST_HOLD_EXPIRY_SECONDS } : {};
      const hold = await send(
        "hold",
        `${walletPath}/holds`,
        { amount, description, ...expiry },
        wl.keyOf(op.i),
      );
      if (hold.outcome.kind !== "ok") break;
      const txId = (hold.outcome.answer.body as { transaction: { id: string } }).transaction.id;
      const t = op.followUp;
      switch (t.action) {
        case "complete":
          await send("complete", `${API}/transactions/${txId}/complete`, {}, wl.keyOf(op.i, "-complete"));
          break;
        case "partial":
          await send(
            "partial",
            `${API}/transactions/${txId}/complete`,
            { amount: amountString(t.capture, spec.currency) },
            wl.keyOf(op.i, "-complete"),
          );
          break;
        case "cancel":
          await send("cancel", `${API}/transactions/${txId}/cancel`, {}, wl.keyOf(op.i, "-cancel"));
          break;
        case "expire":
        case "leave":
          break;
        default: {
          const never: never = t;
          throw new Error(`unknown follow-up ${String(never)}`);
        }
      }
      break;
    }
    default: {
      const never: never = op;
      throw new Error(`unknown op ${String(never)}`);
    }
  }
  return rec;
}

/**
 * After the faults stop, a careful client still owes itself an answer for every request whose
 * outcome it never learned: it sends it again, same key and body, until the service answers.
 */
export async function resolveUnknown(records: OpRecord[], deadlineMs: number): Promise<number> {
  let resolved = 0;
  const pending = records.flatMap((r) => r.sent.filter((s) => s.outcome.kind === "unknown"));
  await pool(pending.length, 8, async (i) => {
    const s = pending[i]!;
    const o = await s.via.send(s.method, s.path, s.body, s.key, deadlineMs);
    if (o.kind !== "unknown") resolved++;
    s.outcome = o;
  });
  return resolved;
}

export type Expected = { available: bigint; pending: bigint };

/**
 * Balances implied by the acknowledged outcomes alone (plus which short-expiry holds the
 * service's sweeper has cancelled, by their idempotency key). Undefined when an outcome is unknown.
 */
export function expectedBalances(
  walletCount: number,
  records: OpRecord[],
  expiredHoldKeys: ReadonlySet<string> = new Set(),
): Expected[] | undefined {
  const e: Expected[] = Array.from({ length: walletCount }, () => ({ available: 0n, pending: 0n }));
  for (const r of records) {
    if (r.sent.some((s) => s.outcome.kind === "unknown")) return undefined;
    const ok = (label: Sent["label"]) => r.sent.find((s) => s.label === label)?.outcome.kind === "ok";
    const op = r.op;
    switch (op.kind) {
      case "fund":
      case "credit":
        if (ok(op.kind)) e[op.w]!.available += op.amount;
        break;
      case "debit":
        if (ok("debit")) e[op.w]!.available -= op.amount;
        break;
      case "transfer":
        if (ok("transfer")) {
          e[op.w]!.available -= op.amount;
          e[op.to]!.available += op.amount;
        }
        break;
      case "hold":
        if (!ok("hold")) break;
        e[op.w]!.available -= op.amount;
        e[op.w]!.pending += op.amount;
        if (ok("complete")) e[op.w]!.pending -= op.amount;
        else if (ok("partial") && op.followUp.action === "partial") {
          e[op.w]!.pending -= op.amount;
          e[op.w]!.available += op.amount - op.followUp.capture;
        } else if (ok("cancel") || (op.followUp.action === "expire" && expiredHoldKeys.has(r.sent[0]!.key))) {
          e[op.w]!.pending -= op.amount;
          e[op.w]!.available += op.amount;
        }
        break;
      default: {
        const never: never = op;
        throw new Error(`unknown op ${String(never)}`);
      }
    }
  }
  return e;
}

// THE money path. Every balance change — credit, debit, transfer, fee, refund, adjustment,
// hold, complete (full or partial), fail, cancel, retry, expiry — goes through `post`, which
// runs ONE database transaction:
//
//   BEGIN
//   SELECT pb_post(op)         -- idempotency claim + lookup, row locks in global order,
//                              -- status/KYC/funds/limit checks, balances, transaction row,
//                              -- balanced ledger entries (plpgsql, migration 00006)
//   appendEvents(...) ‖ INSERT idempotency_keys   -- pipelined: one round trip
//   COMMIT
//
// Row locks are held from inside pb_post until COMMIT: two client round trips. That window
// bounds hot-wallet throughput, which is why the checks and writes live in one server-side
// call instead of a dozen statements. Deadlocks (40P01) and serialization failures (40001)
// rerun the whole transaction (bounded, jittered); clients never see them.
import type { RequestScope } from "../context.ts";
import type { Sql, TxSql } from "../db/client.ts";
import { isRetryable } from "../db/errors.ts";
import {
  AppError,
  ConflictError,
  type FieldError,
  UnprocessableError,
  ValidationError,
} from "../http/errors.ts";
import type { Metrics } from "../observability/metrics.ts";
import { appendEvents, type NewEvent } from "../outbox/events.ts";
import { formatAmount } from "./money.ts";
import { transactionJson, walletMovementJson } from "./render.ts";
import { type Direction, type TransactionRow, txFromJson, type WalletRow, walletFromJson } from "./types.ts";

/** Attempts of one posting before a deadlock/serialization failure is given up (→ 503). */
export const MAX_POSTING_ATTEMPTS = 5;
/** Upper bound of the random pause before attempt n is n × this. */
export const POSTING_RETRY_JITTER_MS = 10;
/** What a client is told to wait when the same idempotency key is still in flight. */
export const IDEMPOTENCY_IN_FLIGHT_RETRY_AFTER_SECONDS = 1;

export type MoveType = "DEPOSIT" | "WITHDRAW" | "FEE" | "REFUND" | "ADJUSTMENT";

type Details = { description: string; metadata?: Record<string, unknown> };
export type MoneyOp =
  | (Details & {
      op: "move";
      type: MoveType;
      direction: Direction;
      walletId: string;
      amount: bigint;
      externalReference?: string | null;
      originalTransactionId?: string | null;
    })
  | (Details & { op: "transfer"; walletId: string; destinationWalletId: string; amount: bigint })
  | (Details & { op: "hold"; walletId: string; amount: bigint; expiresInSeconds: number })
  | { op: "complete"; transactionId: string; amount?: bigint }
  | { op: "fail"; transactionId: string; reason: string }
  | { op: "cancel"; transactionId: string; reason?: string | null }
  | { op: "retry"; transactionId: string }
  /** Without transactionId: the oldest expired hold not locked by another sweeper. */
  | { op: "expire"; transactionId?: string }
  /** An outcome decided before any lock (e.g. unknown wallet), stored like any other. */
  | { op: "reject"; error: AppError };

export type PostingResult = { transaction: TransactionRow; wallets: WalletRow[] };
export type StoredResponse = { status: number; body: string };
export type Settled = { ok: true; result: PostingResult } | { ok: false; error: AppError };

export type IdempotencyClaim = {
  scope: string;
  key: string;
  fingerprint: string;
  /** Renders the response stored (and returned) for this outcome; called inside the transaction. */
  respond: (outcome: Settled) => StoredResponse;
};

export type PostOptions = {
  /** Set for a `user` caller: wallets/transactions of other users answer 404. */
  ownerId?: string;
  idempotency?: IdempotencyClaim;
  metrics?: Metrics;
};

export type PostOutcome =
  | { kind: "posted"; result: PostingResult; response?: StoredResponse }
  | { kind: "rejected"; error: AppError; response?: StoredResponse }
  | { kind: "replayed"; response: StoredResponse }
  | { kind: "none" };

/** Business outcomes that are stored and replayed (SPEC §3.1); 400s are not. */
export const STORED_REJECTION_STATUSES: ReadonlySet<number> = new Set([404, 409, 422]);

export async function post(
  sql: Sql,
  scope: RequestScope,
  op: MoneyOp,
  opts: PostOptions = {},
): Promise<PostOutcome> {
  for (let attempt = 1; ; attempt++) {
    try {
      const outcome = await sql.begin((tx) => postInTransaction(tx, scope, op, opts));
      if (outcome.kind === "posted" && opts.metrics !== undefined)
        countPosted(opts.metrics, outcome.result.transaction);
      return outcome;
    } catch (err) {
      if (!isRetryable(err) || attempt >= MAX_POSTING_ATTEMPTS) throw err;
      await Bun.sleep(Math.random() * POSTING_RETRY_JITTER_MS * attempt);
    }
  }
}

/** `post` for service-level callers: a business rejection is thrown as its AppError. */
export async function postOrThrow(
  sql: Sql,
  scope: RequestScope,
  op: MoneyOp,
  opts: PostOptions = {},
): Promise<PostingResult> {
  const out = await post(sql, scope, op, opts);
  switch (out.kind) {
    case "posted":
      return out.result;
    case "rejected":
      throw out.error;
    case "replayed":
    case "none":
      throw new Error(`postOrThrow: unexpected ${out.kind}`);
    default: {
      const never: never = out;
      throw new Error(`unknown outcome ${String(never)}`);
    }
  }
}

async function postInTransaction(
  tx: TxSql,
  scope: RequestScope,
  op: MoneyOp,
  opts: PostOptions,
): Promise<PostOutcome> {
  const idem = opts.idempotency;
  const params = {
    ...toParams(op),
    owner_id: opts.ownerId ?? null,
    actor: { id: scope.actor.id, role: scope.actor.role },
    idempotency_key: idem?.key ?? null,
    idem_scope: idem?.scope ?? null,
    idem_key: idem?.key ?? null,
    idem_fingerprint: idem?.fingerprint ?? null,
  };
  const [row] = await tx`SELECT pb_post(${JSON.stringify(params)}::text::jsonb) AS r`;
  const r = (row as { r: Record<string, unknown> }).r;

  switch (r.idem) {
    case "in_use":
      throw new ConflictError(
        "IDEMPOTENCY_KEY_IN_USE",
        "A request with this Idempotency-Key is still in progress. Retry later.",
        undefined,
        { "Retry-After": String(IDEMPOTENCY_IN_FLIGHT_RETRY_AFTER_SECONDS) },
      );
    case "reused":
      throw new UnprocessableError(
        "IDEMPOTENCY_KEY_REUSED",
        "This Idempotency-Key was already used with a different request.",
      );
    case "replay":
      return { kind: "replayed", response: { status: Number(r.status), body: String(r.body) } };
  }
  if (r.none === true) return { kind: "none" };

  if (typeof r.error === "string") {
    const error = rejectionError(r);
    // Validation failures are not stored; the transaction rolls back.
    if (!STORED_REJECTION_STATUSES.has(error.status)) throw error;
    let response: StoredResponse | undefined;
    if (idem !== undefined) {
      response = idem.respond({ ok: false, error });
      await storeIdempotency(tx, idem, response, null);
    }
    return { kind: "rejected", error, response };
  }

  const result: PostingResult = {
    transaction: txFromJson(r.transaction as Record<string, unknown>),
    wallets: (r.wallets as Record<string, unknown>[]).map(walletFromJson),
  };
  const events = eventsFor(op, result, scope);
  let response: StoredResponse | undefined;
  if (idem !== undefined) {
    response = idem.respond({ ok: true, result });
    // Pipelined: both statements leave in one round trip while the row locks are held.
    await Promise.all([
      appendEvents(tx, events),
      storeIdempotency(tx, idem, response, result.transaction.id),
    ]);
  } else {
    await appendEvents(tx, events);
  }
  return { kind: "posted", result, response };
}

function toParams(op: MoneyOp): Record<string, unknown> {
  switch (op.op) {
    case "move":
      return {
        op: "move",
        type: op.type,
        direction: op.direction,
        wallet_id: op.walletId,
        amount: op.amount.toString(),
        description: op.description,
        metadata: op.metadata ?? {},
        external_reference: op.externalReference ?? null,
        original_transaction_id: op.originalTransactionId ?? null,
      };
    case "transfer":
      return {
        op: "transfer",
        wallet_id: op.walletId,
        destination_wallet_id: op.destinationWalletId,
        amount: op.amount.toString(),
        description: op.description,
        metadata: op.metadata ?? {},
      };
    case "hold":
      return {
        op: "hold",
        wallet_id: op.walletId,
        amount: op.amount.toString(),
        description: op.description,
        metadata: op.metadata ?? {},
        expires_in_seconds: op.expiresInSeconds,
      };
    case "complete":
      return { op: "complete", transaction_id: op.transactionId, amount: op.amount?.toString() ?? null };
    case "fail":
      return { op: "fail", transaction_id: op.transactionId, reason: op.reason };
    case "cancel":
      return { op: "cancel", transaction_id: op.transactionId, reason: op.reason ?? null };
    case "retry":
      return { op: "retry", transaction_id: op.transactionId };
    case "expire":
      return { op: "expire", transaction_id: op.transactionId ?? null };
    case "reject":
      return { op: "reject", code: op.error.code, status: op.error.status, detail: op.error.detail };
    default: {
      const never: never = op;
      throw new Error(`unknown op ${String(never)}`);
    }
  }
}

/** A pb_reject object → the AppError a client sees. */
function rejectionError(r: Record<string, unknown>): AppError {
  const code = String(r.error);
  const status = Number(r.status);
  const detail = String(r.detail);
  const extra = (r.extra ?? undefined) as Record<string, unknown> | undefined;
  if (status === 400) {
    const fields = (extra?.errors as FieldError[] | undefined) ?? [];
    return new ValidationError(fields, detail);
  }
  return new AppError(code, status, detail, undefined, undefined, extra);
}

function storeIdempotency(
  tx: TxSql,
  idem: IdempotencyClaim,
  res: StoredResponse,
  transactionId: string | null,
) {
  return tx`
    INSERT INTO idempotency_keys (scope, key, fingerprint, status_code, response_body, transaction_id)
    VALUES (${idem.scope}, ${idem.key}, ${idem.fingerprint}, ${res.status}, ${res.body}, ${transactionId})`;
}

/** The outbox events of SPEC §2.5, in order, for a successful posting. */
export function eventsFor(op: MoneyOp, result: PostingResult, scope: RequestScope): NewEvent[] {
  const t = result.transaction;
  const base = { actor: scope.actor, traceId: scope.traceId };
  const txEvent = (type: NewEvent["type"]): NewEvent => ({
    ...base,
    type,
    aggregateType: "transaction",
    aggregateId: t.id,
    data: transactionJson(t),
  });
  const walletEvent = (
    type: "wallet.credited" | "wallet.debited",
    w: WalletRow,
    amount: bigint,
  ): NewEvent => ({
    ...base,
    type,
    aggregateType: "wallet",
    aggregateId: w.id,
    data: walletMovementJson(w, t.id, amount),
  });
  const [first, second] = result.wallets;
  if (first === undefined) throw new Error("posting returned no wallet");
  switch (op.op) {
    case "move":
      return [
        txEvent("transaction.created"),
        walletEvent(op.direction === "credit" ? "wallet.credited" : "wallet.debited", first, t.amount),
        txEvent("transaction.completed"),
      ];
    case "transfer":
      if (second === undefined) throw new Error("transfer returned one wallet");
      return [
        txEvent("transaction.created"),
        walletEvent("wallet.debited", first, t.amount),
        walletEvent("wallet.credited", second, t.amount),
        txEvent("transaction.completed"),
      ];
    case "hold":
      return [txEvent("transaction.created")];
    case "complete":
      return [
        walletEvent("wallet.debited", first, t.captured_amount ?? t.amount),
        txEvent("transaction.completed"),
      ];
    case "fail":
      return [txEvent("transaction.failed")];
    case "cancel":
    case "expire":
      return [txEvent("transaction.cancelled")];
    case "retry":
      return [txEvent("transaction.retried")];
    case "reject":
      return [];
    default: {
      const never: never = op;
      throw new Error(`unknown op ${String(never)}`);
    }
  }
}

function countPosted(metrics: Metrics, t: TransactionRow): void {
  metrics.businessTransactions.inc({ type: t.type, status: t.status, currency: t.currency });
  if (t.status === "COMPLETED") {
    // Major units as a float for the histogram only; the exact value never depends on it.
    metrics.businessAmount.observe(
      { type: t.type, currency: t.currency },
      Number(formatAmount(t.captured_amount ?? t.amount, t.currency)),
    );
  }
}

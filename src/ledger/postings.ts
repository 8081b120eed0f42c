// THE money path. Every balance change — credit, debit, transfer, fee, refund, adjustment,
// hold, complete (full or partial), fail, cancel, retry, expiry — goes through `post`, which
// calls pb_post / pb_post_http (plpgsql, migration 00006): idempotency claim + lookup, row
// locks in global order, status/KYC/funds/limit checks, balances, transaction row, balanced
// ledger entries and the outbox events, all in ONE statement.
//
// Row locks are held only while that statement runs; lock hold time is what bounds hot-wallet
// throughput, so no client round trip happens while rows are locked:
//
//   HTTP claim (claim.http)      SELECT pb_post_http(op)  -- also renders the response body and
//                                                         -- stores the idempotency record;
//                                                         -- auto-committed: one round trip
//   HTTP claims queued behind    SELECT pb_post_http_batch(ops)  -- the same for each posting,
//   busy lanes (batcher.ts)                               -- one transaction for all of them
//   no idempotency               SELECT pb_post(op)       -- auto-committed: one round trip
//   JS-rendered claim (respond)  BEGIN; SELECT pb_post(op); INSERT idempotency_keys; COMMIT
//
// A single statement is atomic on its own. Deadlocks (40P01) and serialization failures
// (40001) rerun the whole posting (bounded, jittered); clients never see them.
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
import { type HttpRow, type PostingBatcher, postHttpAlone } from "./batcher.ts";
import { formatAmount } from "./money.ts";
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

/**
 * An HTTP money request's response, rendered by the database (pb_post_http): the success body
 * is `{transaction, wallet}` or, for a transfer, `{transaction, source_wallet,
 * destination_wallet}` (SPEC §3.2), in the shapes of src/ledger/render.ts; a stored rejection
 * is the problem document of `toProblem`.
 */
export type HttpRender = {
  successStatus: number;
  /** Problem `instance` and `request_id` of a stored rejection. */
  instance: string;
  requestId: string;
  /** PROBLEM_TYPE_BASE and the titles of the stored statuses (src/http/errors.ts). */
  problemTypeBase: string;
  titles: Readonly<Record<string, string>>;
};

export type IdempotencyClaim = {
  scope: string;
  key: string;
  fingerprint: string;
  /** Renders the response stored (and returned) for this outcome; called inside the transaction. */
  respond: (outcome: Settled) => StoredResponse;
  /** When set, the database renders the response instead: one statement, no BEGIN/COMMIT. */
  http?: HttpRender;
};

export type PostOptions = {
  /** Set for a `user` caller: wallets/transactions of other users answer 404. */
  ownerId?: string;
  idempotency?: IdempotencyClaim;
  metrics?: Metrics;
  /**
   * Group commit for HTTP postings (src/ledger/batcher.ts). Used for transfers and plain
   * credits/debits, whose wallets the request names; everything else runs alone.
   */
  batcher?: PostingBatcher;
};

export type PostOutcome =
  | { kind: "posted"; result: PostingResult; response?: StoredResponse }
  | { kind: "rejected"; error: AppError; response?: StoredResponse }
  | { kind: "replayed"; response: StoredResponse }
  /** An HTTP claim's first outcome (posted or stored rejection), rendered by the database. */
  | { kind: "stored"; posted: boolean; response: StoredResponse }
  | { kind: "none" };

/** Business outcomes that are stored and replayed (SPEC §3.1); 400s are not. */
export const STORED_REJECTION_STATUSES: ReadonlySet<number> = new Set([404, 409, 422]);

export async function post(
  sql: Sql,
  scope: RequestScope,
  op: MoneyOp,
  opts: PostOptions = {},
): Promise<PostOutcome> {
  const idem = opts.idempotency;
  const params = postingParams(scope, op, opts);
  for (let attempt = 1; ; attempt++) {
    try {
      if (idem?.http !== undefined) {
        const batcher = batchable(op) ? opts.batcher : undefined;
        const row =
          batcher === undefined
            ? await postHttpAlone(sql, params)
            : await batcher.post(params, `${idem.scope}\u0000${idem.key}`);
        return httpOutcome(row, opts.metrics);
      }
      const outcome =
        idem === undefined
          ? await toOutcome(await callPost(sql, params), undefined)
          : await sql.begin(async (tx) => toOutcome(await callPost(tx, params), { tx, idem }));
      if (outcome.kind === "posted" && opts.metrics !== undefined) {
        const t = outcome.result.transaction;
        const amount = formatAmount(t.captured_amount ?? t.amount, t.currency);
        countPosted(opts.metrics, t.type, t.status, t.currency, amount);
      }
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
    case "stored":
    case "none":
      throw new Error(`postOrThrow: unexpected ${out.kind}`);
    default: {
      const never: never = out;
      throw new Error(`unknown outcome ${String(never)}`);
    }
  }
}

type PostRow = Record<string, unknown>;

/** A posting's parameters for pb_post / pb_post_http(_batch), as JSON text. */
export function postingParams(scope: RequestScope, op: MoneyOp, opts: PostOptions = {}): string {
  return JSON.stringify(paramsOf(scope, op, opts));
}

function paramsOf(scope: RequestScope, op: MoneyOp, opts: PostOptions): Record<string, unknown> {
  const idem = opts.idempotency;
  const http = idem?.http;
  return {
    ...toParams(op),
    owner_id: opts.ownerId ?? null,
    actor: { id: scope.actor.id, role: scope.actor.role },
    trace_id: scope.traceId,
    idempotency_key: idem?.key ?? null,
    idem_scope: idem?.scope ?? null,
    idem_key: idem?.key ?? null,
    idem_fingerprint: idem?.fingerprint ?? null,
    ...(http === undefined
      ? {}
      : {
          success_status: http.successStatus,
          instance: http.instance,
          request_id: http.requestId,
          problem_type_base: http.problemTypeBase,
          titles: http.titles,
          stored_statuses: [...STORED_REJECTION_STATUSES],
        }),
  };
}

async function callPost(sql: Sql | TxSql, params: string): Promise<PostRow> {
  const [row] = await sql`SELECT pb_post(${params}::text::jsonb) AS r`;
  return (row as { r: PostRow }).r;
}

function inUse(): AppError {
  return new ConflictError(
    "IDEMPOTENCY_KEY_IN_USE",
    "A request with this Idempotency-Key is still in progress. Retry later.",
    undefined,
    { "Retry-After": String(IDEMPOTENCY_IN_FLIGHT_RETRY_AFTER_SECONDS) },
  );
}

function reused(): AppError {
  return new UnprocessableError(
    "IDEMPOTENCY_KEY_REUSED",
    "This Idempotency-Key was already used with a different request.",
  );
}

/** pb_post's answer → the outcome; with a JS-rendered claim, stores the record in `store.tx`. */
async function toOutcome(
  r: PostRow,
  store: { tx: TxSql; idem: IdempotencyClaim } | undefined,
): Promise<PostOutcome> {
  switch (r.idem) {
    case "in_use":
      throw inUse();
    case "reused":
      throw reused();
    case "replay":
      return { kind: "replayed", response: { status: Number(r.status), body: String(r.body) } };
  }
  if (r.none === true) return { kind: "none" };

  if (typeof r.error === "string") {
    const error = rejectionError(r);
    // Validation failures are not stored; the transaction rolls back.
    if (!STORED_REJECTION_STATUSES.has(error.status)) throw error;
    let response: StoredResponse | undefined;
    if (store !== undefined) {
      response = store.idem.respond({ ok: false, error });
      await storeIdempotency(store.tx, store.idem, response, null);
    }
    return { kind: "rejected", error, response };
  }

  const result: PostingResult = {
    transaction: txFromJson(r.transaction as Record<string, unknown>),
    wallets: (r.wallets as Record<string, unknown>[]).map(walletFromJson),
  };
  let response: StoredResponse | undefined;
  if (store !== undefined) {
    response = store.idem.respond({ ok: true, result });
    await storeIdempotency(store.tx, store.idem, response, result.transaction.id);
  }
  return { kind: "posted", result, response };
}

/** Postings pb_post_http_batch accepts (migration 00012): their wallets are in the request. */
function batchable(op: MoneyOp): boolean {
  return op.op === "transfer" || (op.op === "move" && (op.originalTransactionId ?? null) === null);
}

function httpOutcome(r: HttpRow, metrics: Metrics | undefined): PostOutcome {
  const response = (): StoredResponse => ({ status: Number(r.o_status), body: String(r.o_body) });
  switch (r.o_kind) {
    case "in_use":
      throw inUse();
    case "reused":
      throw reused();
    case "replay":
      return { kind: "replayed", response: response() };
    case "error":
      throw rejectionError(JSON.parse(String(r.o_body)) as PostRow);
    case "rejected":
      return { kind: "stored", posted: false, response: response() };
    case "posted": {
      const i = r.o_info as Record<string, string>;
      if (metrics !== undefined) countPosted(metrics, i.type!, i.status!, i.currency!, i.amount!);
      return { kind: "stored", posted: true, response: response() };
    }
    default:
      throw new Error(`pb_post_http: unknown outcome ${r.o_kind}`);
  }
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

function countPosted(metrics: Metrics, type: string, status: string, currency: string, amount: string): void {
  metrics.businessTransactions.inc({ type, status, currency });
  if (status === "COMPLETED") {
    // Major units as a float for the histogram only; the exact value never depends on it.
    metrics.businessAmount.observe({ type, currency }, Number(amount));
  }
}

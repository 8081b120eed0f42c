// Money routes (SPEC §3.2): credit, debit, transfer, adjustments, holds and the hold actions,
// plus the transaction and ledger statement reads. Controllers stay thin: guard → validate
// (schemas + amount in the wallet's currency) → the money path → the stored response.
import { Elysia } from "elysia";
import type { AppDeps } from "../../app.ts";
import type { Caller } from "../../context.ts";
import { callerOf, guard } from "../../http/auth.ts";
import { type AppError, invalidField, NotFoundError } from "../../http/errors.ts";
import {
  idempotencyClaim,
  outcomeResponse,
  readIdempotencyKey,
  requestFingerprint,
} from "../../http/idempotency.ts";
import { pageSchema } from "../../http/pagination.ts";
import { idsOf, scopeFor } from "../../http/request-id.ts";
import { bearer, IdParams } from "../../http/schemas.ts";
import { PostingBatcher } from "../../ledger/batcher.ts";
import { parseAmount } from "../../ledger/money.ts";
import { type MoneyOp, type PostingResult, post } from "../../ledger/postings.ts";
import { transactionJson, walletJson } from "../../ledger/render.ts";
import {
  AdjustmentBody,
  CancelBody,
  CompleteBody,
  EntriesQuery,
  EntrySchema,
  FailBody,
  HOLD_EXPIRY_DEFAULT_SECONDS,
  HoldBody,
  KeyParams,
  METADATA_MAX_BYTES,
  MoneyBody,
  RetryBody,
  TransactionSchema,
  TransferBody,
  TransferResult,
  TxListQuery,
  TxWithWallet,
  WalletTxQuery,
} from "./model.ts";
import {
  getTransaction,
  listEntries,
  listTransactions,
  listWalletTransactions,
  transactionByKey,
  transactionCurrency,
  walletFactsOf,
} from "./service.ts";

const TAGS = ["transactions"];
const MONEY_PROBLEMS = [400, 401, 403, 404, 409, 413, 415, 422];
const READ_PROBLEMS = [400, 401, 404];
const PREFIX = "/api/v1";

const txAndWallet = (r: PostingResult) => ({
  transaction: transactionJson(r.transaction),
  wallet: walletJson(r.wallets[0]!),
});
const transferJson = (r: PostingResult) => ({
  transaction: transactionJson(r.transaction),
  source_wallet: walletJson(r.wallets[0]!),
  destination_wallet: walletJson(r.wallets[1]!),
});

function checkMetadata(metadata: Record<string, unknown> | undefined): void {
  if (metadata !== undefined && Buffer.byteLength(JSON.stringify(metadata)) > METADATA_MAX_BYTES) {
    throw invalidField("metadata", `must be at most ${METADATA_MAX_BYTES} bytes of JSON`, "too_large");
  }
}

/** Deposit or withdrawal: the same body, opposite directions. */
function moveOp(
  type: "DEPOSIT" | "WITHDRAW",
  direction: "credit" | "debit",
  walletId: string,
  body: typeof MoneyBody.static,
  currency: string,
): MoneyOp {
  checkMetadata(body.metadata);
  return {
    op: "move",
    type,
    direction,
    walletId,
    amount: parseAmount(body.amount, currency),
    description: body.description,
    externalReference: body.external_reference ?? null,
    metadata: body.metadata,
  };
}

type Target = { kind: "wallet"; id: string } | { kind: "transaction"; id: string };
type MoneyRoute = {
  template: string;
  status: 200 | 201;
  target: Target;
  /** Builds the operation once the target's currency is known; throws 400 on bad input. */
  build: (currency: string) => MoneyOp;
  render: (r: PostingResult) => unknown;
};

/**
 * One idempotent money request: key (400 if missing), fingerprint, the target's currency for
 * amount parsing (an unknown or foreign target becomes a stored 404), then the money path.
 */
async function runMoney(
  deps: AppDeps,
  batcher: PostingBatcher,
  request: Request,
  params: Record<string, string>,
  body: unknown,
  route: MoneyRoute,
) {
  const caller: Caller = callerOf(request);
  const key = readIdempotencyKey(request);
  const fingerprint = requestFingerprint(request.method, route.template, params, body);
  const ownerId = caller.role === "user" ? caller.id : undefined;
  let op: MoneyOp;
  if (route.target.kind === "wallet") {
    const facts = await walletFactsOf(deps.sql, route.target.id);
    op =
      facts === undefined || (ownerId !== undefined && facts.user_id !== ownerId)
        ? { op: "reject", error: new NotFoundError("WALLET_NOT_FOUND", "Wallet not found.") }
        : route.build(facts.currency);
  } else {
    // Visibility of the transaction is decided under the lock inside the money path.
    op = route.build("");
  }
  const claim = idempotencyClaim(request, caller, key, fingerprint, {
    status: route.status,
    render: route.render,
  });
  const out = await post(deps.sql, scopeFor(idsOf(request), caller), op, {
    ownerId,
    idempotency: claim,
    metrics: deps.metrics,
    batcher,
  });
  return outcomeResponse(request, out, () => deps.metrics.idempotentReplays.inc());
}

/** The captured amount of `complete` is parsed in the hold's currency (read first; immutable). */
async function completeOp(deps: AppDeps, id: string, amount: string | undefined): Promise<MoneyOp> {
  if (amount === undefined) return { op: "complete", transactionId: id };
  const currency = await transactionCurrency(deps.sql, id);
  if (currency === undefined) {
    const error: AppError = new NotFoundError("TRANSACTION_NOT_FOUND", "Transaction not found.");
    return { op: "reject", error };
  }
  return { op: "complete", transactionId: id, amount: parseAmount(amount, currency) };
}

export function transactionRoutes(deps: AppDeps) {
  // One per app: transfers, credits and debits that queue behind busy posting lanes are
  // committed together (src/ledger/batcher.ts).
  const batcher = new PostingBatcher(deps.postings?.sql ?? deps.sql, {
    lanes: deps.postings?.lanes ?? Math.min(deps.config.postingLanes, deps.config.dbPoolMax),
    maxBatch: deps.config.postingBatchMax,
  });
  const anyRole = guard(deps.auth, ["user", "admin"]);
  const adminOnly = guard(deps.auth, ["admin"]);
  return new Elysia({ prefix: PREFIX })
    .post(
      "/wallets/:id/credit",
      ({ request, params, body, route }) =>
        runMoney(deps, batcher, request, params, body, {
          template: route,
          status: 201,
          target: { kind: "wallet", id: params.id },
          build: (currency) => moveOp("DEPOSIT", "credit", params.id, body, currency),
          render: txAndWallet,
        }),
      {
        transform: adminOnly,
        params: IdParams,
        body: MoneyBody,
        response: { 201: TxWithWallet },
        detail: bearer("Deposit into a wallet (admin; Idempotency-Key required)", TAGS, MONEY_PROBLEMS),
      },
    )
    .post(
      "/wallets/:id/debit",
      ({ request, params, body, route }) =>
        runMoney(deps, batcher, request, params, body, {
          template: route,
          status: 201,
          target: { kind: "wallet", id: params.id },
          build: (currency) => moveOp("WITHDRAW", "debit", params.id, body, currency),
          render: txAndWallet,
        }),
      {
        transform: anyRole,
        params: IdParams,
        body: MoneyBody,
        response: { 201: TxWithWallet },
        detail: bearer(
          "Withdraw from a wallet (owner or admin; Idempotency-Key required)",
          TAGS,
          MONEY_PROBLEMS,
        ),
      },
    )
    .post(
      "/wallets/:id/transfer",
      ({ request, params, body, route }) =>
        runMoney(deps, batcher, request, params, body, {
          template: route,
          status: 201,
          target: { kind: "wallet", id: params.id },
          build: (currency) => {
            checkMetadata(body.metadata);
            return {
              op: "transfer",
              walletId: params.id,
              destinationWalletId: body.destination_wallet_id.toLowerCase(),
              amount: parseAmount(body.amount, currency),
              description: body.description,
              metadata: body.metadata,
            };
          },
          render: transferJson,
        }),
      {
        transform: anyRole,
        params: IdParams,
        body: TransferBody,
        response: { 201: TransferResult },
        detail: bearer(
          "Transfer to another wallet of the same currency (owner or admin)",
          TAGS,
          MONEY_PROBLEMS,
        ),
      },
    )
    .post(
      "/wallets/:id/adjustments",
      ({ request, params, body, route }) =>
        runMoney(deps, batcher, request, params, body, {
          template: route,
          status: 201,
          target: { kind: "wallet", id: params.id },
          build: (currency) => {
            checkMetadata(body.metadata);
            if (body.type === "ADJUSTMENT" && body.direction === undefined) {
              throw invalidField("direction", "is required for ADJUSTMENT", "required");
            }
            if (body.type !== "ADJUSTMENT" && body.direction !== undefined) {
              throw invalidField("direction", "is only accepted for ADJUSTMENT", "unknown_field");
            }
            if (body.type !== "REFUND" && body.original_transaction_id !== undefined) {
              throw invalidField("original_transaction_id", "is only accepted for REFUND", "unknown_field");
            }
            const direction =
              body.type === "FEE" ? "debit" : body.type === "REFUND" ? "credit" : body.direction!;
            return {
              op: "move",
              type: body.type,
              direction,
              walletId: params.id,
              amount: parseAmount(body.amount, currency),
              description: body.description,
              originalTransactionId: body.original_transaction_id?.toLowerCase() ?? null,
              metadata: body.metadata,
            };
          },
          render: txAndWallet,
        }),
      {
        transform: adminOnly,
        params: IdParams,
        body: AdjustmentBody,
        response: { 201: TxWithWallet },
        detail: bearer("Fee, refund or adjustment (admin; Idempotency-Key required)", TAGS, MONEY_PROBLEMS),
      },
    )
    .post(
      "/wallets/:id/holds",
      ({ request, params, body, route }) =>
        runMoney(deps, batcher, request, params, body, {
          template: route,
          status: 201,
          target: { kind: "wallet", id: params.id },
          build: (currency) => {
            checkMetadata(body.metadata);
            return {
              op: "hold",
              walletId: params.id,
              amount: parseAmount(body.amount, currency),
              description: body.description,
              metadata: body.metadata,
              expiresInSeconds: body.expires_in_seconds ?? HOLD_EXPIRY_DEFAULT_SECONDS,
            };
          },
          render: txAndWallet,
        }),
      {
        transform: anyRole,
        params: IdParams,
        body: HoldBody,
        response: { 201: TxWithWallet },
        detail: bearer(
          "Hold funds: a PENDING PAYOUT (owner or admin; Idempotency-Key required)",
          TAGS,
          MONEY_PROBLEMS,
        ),
      },
    )
    .post(
      "/transactions/:id/complete",
      async ({ request, params, body, route }) => {
        const op = await completeOp(deps, params.id, body?.amount);
        return runMoney(deps, batcher, request, params, body, {
          template: route,
          status: 200,
          target: { kind: "transaction", id: params.id },
          build: () => op,
          render: txAndWallet,
        });
      },
      {
        transform: adminOnly,
        params: IdParams,
        body: CompleteBody,
        response: { 200: TxWithWallet },
        detail: bearer("Capture a hold, fully or partly (admin)", TAGS, MONEY_PROBLEMS),
      },
    )
    .post(
      "/transactions/:id/fail",
      ({ request, params, body, route }) =>
        runMoney(deps, batcher, request, params, body, {
          template: route,
          status: 200,
          target: { kind: "transaction", id: params.id },
          build: () => ({ op: "fail", transactionId: params.id, reason: body.reason }),
          render: txAndWallet,
        }),
      {
        transform: adminOnly,
        params: IdParams,
        body: FailBody,
        response: { 200: TxWithWallet },
        detail: bearer("Fail a hold; funds return (admin)", TAGS, MONEY_PROBLEMS),
      },
    )
    .post(
      "/transactions/:id/cancel",
      ({ request, params, body, route }) =>
        runMoney(deps, batcher, request, params, body, {
          template: route,
          status: 200,
          target: { kind: "transaction", id: params.id },
          build: () => ({ op: "cancel", transactionId: params.id, reason: body?.reason ?? null }),
          render: txAndWallet,
        }),
      {
        transform: anyRole,
        params: IdParams,
        body: CancelBody,
        response: { 200: TxWithWallet },
        detail: bearer("Cancel a hold; funds return (owner or admin)", TAGS, MONEY_PROBLEMS),
      },
    )
    .post(
      "/transactions/:id/retry",
      ({ request, params, body, route }) =>
        runMoney(deps, batcher, request, params, body, {
          template: route,
          status: 200,
          target: { kind: "transaction", id: params.id },
          build: () => ({ op: "retry", transactionId: params.id }),
          render: txAndWallet,
        }),
      {
        transform: anyRole,
        params: IdParams,
        body: RetryBody,
        response: { 200: TxWithWallet },
        detail: bearer("Retry a FAILED payout, at most 3 times (owner or admin)", TAGS, MONEY_PROBLEMS),
      },
    )
    .get(
      "/wallets/:id/transactions",
      ({ request, params, query }) => listWalletTransactions(deps.sql, callerOf(request), params.id, query),
      {
        transform: anyRole,
        params: IdParams,
        query: WalletTxQuery,
        response: { 200: pageSchema(TransactionSchema) },
        detail: bearer("A wallet's transactions, newest first (owner or admin)", TAGS, READ_PROBLEMS),
      },
    )
    .get(
      "/wallets/:id/entries",
      ({ request, params, query }) => listEntries(deps.sql, callerOf(request), params.id, query),
      {
        transform: anyRole,
        params: IdParams,
        query: EntriesQuery,
        response: { 200: pageSchema(EntrySchema) },
        detail: bearer(
          "Ledger statement with balance_after, newest first (owner or admin)",
          TAGS,
          READ_PROBLEMS,
        ),
      },
    )
    .get("/transactions", ({ request, query }) => listTransactions(deps.sql, callerOf(request), query), {
      transform: anyRole,
      query: TxListQuery,
      response: { 200: pageSchema(TransactionSchema) },
      detail: bearer("Transactions: users see those touching their wallets; admins all", TAGS, READ_PROBLEMS),
    })
    .get(
      "/transactions/by-key/:key",
      ({ request, params }) => transactionByKey(deps.sql, callerOf(request), params.key),
      {
        transform: anyRole,
        params: KeyParams,
        response: { 200: TransactionSchema },
        detail: bearer("The caller's transaction for an Idempotency-Key", TAGS, READ_PROBLEMS),
      },
    )
    .get(
      "/transactions/:id",
      ({ request, params }) => getTransaction(deps.sql, callerOf(request), params.id),
      {
        transform: anyRole,
        params: IdParams,
        response: { 200: TransactionSchema },
        detail: bearer("One transaction", TAGS, READ_PROBLEMS),
      },
    );
}

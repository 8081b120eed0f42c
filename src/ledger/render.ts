// Wire shapes of money objects (SPEC §2.4, §3.1): snake_case, amounts as exact decimal strings
// with `currency` beside them, timestamps ISO 8601. Used by responses AND outbox events, so
// both always agree.
import { renderWallet } from "../modules/wallets/model.ts";
import { formatAmount, formatSignedAmount } from "./money.ts";
import type { TransactionRow, WalletRow } from "./types.ts";

const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());
const isoOf = (d: Date): string => d.toISOString();

export function transactionJson(t: TransactionRow) {
  return {
    id: t.id,
    type: t.type,
    status: t.status,
    direction: t.direction,
    wallet_id: t.wallet_id,
    destination_wallet_id: t.destination_wallet_id,
    amount: formatAmount(t.amount, t.currency),
    captured_amount: t.captured_amount === null ? null : formatAmount(t.captured_amount, t.currency),
    currency: t.currency,
    description: t.description,
    external_reference: t.external_reference,
    metadata: t.metadata,
    failure_reason: t.failure_reason,
    retry_count: t.retry_count,
    idempotency_key: t.idempotency_key,
    original_transaction_id: t.original_transaction_id,
    actor: { id: t.actor.id, role: t.actor.role },
    expires_at: iso(t.expires_at),
    created_at: isoOf(t.created_at),
    updated_at: isoOf(t.updated_at),
    processed_at: iso(t.processed_at),
    completed_at: iso(t.completed_at),
  };
}
export type TransactionJson = ReturnType<typeof transactionJson>;

/** Wallets render exactly as the wallets module renders them (one shape everywhere). */
export const walletJson = (w: WalletRow) => renderWallet(w);

export type EntryRow = {
  id: bigint | string;
  transaction_id: string;
  wallet_id: string;
  currency: string;
  amount: bigint;
  balance_after: bigint;
  created_at: Date;
};

export function entryJson(e: EntryRow) {
  return {
    id: String(e.id),
    transaction_id: e.transaction_id,
    wallet_id: e.wallet_id,
    amount: formatSignedAmount(e.amount, e.currency),
    currency: e.currency,
    balance_after: formatAmount(e.balance_after, e.currency),
    created_at: isoOf(e.created_at),
  };
}

/** `wallet.credited` / `wallet.debited` event data. */
export function walletMovementJson(w: WalletRow, transactionId: string, amount: bigint) {
  return {
    wallet_id: w.id,
    transaction_id: transactionId,
    amount: formatAmount(amount, w.currency),
    currency: w.currency,
    balance_after: formatAmount(w.available_balance + w.pending_balance, w.currency),
  };
}

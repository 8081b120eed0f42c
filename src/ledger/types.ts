// Row shapes of the money path. Amounts are bigint minor units; pb_post (migration 00006)
// returns them as text so no value above 2^53 ever passes through a JSON number.
import type { Actor } from "../context.ts";
import type { WalletRow, WalletStatus } from "../modules/wallets/model.ts";

export const TX_TYPES = ["DEPOSIT", "WITHDRAW", "TRANSFER", "PAYOUT", "FEE", "REFUND", "ADJUSTMENT"] as const;
export type TxType = (typeof TX_TYPES)[number];
export const TX_STATUSES = ["PENDING", "COMPLETED", "FAILED", "CANCELLED"] as const;
export type TxStatus = (typeof TX_STATUSES)[number];
export type Direction = "credit" | "debit";

export type TransactionRow = {
  id: string;
  type: TxType;
  status: TxStatus;
  wallet_id: string;
  destination_wallet_id: string | null;
  direction: Direction;
  amount: bigint;
  captured_amount: bigint | null;
  currency: string;
  description: string;
  external_reference: string | null;
  metadata: Record<string, unknown>;
  failure_reason: string | null;
  retry_count: number;
  idempotency_key: string | null;
  original_transaction_id: string | null;
  actor: Actor;
  expires_at: Date | null;
  created_at: Date;
  updated_at: Date;
  processed_at: Date | null;
  completed_at: Date | null;
};

// One wallet row shape for the whole app: the wallets module owns it.
export type { WalletRow, WalletStatus };

type Json = Record<string, unknown>;
const big = (v: unknown): bigint => BigInt(v as string);
const bigOrNull = (v: unknown): bigint | null => (v === null || v === undefined ? null : BigInt(v as string));
const date = (v: unknown): Date => new Date(v as string);
const dateOrNull = (v: unknown): Date | null =>
  v === null || v === undefined ? null : new Date(v as string);

/** A transaction from pb_tx_row's jsonb. */
export function txFromJson(j: Json): TransactionRow {
  return {
    ...(j as unknown as TransactionRow),
    amount: big(j.amount),
    captured_amount: bigOrNull(j.captured_amount),
    expires_at: dateOrNull(j.expires_at),
    created_at: date(j.created_at),
    updated_at: date(j.updated_at),
    processed_at: dateOrNull(j.processed_at),
    completed_at: dateOrNull(j.completed_at),
  };
}

/** A wallet from pb_wallet_row's jsonb. */
export function walletFromJson(j: Json): WalletRow {
  return {
    ...(j as unknown as WalletRow),
    available_balance: big(j.available_balance),
    pending_balance: big(j.pending_balance),
    daily_limit: bigOrNull(j.daily_limit),
    monthly_limit: bigOrNull(j.monthly_limit),
    version: big(j.version),
    created_at: date(j.created_at),
    updated_at: date(j.updated_at),
    closed_at: dateOrNull(j.closed_at),
  };
}

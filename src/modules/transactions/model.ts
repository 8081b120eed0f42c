// Request and response schemas of the money routes: the single source of their types and of
// the OpenAPI document.
import { t } from "elysia";
import { paginationQuery } from "../../http/pagination.ts";
import { Timestamp, Uuid } from "../../http/schemas.ts";
import { WalletSchema } from "../wallets/model.ts";

/** Longest amount string looked at (money.ts refuses longer ones anyway). */
const Amount = t.String({ maxLength: 64, description: 'decimal string in major units, e.g. "100.50"' });
const Description = t.String({ maxLength: 1000 });
const Metadata = t.Record(t.String(), t.Unknown(), { description: "JSON object, at most 16 KiB" });
/** Hold expiry bounds (SPEC §2.4): 60 s to 30 days, default 7 days. */
export const HOLD_EXPIRY_MIN_SECONDS = 60;
export const HOLD_EXPIRY_MAX_SECONDS = 30 * 24 * 3600;
export const HOLD_EXPIRY_DEFAULT_SECONDS = 7 * 24 * 3600;
export const METADATA_MAX_BYTES = 16 * 1024;

const strict = { additionalProperties: false } as const;

export const MoneyBody = t.Object(
  {
    amount: Amount,
    description: Description,
    external_reference: t.Optional(t.Union([t.String({ minLength: 1, maxLength: 255 }), t.Null()])),
    metadata: t.Optional(Metadata),
  },
  strict,
);
export const TransferBody = t.Object(
  { destination_wallet_id: Uuid, amount: Amount, description: Description, metadata: t.Optional(Metadata) },
  strict,
);
export const AdjustmentBody = t.Object(
  {
    type: t.Union([t.Literal("FEE"), t.Literal("REFUND"), t.Literal("ADJUSTMENT")]),
    direction: t.Optional(
      t.Union([t.Literal("credit"), t.Literal("debit")], { description: "ADJUSTMENT only" }),
    ),
    amount: Amount,
    description: Description,
    original_transaction_id: t.Optional(Uuid),
    metadata: t.Optional(Metadata),
  },
  strict,
);
export const HoldBody = t.Object(
  {
    amount: Amount,
    description: Description,
    expires_in_seconds: t.Optional(
      t.Integer({
        minimum: HOLD_EXPIRY_MIN_SECONDS,
        maximum: HOLD_EXPIRY_MAX_SECONDS,
        description: "default 7 days",
      }),
    ),
    metadata: t.Optional(Metadata),
  },
  strict,
);
export const CompleteBody = t.Optional(t.Object({ amount: t.Optional(Amount) }, strict));
export const FailBody = t.Object({ reason: t.String({ minLength: 1, maxLength: 1000 }) }, strict);
export const CancelBody = t.Optional(
  t.Object({ reason: t.Optional(t.String({ minLength: 1, maxLength: 1000 })) }, strict),
);
export const RetryBody = t.Optional(t.Object({}, strict));

export const KeyParams = t.Object({ key: t.String({ minLength: 1, maxLength: 255 }) });

// Literal unions, not t.UnionEnum: Elysia fills an optional UnionEnum query field with its
// first value, which would silently filter every list.
const TxType = t.Union([
  t.Literal("DEPOSIT"),
  t.Literal("WITHDRAW"),
  t.Literal("TRANSFER"),
  t.Literal("PAYOUT"),
  t.Literal("FEE"),
  t.Literal("REFUND"),
  t.Literal("ADJUSTMENT"),
]);
const TxStatus = t.Union([
  t.Literal("PENDING"),
  t.Literal("COMPLETED"),
  t.Literal("FAILED"),
  t.Literal("CANCELLED"),
]);
const period = {
  created_from: t.Optional(t.String({ format: "date-time", description: "RFC 3339, inclusive" })),
  created_to: t.Optional(t.String({ format: "date-time", description: "RFC 3339, exclusive" })),
};
export const WalletTxQuery = t.Object({
  ...paginationQuery,
  type: t.Optional(TxType),
  status: t.Optional(TxStatus),
  ...period,
});
export const TxListQuery = t.Object({
  ...paginationQuery,
  wallet_id: t.Optional(Uuid),
  type: t.Optional(TxType),
  status: t.Optional(TxStatus),
  ...period,
});
export const EntriesQuery = t.Object({ ...paginationQuery, ...period });

const Nullable = <T extends Parameters<typeof t.Union>[0][number]>(s: T) => t.Union([s, t.Null()]);
export const TransactionSchema = t.Object(
  {
    id: Uuid,
    type: TxType,
    status: TxStatus,
    direction: t.Union([t.Literal("credit"), t.Literal("debit")]),
    wallet_id: Uuid,
    destination_wallet_id: Nullable(Uuid),
    amount: t.String(),
    captured_amount: Nullable(t.String()),
    currency: t.String(),
    description: t.String(),
    external_reference: Nullable(t.String()),
    metadata: t.Record(t.String(), t.Unknown()),
    failure_reason: Nullable(t.String()),
    retry_count: t.Integer(),
    idempotency_key: Nullable(t.String()),
    original_transaction_id: Nullable(Uuid),
    actor: t.Object({ id: t.String(), role: t.String() }),
    expires_at: Nullable(Timestamp),
    created_at: Timestamp,
    updated_at: Timestamp,
    processed_at: Nullable(Timestamp),
    completed_at: Nullable(Timestamp),
  },
  { title: "Transaction" },
);
export const EntrySchema = t.Object(
  {
    id: t.String(),
    transaction_id: Uuid,
    wallet_id: Uuid,
    amount: t.String({ description: "signed" }),
    currency: t.String(),
    balance_after: t.String(),
    created_at: Timestamp,
  },
  { title: "LedgerEntry" },
);
export const TxWithWallet = t.Object({ transaction: TransactionSchema, wallet: WalletSchema });
export const TransferResult = t.Object({
  transaction: TransactionSchema,
  source_wallet: WalletSchema,
  destination_wallet: WalletSchema,
});

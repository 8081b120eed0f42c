// Wallets: wire shapes, the status machine as data, and rendering (exported for the
// money-moving routes, which answer with the wallet after the change).
import { t } from "elysia";
import { paginationQuery } from "../../http/pagination.ts";
import { Timestamp, Uuid } from "../../http/schemas.ts";
import { formatAmount, formatLimit } from "../../ledger/money.ts";

export const WALLET_STATUSES = ["ACTIVE", "SUSPENDED", "LOCKED", "CLOSED"] as const;
export type WalletStatus = (typeof WALLET_STATUSES)[number];
export type WalletAction = "suspend" | "activate" | "lock" | "close";

/** SPEC §2.3. CLOSED is final: no action lists it as a source. */
export const WALLET_TRANSITIONS: Readonly<
  Record<WalletAction, { from: readonly WalletStatus[]; to: WalletStatus }>
> = {
  suspend: { from: ["ACTIVE"], to: "SUSPENDED" },
  activate: { from: ["SUSPENDED", "LOCKED"], to: "ACTIVE" },
  lock: { from: ["ACTIVE", "SUSPENDED"], to: "LOCKED" },
  close: { from: ["ACTIVE", "SUSPENDED", "LOCKED"], to: "CLOSED" },
};

/** Who may perform an action: admins always; the owner only where listed (and only from these statuses). */
export function ownerMay(action: WalletAction): readonly WalletStatus[] {
  switch (action) {
    case "close":
      return ["ACTIVE"];
    case "suspend":
    case "activate":
    case "lock":
      return [];
    default: {
      const never: never = action;
      throw new Error(`unknown wallet action ${String(never)}`);
    }
  }
}

export const WalletStatusSchema = t.Union([
  t.Literal("ACTIVE"),
  t.Literal("SUSPENDED"),
  t.Literal("LOCKED"),
  t.Literal("CLOSED"),
]);
const Amount = t.String({ pattern: "^\\d+(\\.\\d+)?$", description: "decimal string in major units" });

export const WalletSchema = t.Object(
  {
    id: Uuid,
    user_id: Uuid,
    currency: t.String(),
    kind: t.Union([t.Literal("fiat"), t.Literal("crypto")]),
    status: WalletStatusSchema,
    available_balance: Amount,
    pending_balance: Amount,
    total_balance: Amount,
    daily_limit: t.Union([Amount, t.Null()]),
    monthly_limit: t.Union([Amount, t.Null()]),
    version: t.Integer(),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { title: "Wallet" },
);

export const CreateWalletBody = t.Object(
  {
    currency: t.String({ maxLength: 16, description: "a code from GET /currencies" }),
    user_id: t.Optional(t.String({ maxLength: 64, description: "admin only; a user may pass its own id" })),
  },
  { additionalProperties: false },
);

export const LimitsBody = t.Object(
  {
    daily_limit: t.Optional(
      t.Union([t.String({ maxLength: 64 }), t.Null()], { description: "amount string or null" }),
    ),
    monthly_limit: t.Optional(
      t.Union([t.String({ maxLength: 64 }), t.Null()], { description: "amount string or null" }),
    ),
  },
  { additionalProperties: false },
);

export const WalletListQuery = t.Object(
  {
    ...paginationQuery,
    user_id: t.Optional(t.String({ maxLength: 64, description: "admin filter" })),
    currency: t.Optional(t.String({ maxLength: 16 })),
    status: t.Optional(WalletStatusSchema),
  },
  { additionalProperties: false },
);

export const MyWalletsQuery = t.Object(
  {
    ...paginationQuery,
    currency: t.Optional(t.String({ maxLength: 16 })),
    status: t.Optional(WalletStatusSchema),
  },
  { additionalProperties: false },
);

export type WalletRow = {
  id: string;
  user_id: string;
  currency: string;
  kind: "fiat" | "crypto";
  status: WalletStatus;
  available_balance: bigint;
  pending_balance: bigint;
  daily_limit: bigint | null;
  monthly_limit: bigint | null;
  version: bigint | number;
  created_at: Date;
  updated_at: Date;
  cursor_ts?: string;
  closed_at: Date | null;
};

/** Columns renderWallet needs; select these (sql(WALLET_COLUMNS)) wherever a wallet is returned. */
export const WALLET_COLUMNS = [
  "id",
  "user_id",
  "currency",
  "kind",
  "status",
  "available_balance",
  "pending_balance",
  "daily_limit",
  "monthly_limit",
  "version",
  "created_at",
  "updated_at",
] as const;

export type Wallet = {
  id: string;
  user_id: string;
  currency: string;
  kind: "fiat" | "crypto";
  status: WalletStatus;
  available_balance: string;
  pending_balance: string;
  total_balance: string;
  daily_limit: string | null;
  monthly_limit: string | null;
  version: number;
  created_at: string;
  updated_at: string;
};

export function renderWallet(r: WalletRow): Wallet {
  const available = BigInt(r.available_balance);
  const pending = BigInt(r.pending_balance);
  return {
    id: r.id,
    user_id: r.user_id,
    currency: r.currency,
    kind: r.kind,
    status: r.status,
    available_balance: formatAmount(available, r.currency),
    pending_balance: formatAmount(pending, r.currency),
    total_balance: formatAmount(available + pending, r.currency),
    daily_limit: formatLimit(r.daily_limit === null ? null : BigInt(r.daily_limit), r.currency),
    monthly_limit: formatLimit(r.monthly_limit === null ? null : BigInt(r.monthly_limit), r.currency),
    version: Number(r.version),
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
  };
}

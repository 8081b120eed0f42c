// Wallets: open, list, read, status changes and limits. Balances are never touched here (the
// money path owns them). Status and limit changes lock the wallet row (FOR UPDATE) so a
// concurrent close and credit, or two status changes, cannot both pass their checks.
import type { Caller, RequestScope } from "../../context.ts";
import type { Sql, TxSql } from "../../db/client.ts";
import {
  ConflictError,
  ForbiddenError,
  invalidField,
  NotFoundError,
  UnprocessableError,
} from "../../http/errors.ts";
import { decodeCursor, keysetBefore, type Page, pageLimit, toPage } from "../../http/pagination.ts";
import { getCurrency, parseLimit } from "../../ledger/money.ts";
import { appendEvents } from "../../outbox/events.ts";
import {
  ownerMay,
  renderWallet,
  WALLET_COLUMNS,
  WALLET_TRANSITIONS,
  type Wallet,
  type WalletAction,
  type WalletRow,
  type WalletStatus,
} from "./model.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function walletNotFound(): NotFoundError {
  return new NotFoundError("WALLET_NOT_FOUND", "No such wallet.");
}

function uuidField(value: string, field: string): string {
  if (!UUID.test(value)) throw invalidField(field, "must be a uuid", "format");
  return value.toLowerCase();
}

export async function createWallet(
  sql: Sql,
  scope: RequestScope,
  caller: Caller,
  input: { currency: string; user_id?: string },
): Promise<Wallet> {
  // Role rules first (403), then input (400), then the database (404/422/409).
  let userId: string;
  if (caller.role === "admin") {
    if (input.user_id === undefined) throw invalidField("user_id", "is required for admins", "required");
    userId = uuidField(input.user_id, "user_id");
  } else {
    if (input.user_id !== undefined && input.user_id.toLowerCase() !== caller.id) {
      throw new ForbiddenError("A user may open wallets only for itself.");
    }
    userId = caller.id;
  }
  const currency = getCurrency(input.currency);
  return await sql.begin(async (tx) => {
    // FOR SHARE: the KYC status cannot change under us until the wallet exists.
    const [user] = await tx<
      { kyc_status: string }[]
    >`SELECT kyc_status FROM users WHERE id = ${userId} FOR SHARE`;
    if (user === undefined) throw new NotFoundError("USER_NOT_FOUND", "No such user.");
    if (user.kyc_status !== "VERIFIED") {
      throw new UnprocessableError("USER_NOT_VERIFIED", "Only VERIFIED users may open wallets.", {
        kyc_status: user.kyc_status,
      });
    }
    const [row] = await tx<WalletRow[]>`
      INSERT INTO wallets (user_id, currency, kind, status_actor)
      VALUES (${userId}, ${currency.code}, ${currency.kind}, ${JSON.stringify(scope.actor)}::text::jsonb)
      ON CONFLICT DO NOTHING
      RETURNING ${tx(WALLET_COLUMNS)}`;
    if (row === undefined) {
      throw new ConflictError(
        "WALLET_ALREADY_EXISTS",
        `The user already has an open ${currency.code} wallet.`,
      );
    }
    const wallet = renderWallet(row);
    await appendEvents(tx, [
      {
        type: "wallet.created",
        aggregateType: "wallet",
        aggregateId: row.id,
        actor: scope.actor,
        traceId: scope.traceId,
        data: wallet,
      },
    ]);
    return wallet;
  });
}

export type WalletFilters = {
  user_id?: string;
  currency?: string;
  status?: WalletStatus;
  limit?: number;
  cursor?: string;
};

/** Admins see all wallets (filters apply); users only their own (a foreign user_id filter is 403). */
export async function listWallets(sql: Sql, caller: Caller, query: WalletFilters): Promise<Page<Wallet>> {
  const limit = pageLimit(query.limit);
  const cursor = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
  let userId = query.user_id === undefined ? undefined : uuidField(query.user_id, "user_id");
  if (caller.role !== "admin") {
    if (userId !== undefined && userId !== caller.id)
      throw new ForbiddenError("A user may list only its own wallets.");
    userId = caller.id;
  }
  const currency = query.currency === undefined ? undefined : getCurrency(query.currency).code;
  const rows = await sql<WalletRow[]>`
    SELECT ${sql(WALLET_COLUMNS)}, created_at::text AS cursor_ts FROM wallets
    WHERE true
      ${userId === undefined ? sql`` : sql`AND user_id = ${userId}`}
      ${currency === undefined ? sql`` : sql`AND currency = ${currency}`}
      ${query.status === undefined ? sql`` : sql`AND status = ${query.status}`}
      ${cursor === undefined ? sql`` : sql`AND ${keysetBefore(sql, cursor)}`}
    ORDER BY created_at DESC, id DESC
    LIMIT ${limit + 1}`;
  return toPage(rows, limit, renderWallet);
}

/** The caller's own wallets, whatever its role. */
export async function myWallets(
  sql: Sql,
  caller: Caller,
  query: Omit<WalletFilters, "user_id">,
): Promise<Page<Wallet>> {
  // An admin's sub need not be a user id: such a caller owns no wallets.
  if (!UUID.test(caller.id)) {
    pageLimit(query.limit);
    if (query.cursor !== undefined) decodeCursor(query.cursor);
    return { data: [], has_more: false, next_cursor: null };
  }
  return await listWallets(sql, { id: caller.id, role: "user" }, { ...query, user_id: caller.id });
}

export async function getWallet(sql: Sql, caller: Caller, id: string): Promise<Wallet> {
  const [row] = await sql<WalletRow[]>`SELECT ${sql(WALLET_COLUMNS)} FROM wallets WHERE id = ${id}`;
  if (row === undefined || (caller.role !== "admin" && row.user_id !== caller.id)) throw walletNotFound();
  return renderWallet(row);
}

/** Locks the wallet for a change; another user's wallet is 404, like a missing one. */
async function lockWallet(tx: TxSql, caller: Caller, id: string): Promise<WalletRow> {
  const [row] = await tx<WalletRow[]>`SELECT ${tx(WALLET_COLUMNS)} FROM wallets WHERE id = ${id} FOR UPDATE`;
  if (row === undefined || (caller.role !== "admin" && row.user_id !== caller.id)) throw walletNotFound();
  return row;
}

export async function changeWalletStatus(
  sql: Sql,
  scope: RequestScope,
  caller: Caller,
  id: string,
  action: WalletAction,
): Promise<Wallet> {
  const rule = WALLET_TRANSITIONS[action];
  const ownerFrom = ownerMay(action);
  // Role check before anything touches the row: a user asking for an admin-only action is 403.
  if (caller.role !== "admin" && ownerFrom.length === 0) {
    throw new ForbiddenError(`Only admins may ${action} wallets.`);
  }
  return await sql.begin(async (tx) => {
    const current = await lockWallet(tx, caller, id);
    if (!rule.from.includes(current.status)) {
      throw new ConflictError("WALLET_INVALID_TRANSITION", `A ${current.status} wallet cannot ${action}.`, {
        current_status: current.status,
      });
    }
    if (caller.role !== "admin" && !ownerFrom.includes(current.status)) {
      throw new ForbiddenError(`Owners may ${action} only a wallet that is ${ownerFrom.join(" or ")}.`);
    }
    if (action === "close" && (current.available_balance !== 0n || current.pending_balance !== 0n)) {
      throw new UnprocessableError(
        "WALLET_NOT_EMPTY",
        "A wallet can be closed only at a zero total balance.",
        {
          total_balance: renderWallet(current).total_balance,
        },
      );
    }
    const [row] = await tx<WalletRow[]>`
      UPDATE wallets SET status = ${rule.to},
        status_actor = ${JSON.stringify(scope.actor)}::text::jsonb,
        closed_at = CASE WHEN ${rule.to}::text = 'CLOSED' THEN now() END,
        version = version + 1,
        updated_at = now()
      WHERE id = ${current.id}
      RETURNING ${tx(WALLET_COLUMNS)}`;
    if (row === undefined) throw walletNotFound();
    const wallet = renderWallet(row);
    await appendEvents(tx, [
      {
        type: "wallet.status_changed",
        aggregateType: "wallet",
        aggregateId: row.id,
        actor: scope.actor,
        traceId: scope.traceId,
        data: { ...wallet, previous_status: current.status },
      },
    ]);
    return wallet;
  });
}

export async function updateLimits(
  sql: Sql,
  scope: RequestScope,
  caller: Caller,
  id: string,
  input: { daily_limit?: string | null; monthly_limit?: string | null },
): Promise<Wallet> {
  if (input.daily_limit === undefined && input.monthly_limit === undefined) {
    throw invalidField("daily_limit", "give daily_limit, monthly_limit or both", "required");
  }
  return await sql.begin(async (tx) => {
    const current = await lockWallet(tx, caller, id);
    const daily = parseLimit(input.daily_limit, current.currency, "daily_limit");
    const monthly = parseLimit(input.monthly_limit, current.currency, "monthly_limit");
    if (current.status === "CLOSED") throw new UnprocessableError("WALLET_CLOSED", "The wallet is closed.");
    const nextDaily = daily === undefined ? current.daily_limit : daily;
    const nextMonthly = monthly === undefined ? current.monthly_limit : monthly;
    if (nextDaily !== null && nextMonthly !== null && BigInt(nextMonthly) < BigInt(nextDaily)) {
      throw invalidField("monthly_limit", "must not be below daily_limit", "below_daily_limit");
    }
    const [row] = await tx<WalletRow[]>`
      UPDATE wallets SET daily_limit = ${nextDaily === null ? null : String(nextDaily)}::bigint,
        monthly_limit = ${nextMonthly === null ? null : String(nextMonthly)}::bigint,
        limits_actor = ${JSON.stringify(scope.actor)}::text::jsonb,
        version = version + 1,
        updated_at = now()
      WHERE id = ${current.id}
      RETURNING ${tx(WALLET_COLUMNS)}`;
    if (row === undefined) throw walletNotFound();
    return renderWallet(row);
  });
}

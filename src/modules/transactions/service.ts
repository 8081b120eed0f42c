// Reads around the money path: the immutable facts a request needs before posting (a
// wallet's currency and owner), and the transaction / ledger statement lists. Every balance
// change itself goes through src/ledger/postings.ts.
import type { Caller } from "../../context.ts";
import type { Sql } from "../../db/client.ts";
import { invalidField, NotFoundError } from "../../http/errors.ts";
import { idempotencyScope } from "../../http/idempotency.ts";
import {
  type Cursor,
  decodeCursor,
  encodeCursor,
  keysetBefore,
  type Page,
  pageLimit,
  toPage,
} from "../../http/pagination.ts";
import { type EntryRow, entryJson, transactionJson } from "../../ledger/render.ts";
import type { TransactionRow, TxStatus, TxType } from "../../ledger/types.ts";

type WalletFacts = { currency: string; user_id: string };
/**
 * A wallet's currency and owner never change, so they are cached per process: the hot path
 * (parse the amount in the wallet's currency) then costs no extra round trip.
 */
const WALLET_FACTS_CACHE_MAX = 100_000;
const walletFacts = new Map<string, WalletFacts>();

export async function walletFactsOf(sql: Sql, walletId: string): Promise<WalletFacts | undefined> {
  const hit = walletFacts.get(walletId);
  if (hit !== undefined) return hit;
  const [row] = await sql`SELECT currency, user_id FROM wallets WHERE id = ${walletId}`;
  if (row === undefined) return undefined;
  if (walletFacts.size >= WALLET_FACTS_CACHE_MAX) walletFacts.clear();
  const facts = row as WalletFacts;
  walletFacts.set(walletId, facts);
  return facts;
}

/** The wallet when the caller may see it (admins: any; users: their own), else 404. */
export async function visibleWallet(sql: Sql, caller: Caller, walletId: string): Promise<WalletFacts> {
  const facts = await walletFactsOf(sql, walletId);
  if (facts === undefined || (caller.role === "user" && facts.user_id !== caller.id)) {
    throw new NotFoundError("WALLET_NOT_FOUND", "Wallet not found.");
  }
  return facts;
}

export async function transactionCurrency(sql: Sql, id: string): Promise<string | undefined> {
  const [row] = await sql`SELECT currency FROM transactions WHERE id = ${id}`;
  return (row as { currency: string } | undefined)?.currency;
}

type Period = { created_from?: string; created_to?: string };
type TxFilter = Period & {
  limit?: number;
  cursor?: string;
  type?: TxType;
  status?: TxStatus;
  wallet_id?: string;
};

function periodOf(q: Period): { from?: string; to?: string } {
  if (
    q.created_from !== undefined &&
    q.created_to !== undefined &&
    Date.parse(q.created_from) >= Date.parse(q.created_to)
  ) {
    throw invalidField("created_to", "must be after created_from", "range");
  }
  return { from: q.created_from, to: q.created_to };
}

/** Rows a user may see: transactions touching one of their wallets (incoming transfers included). */
function visibility(sql: Sql, caller: Caller) {
  return caller.role === "admin"
    ? sql`TRUE`
    : sql`(wallet_id IN (SELECT id FROM wallets WHERE user_id = ${caller.id})
           OR destination_wallet_id IN (SELECT id FROM wallets WHERE user_id = ${caller.id}))`;
}

async function txPage(
  sql: Sql,
  where: ReturnType<Sql>,
  q: TxFilter,
): Promise<Page<ReturnType<typeof transactionJson>>> {
  const cursor = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
  const limit = pageLimit(q.limit);
  const { from, to } = periodOf(q);
  const rows = await sql`
    SELECT *, created_at::text AS cursor_ts FROM transactions
    WHERE ${where}
      ${q.type === undefined ? sql`` : sql`AND type = ${q.type}`}
      ${q.status === undefined ? sql`` : sql`AND status = ${q.status}`}
      ${from === undefined ? sql`` : sql`AND created_at >= ${from}::timestamptz`}
      ${to === undefined ? sql`` : sql`AND created_at < ${to}::timestamptz`}
      ${cursor === undefined ? sql`` : sql`AND ${keysetBefore(sql, cursor)}`}
    ORDER BY created_at DESC, id DESC LIMIT ${limit + 1}`;
  return toPage(rows as unknown as (TransactionRow & { cursor_ts: string })[], limit, transactionJson);
}

export async function listWalletTransactions(sql: Sql, caller: Caller, walletId: string, q: TxFilter) {
  await visibleWallet(sql, caller, walletId);
  return txPage(sql, sql`(wallet_id = ${walletId} OR destination_wallet_id = ${walletId})`, q);
}

export async function listTransactions(sql: Sql, caller: Caller, q: TxFilter) {
  const byWallet =
    q.wallet_id === undefined
      ? sql`TRUE`
      : sql`(wallet_id = ${q.wallet_id} OR destination_wallet_id = ${q.wallet_id})`;
  return txPage(sql, sql`${visibility(sql, caller)} AND ${byWallet}`, q);
}

export async function getTransaction(sql: Sql, caller: Caller, id: string) {
  const [row] = await sql`SELECT * FROM transactions WHERE id = ${id} AND ${visibility(sql, caller)}`;
  if (row === undefined) throw new NotFoundError("TRANSACTION_NOT_FOUND", "Transaction not found.");
  return transactionJson(row as TransactionRow);
}

/** The caller's transaction for an idempotency key (404 once the record is purged). */
export async function transactionByKey(sql: Sql, caller: Caller, key: string) {
  const [row] = await sql`
    SELECT t.* FROM idempotency_keys k JOIN transactions t ON t.id = k.transaction_id
    WHERE k.scope = ${idempotencyScope(caller)} AND k.key = ${key}`;
  if (row === undefined)
    throw new NotFoundError("TRANSACTION_NOT_FOUND", "No transaction for this idempotency key.");
  return transactionJson(row as TransactionRow);
}

/** Entry ids are bigints, so the statement has its own cursor ([created_at, id]) codec. */
function decodeEntryCursor(s: string): Cursor {
  // Reuse the shared validation by swapping the numeric id for a placeholder uuid.
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(s, "base64url").toString("utf8"));
  } catch {
    parsed = undefined;
  }
  const id = Array.isArray(parsed) ? parsed[1] : undefined;
  if (typeof id !== "string" || !/^[1-9]\d{0,18}$/.test(id)) {
    throw invalidField(
      "cursor",
      "is not a valid cursor; use next_cursor from the previous page",
      "invalid_cursor",
    );
  }
  const c = decodeCursor(
    encodeCursor({
      createdAt: String(parsed && (parsed as unknown[])[0]),
      id: "00000000-0000-0000-0000-000000000000",
    }),
  );
  return { createdAt: c.createdAt, id };
}

export async function listEntries(
  sql: Sql,
  caller: Caller,
  walletId: string,
  q: Period & { limit?: number; cursor?: string },
) {
  await visibleWallet(sql, caller, walletId);
  const cursor = q.cursor === undefined ? undefined : decodeEntryCursor(q.cursor);
  const limit = pageLimit(q.limit);
  const { from, to } = periodOf(q);
  const rows = await sql`
    SELECT id, transaction_id, wallet_id, currency, amount, balance_after, created_at, created_at::text AS cursor_ts
    FROM ledger_entries
    WHERE wallet_id = ${walletId}
      ${from === undefined ? sql`` : sql`AND created_at >= ${from}::timestamptz`}
      ${to === undefined ? sql`` : sql`AND created_at < ${to}::timestamptz`}
      ${cursor === undefined ? sql`` : sql`AND (created_at, id) < (${cursor.createdAt}::timestamptz, ${cursor.id}::bigint)`}
    ORDER BY created_at DESC, id DESC LIMIT ${limit + 1}`;
  const typed = (rows as unknown as (EntryRow & { cursor_ts: string })[]).map((r) => ({
    ...r,
    id: String(r.id),
  }));
  return toPage(typed, limit, entryJson);
}

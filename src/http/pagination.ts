// Cursor pagination (SPEC §3.1 Lists): newest first, keyset on (created_at DESC, id DESC).
// A keyset page asks "rows strictly older than the last one I saw", so rows inserted while a
// client pages (always newer) never shift later pages: no duplicates, no gaps.
//
// Precision: PostgreSQL keeps microseconds, a JS Date only milliseconds. A cursor built from
// a Date could skip or repeat rows created within the same millisecond, so list queries
// should also select `created_at::text AS cursor_ts` (exact, with its UTC offset) and the
// page helper prefers it. Usage in a service:
//
//   const cursor = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
//   const limit = pageLimit(query.limit);
//   const rows = await sql`
//     SELECT *, created_at::text AS cursor_ts FROM wallets
//     WHERE user_id = ${id} ${cursor ? sql`AND ${keysetBefore(sql, cursor)}` : sql``}
//     ORDER BY created_at DESC, id DESC LIMIT ${limit + 1}`;
//   return toPage(rows, limit, renderWallet);
import { t } from "elysia";
import type { Sql, TxSql } from "../db/client.ts";
import { invalidField } from "./errors.ts";

export const LIMIT_DEFAULT = 20;
export const LIMIT_MAX = 100;
/** A cursor longer than this is garbage before decoding (real ones are ~90 chars). */
const MAX_CURSOR_CHARS = 256;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Query-string schema pieces: spread into a route's `query: t.Object({...})`, then call
 * `pageLimit(query.limit)`. The 1–100 range is checked in code, not in the schema: Elysia
 * reports a range failure of a coerced query number without the field's name.
 */
export const paginationQuery = {
  limit: t.Optional(t.Integer({ description: `page size, 1–${LIMIT_MAX}, default ${LIMIT_DEFAULT}` })),
  cursor: t.Optional(
    t.String({ minLength: 1, maxLength: MAX_CURSOR_CHARS, description: "opaque, from next_cursor" }),
  ),
};

/** Response schema for a page of `item`. */
export const pageSchema = <T extends Parameters<typeof t.Array>[0]>(item: T) =>
  t.Object({
    data: t.Array(item),
    has_more: t.Boolean(),
    next_cursor: t.Union([t.String(), t.Null()]),
  });

/** The page size from `?limit=` (default 20); outside 1–100 is a 400 on `limit`. */
export function pageLimit(limit: number | undefined): number {
  if (limit === undefined) return LIMIT_DEFAULT;
  if (!Number.isInteger(limit) || limit < 1 || limit > LIMIT_MAX) {
    throw invalidField("limit", `must be an integer from 1 to ${LIMIT_MAX}`, "range");
  }
  return limit;
}

/** `createdAt` is exact text from PostgreSQL (`created_at::text`) or, less precisely, a Date. */
export type Cursor = { createdAt: string; id: string };
export type Page<T> = { data: T[]; has_more: boolean; next_cursor: string | null };

export function encodeCursor(c: { createdAt: Date | string; id: string }): string {
  const ts = c.createdAt instanceof Date ? c.createdAt.toISOString() : c.createdAt;
  return Buffer.from(JSON.stringify([ts, c.id]), "utf8").toString("base64url");
}

/** Decodes a cursor; anything that is not one of ours is a 400 on field `cursor`. */
export function decodeCursor(s: string): Cursor {
  const bad = () =>
    invalidField("cursor", "is not a valid cursor; use next_cursor from the previous page", "invalid_cursor");
  if (typeof s !== "string" || s.length === 0 || s.length > MAX_CURSOR_CHARS || !/^[A-Za-z0-9_-]+$/.test(s))
    throw bad();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(s, "base64url").toString("utf8"));
  } catch {
    throw bad();
  }
  if (!Array.isArray(parsed) || parsed.length !== 2) throw bad();
  const [ts, id] = parsed as unknown[];
  if (typeof ts !== "string" || typeof id !== "string" || !UUID.test(id)) throw bad();
  // Our own renderings only: ISO 8601 from a Date, or PostgreSQL's ISO text output.
  if (!/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}(:?\d{2})?)$/.test(ts)) throw bad();
  if (Number.isNaN(Date.parse(ts.replace(" ", "T").replace(/([+-]\d{2})$/, "$1:00")))) throw bad();
  return { createdAt: ts, id: id.toLowerCase() };
}

/**
 * The keyset condition `(created_at, id) < (cursor)`, optionally qualified by a table alias.
 * Matches an index on (created_at DESC, id DESC).
 */
export function keysetBefore(sql: Sql | TxSql, c: Cursor, alias?: string) {
  const createdAt = alias === undefined ? sql`created_at` : sql`${sql(alias)}.created_at`;
  const id = alias === undefined ? sql`id` : sql`${sql(alias)}.id`;
  // ::text first: postgres.js would serialise a timestamptz parameter through a JS Date,
  // dropping the microseconds the cursor carries.
  return sql`(${createdAt}, ${id}) < (${c.createdAt}::text::timestamptz, ${c.id}::uuid)`;
}

type KeyedRow = { id: string; created_at: Date; cursor_ts?: string };

/** Builds the page from `limit + 1` rows fetched newest first. */
export function toPage<R extends KeyedRow, T>(
  rows: readonly R[],
  limit: number,
  render: (r: R) => T,
): Page<T> {
  const hasMore = rows.length > limit;
  const shown = hasMore ? rows.slice(0, limit) : rows;
  const last = shown[shown.length - 1];
  return {
    data: shown.map(render),
    has_more: hasMore,
    next_cursor:
      hasMore && last !== undefined
        ? encodeCursor({ createdAt: last.cursor_ts ?? last.created_at, id: last.id })
        : null,
  };
}

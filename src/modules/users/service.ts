// Users and KYC. Plain functions over explicit arguments; every change and its outbox events
// commit in one transaction, and KYC transitions lock the user row so two decisions on one
// user serialise instead of both passing the status check.
import type { Actor, Caller, RequestScope } from "../../context.ts";
import type { Sql, TxSql } from "../../db/client.ts";
import { ConflictError, invalidField, NotFoundError } from "../../http/errors.ts";
import { decodeCursor, keysetBefore, type Page, pageLimit, toPage } from "../../http/pagination.ts";
import { appendEvents } from "../../outbox/events.ts";
import {
  EMAIL_MAX_CHARS,
  FULL_NAME_MAX_CHARS,
  KYC_REASON_MAX_CHARS,
  KYC_TRANSITIONS,
  type KycAction,
  type KycStatus,
  kycEventType,
  renderUser,
  type User,
  type UserRow,
  userEventData,
} from "./model.ts";

const USER_COLUMNS = [
  "id",
  "email",
  "full_name",
  "kyc_status",
  "kyc_reason",
  "created_at",
  "updated_at",
] as const;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// Deliberately simple: one @, no blanks or control characters, a dot in the domain.
const EMAIL = /^[^\s@\p{Cc}]+@[^\s@\p{Cc}]+\.[^\s@\p{Cc}]+$/u;
const CONTROL = /\p{Cc}/u;

export function normaliseEmail(raw: string, field = "email"): string {
  const email = raw.trim().toLowerCase();
  if (email === "") throw invalidField(field, "must not be blank", "blank");
  if (email.length > EMAIL_MAX_CHARS)
    throw invalidField(field, `must be at most ${EMAIL_MAX_CHARS} characters`, "too_long");
  if (!EMAIL.test(email)) throw invalidField(field, "is not a valid email address", "format");
  return email;
}

export function normaliseText(raw: string, field: string, max: number): string {
  const text = raw.trim();
  if (text === "") throw invalidField(field, "must not be blank", "blank");
  if (text.length > max) throw invalidField(field, `must be at most ${max} characters`, "too_long");
  if (CONTROL.test(text)) throw invalidField(field, "must not contain control characters", "format");
  return text;
}

function userNotFound(): NotFoundError {
  return new NotFoundError("USER_NOT_FOUND", "No such user.");
}

/** `scope.actor` is set when an authenticated caller registers someone; public sign-up has none. */
export async function registerUser(
  sql: Sql,
  scope: { traceId: string; actor?: Actor },
  input: { email: string; full_name: string },
): Promise<User> {
  const email = normaliseEmail(input.email);
  const fullName = normaliseText(input.full_name, "full_name", FULL_NAME_MAX_CHARS);
  return await sql.begin(async (tx) => {
    const [row] = await tx<UserRow[]>`
      INSERT INTO users (email, full_name) VALUES (${email}, ${fullName})
      RETURNING ${tx(USER_COLUMNS)}`;
    if (row === undefined) throw new Error("insert returned no row");
    // Self-registration is public: the new user is its own actor unless an admin registered it.
    const actor = scope.actor ?? { id: row.id, role: "user" as const };
    await appendEvents(tx, [
      {
        type: "user.created",
        aggregateType: "user",
        aggregateId: row.id,
        actor,
        traceId: scope.traceId,
        data: userEventData(row),
      },
    ]);
    return renderUser(row);
  });
}

export async function listUsers(
  sql: Sql,
  query: { kyc_status?: KycStatus; email?: string; limit?: number; cursor?: string },
): Promise<Page<User>> {
  const limit = pageLimit(query.limit);
  const cursor = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
  const email = query.email === undefined ? undefined : normaliseEmail(query.email);
  const rows = await sql<UserRow[]>`
    SELECT ${sql(USER_COLUMNS)}, created_at::text AS cursor_ts FROM users
    WHERE true
      ${query.kyc_status === undefined ? sql`` : sql`AND kyc_status = ${query.kyc_status}`}
      ${email === undefined ? sql`` : sql`AND email = ${email}`}
      ${cursor === undefined ? sql`` : sql`AND ${keysetBefore(sql, cursor)}`}
    ORDER BY created_at DESC, id DESC
    LIMIT ${limit + 1}`;
  return toPage(rows, limit, renderUser);
}

/** A user may see itself only; anyone else's id answers 404 (no existence leak). */
export async function getUser(sql: Sql, caller: Caller, id: string): Promise<User> {
  if (caller.role !== "admin" && caller.id !== id.toLowerCase()) throw userNotFound();
  const [row] = await sql<UserRow[]>`SELECT ${sql(USER_COLUMNS)} FROM users WHERE id = ${id}`;
  if (row === undefined) throw userNotFound();
  return renderUser(row);
}

async function lockUser(tx: TxSql, caller: Caller, id: string): Promise<UserRow> {
  if (!UUID.test(id) || (caller.role !== "admin" && caller.id !== id.toLowerCase())) throw userNotFound();
  const [row] = await tx<UserRow[]>`SELECT ${tx(USER_COLUMNS)} FROM users WHERE id = ${id} FOR UPDATE`;
  if (row === undefined) throw userNotFound();
  return row;
}

/** Applies one KYC action after checking the transition table. */
export async function transitionKyc(
  sql: Sql,
  scope: RequestScope,
  caller: Caller,
  id: string,
  action: KycAction,
  reason?: string,
): Promise<User> {
  const rule = KYC_TRANSITIONS[action];
  const cleanReason =
    action === "reject" ? normaliseText(reason ?? "", "reason", KYC_REASON_MAX_CHARS) : null;
  return await sql.begin(async (tx) => {
    const current = await lockUser(tx, caller, id);
    if (!rule.from.includes(current.kyc_status)) {
      throw new ConflictError("KYC_INVALID_TRANSITION", `KYC cannot ${action} from ${current.kyc_status}.`, {
        current_status: current.kyc_status,
      });
    }
    const [row] = await tx<UserRow[]>`
      UPDATE users SET kyc_status = ${rule.to},
        kyc_reason = ${action === "reject" ? cleanReason : action === "start" ? null : current.kyc_reason},
        kyc_actor = ${JSON.stringify(scope.actor)}::text::jsonb,
        updated_at = now()
      WHERE id = ${current.id}
      RETURNING ${tx(USER_COLUMNS)}`;
    if (row === undefined) throw userNotFound();
    await appendEvents(tx, [
      {
        type: kycEventType(action),
        aggregateType: "user",
        aggregateId: row.id,
        actor: scope.actor,
        traceId: scope.traceId,
        data: userEventData(row),
      },
    ]);
    return renderUser(row);
  });
}

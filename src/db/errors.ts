// SQLSTATE → AppError in one place. The client sees a stable code and a fixed sentence; the
// driver's message, the SQL and constraint internals stay in the server log.
import { AppError, ConflictError, invalidField, ServiceUnavailableError } from "../http/errors.ts";

/** Unique constraints whose violation is a business conflict (409 with this code). */
const UNIQUE_CONFLICTS: Record<string, { code: string; detail: string }> = {
  users_email_key: { code: "EMAIL_ALREADY_EXISTS", detail: "A user with this email already exists." },
  wallets_user_currency_open_key: {
    code: "WALLET_ALREADY_EXISTS",
    detail: "The user already has an open wallet in this currency.",
  },
};

/** Check constraints that guard request input: 400 naming the wire field. */
const CHECK_FIELDS: Record<string, { field: string; message: string }> = {
  users_email_check: { field: "email", message: "is not a valid email address" },
  users_full_name_check: { field: "full_name", message: "must be 1–255 characters" },
  users_kyc_reason_check: { field: "reason", message: "must be 1–1000 characters" },
  wallets_monthly_ge_daily: { field: "monthly_limit", message: "must not be below daily_limit" },
};

/** Connection-level failures: the database is unreachable or went away. */
const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "ETIMEDOUT",
  "EPIPE",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
]);

/** SQLSTATEs after which the same transaction may succeed when simply run again. */
export const RETRYABLE_SQLSTATES = new Set(["40001", "40P01"]);

type PgLike = { code?: unknown; constraint_name?: unknown; errno?: unknown; name?: unknown };

function pgFields(err: unknown): PgLike | undefined {
  return typeof err === "object" && err !== null ? (err as PgLike) : undefined;
}

export function sqlState(err: unknown): string | undefined {
  const code = pgFields(err)?.code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** Serialization failure or deadlock: the caller's retry loop should run the transaction again. */
export function isRetryable(err: unknown): boolean {
  const s = sqlState(err);
  return s !== undefined && RETRYABLE_SQLSTATES.has(s);
}

export function isConnectionError(err: unknown): boolean {
  const f = pgFields(err);
  if (f === undefined) return false;
  const code = typeof f.code === "string" ? f.code : typeof f.errno === "string" ? f.errno : undefined;
  if (code === undefined) return false;
  // 08xxx connection exceptions, 57P01-03 admin shutdown / cannot connect now
  return CONNECTION_CODES.has(code) || code.startsWith("08") || /^57P0[1-3]$/.test(code);
}

/**
 * Maps a database error to the AppError the client should see, or undefined when it is not
 * a database error (the caller then treats it as unexpected → 500).
 */
export function mapDbError(err: unknown): AppError | undefined {
  if (err instanceof AppError) return err;
  if (isConnectionError(err)) return new ServiceUnavailableError();
  const state = sqlState(err);
  if (state === undefined) return undefined;
  const constraint = pgFields(err)?.constraint_name;
  const name = typeof constraint === "string" ? constraint : "";
  switch (state) {
    case "23505": {
      const c = UNIQUE_CONFLICTS[name];
      return c
        ? new ConflictError(c.code, c.detail)
        : new ConflictError("CONFLICT", "The resource already exists.");
    }
    case "23514": {
      const f = CHECK_FIELDS[name];
      return f
        ? invalidField(f.field, f.message)
        : new AppError("VALIDATION_ERROR", 400, "The request violates a data rule.", []);
    }
    case "23503":
      // A reference to a row that does not exist: the request named an unknown resource.
      return new AppError(
        "VALIDATION_ERROR",
        400,
        "The request refers to a resource that does not exist.",
        [],
      );
    case "23502":
      return new AppError("VALIDATION_ERROR", 400, "A required value is missing.", []);
    case "22P02":
    case "22001":
    case "22003":
    case "22007":
    case "22008":
    case "22009":
    case "22021":
    case "22P05":
      // invalid text representation, too long, out of range, bad datetime (22009: a time zone
      // displacement out of range, e.g. "+215447-06-30T19:07:57Z"), NUL bytes (22P05: \u0000
      // inside jsonb) — found by the fuzzer (test/reliability/fuzz.test.ts)
      return new AppError("VALIDATION_ERROR", 400, "A value in the request is malformed.", []);
    case "57014":
      // statement_timeout (or a cancelled query): the database is overloaded or locked
      return new ServiceUnavailableError("The database did not answer in time. Retry later.");
    case "55P03":
      return new ServiceUnavailableError("The resource is busy. Retry later.");
    case "53300":
    case "53400":
      return new ServiceUnavailableError();
    case "40001":
    case "40P01":
      // Should have been retried by the service; if it escapes, the client may retry.
      return new ServiceUnavailableError("The request conflicted with another one. Retry it.");
    default:
      return undefined;
  }
}

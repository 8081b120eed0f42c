// Idempotency for money-moving POSTs (SPEC §3.1). The HTTP half lives here: reading and
// validating the `Idempotency-Key` header, the request fingerprint, the scope, and turning a
// stored outcome into the exact Response. The database half (claim with
// pg_try_advisory_xact_lock, lookup, insert in the same transaction as the effect) is part
// of the money path (src/ledger/postings.ts, pb_post).

import { createHash } from "node:crypto";
import type { Caller } from "../context.ts";
import type { Sql } from "../db/client.ts";
import {
  type IdempotencyClaim,
  type PostOutcome,
  type Settled,
  STORED_REJECTION_STATUSES,
  type StoredResponse,
} from "../ledger/postings.ts";
import { jsonResponse } from "./core.ts";
import { AppError, PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_BASE, toProblem } from "./errors.ts";
import { idHeaders, idsOf } from "./request-id.ts";

export const IDEMPOTENCY_KEY_HEADER = "Idempotency-Key";
export const IDEMPOTENT_REPLAYED_HEADER = "Idempotent-Replayed";
export const IDEMPOTENCY_KEY_MAX_CHARS = 255;
/** Visible ASCII only (0x21–0x7E): no spaces, no control characters. */
const VISIBLE_ASCII = /^[\x21-\x7e]+$/;
/** Rows deleted per purge statement, so a large backlog never holds locks for long. */
export const IDEMPOTENCY_PURGE_BATCH = 5_000;

/** The key of a money-moving request: required, 1–255 visible ASCII (400 otherwise, never stored). */
export function readIdempotencyKey(request: Request): string {
  const key = request.headers.get(IDEMPOTENCY_KEY_HEADER);
  if (key === null || key === "") {
    throw new AppError(
      "IDEMPOTENCY_KEY_REQUIRED",
      400,
      `The ${IDEMPOTENCY_KEY_HEADER} header is required on requests that move money.`,
    );
  }
  if (key.length > IDEMPOTENCY_KEY_MAX_CHARS || !VISIBLE_ASCII.test(key)) {
    throw new AppError(
      "VALIDATION_ERROR",
      400,
      `${IDEMPOTENCY_KEY_HEADER}: must be 1–${IDEMPOTENCY_KEY_MAX_CHARS} visible ASCII characters.`,
      [
        {
          field: IDEMPOTENCY_KEY_HEADER,
          message: `must be 1–${IDEMPOTENCY_KEY_MAX_CHARS} visible ASCII characters`,
          code: "format",
        },
      ],
    );
  }
  return key;
}

/** Records are scoped per caller: a user's id, an admin's `sub`. */
export function idempotencyScope(caller: Caller): string {
  return caller.id;
}

/** JSON with object keys sorted at every level: equal payloads give equal text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(",")}}`;
}

/** sha256 over method, route template, path params and the canonical body. */
export function requestFingerprint(
  method: string,
  routeTemplate: string,
  params: Record<string, string>,
  body: unknown,
): string {
  return createHash("sha256")
    .update(canonicalJson([method.toUpperCase(), routeTemplate, params, body ?? null]))
    .digest("hex");
}

/** Problem titles of the stored statuses, taken from toProblem itself so both renderings agree. */
const STORED_TITLES: Readonly<Record<string, string>> = Object.freeze(
  Object.fromEntries(
    [...STORED_REJECTION_STATUSES].map((s) => [String(s), toProblem(new AppError("X", s, ""), "", "").title]),
  ),
);

/**
 * The claim handed to the money path: the response that is stored and returned (success body,
 * or the problem document of a business rejection with THIS request's id). The database
 * renders it (`http`: the whole posting is then one statement, see src/ledger/postings.ts);
 * `respond` is the same rendering in JS for the transactional path.
 */
export function idempotencyClaim(
  request: Request,
  caller: Caller,
  key: string,
  fingerprint: string,
  success: { status: number; render: (s: Extract<Settled, { ok: true }>["result"]) => unknown },
): IdempotencyClaim {
  const requestId = idsOf(request).requestId;
  const instance = new URL(request.url).pathname;
  return {
    scope: idempotencyScope(caller),
    key,
    fingerprint,
    http: {
      successStatus: success.status,
      instance,
      requestId,
      problemTypeBase: PROBLEM_TYPE_BASE,
      titles: STORED_TITLES,
    },
    respond: (outcome) =>
      outcome.ok
        ? { status: success.status, body: JSON.stringify(success.render(outcome.result)) }
        : {
            status: outcome.error.status,
            body: JSON.stringify(toProblem(outcome.error, instance, requestId)),
          },
  };
}

/** The stored body, byte for byte, with this request's id headers. */
export function storedResponse(request: Request, stored: StoredResponse, replayed: boolean): Response {
  const headers: Record<string, string> = {
    "content-type": stored.status >= 400 ? PROBLEM_CONTENT_TYPE : "application/json",
    ...idHeaders(idsOf(request)),
  };
  if (replayed) headers[IDEMPOTENT_REPLAYED_HEADER] = "true";
  return jsonResponse(request, stored.body, stored.status, headers);
}

/** Maps a money-path outcome of an idempotent request to its Response. */
export function outcomeResponse(request: Request, out: PostOutcome, onReplay?: () => void): Response {
  switch (out.kind) {
    case "replayed":
      onReplay?.();
      return storedResponse(request, out.response, true);
    case "stored":
      return storedResponse(request, out.response, false);
    case "posted":
    case "rejected":
      if (out.response === undefined) throw new Error("idempotent posting without a stored response");
      return storedResponse(request, out.response, false);
    case "none":
      throw new Error("unexpected empty posting outcome");
    default: {
      const never: never = out;
      throw new Error(`unknown outcome ${String(never)}`);
    }
  }
}

/** Deletes records older than the TTL, in batches. Returns how many were purged. */
export async function purgeIdempotencyKeys(sql: Sql, ttlHours: number): Promise<number> {
  let total = 0;
  for (;;) {
    const r = await sql`
      DELETE FROM idempotency_keys WHERE ctid IN (
        SELECT ctid FROM idempotency_keys
        WHERE created_at < now() - make_interval(hours => ${ttlHours})
        LIMIT ${IDEMPOTENCY_PURGE_BATCH})`;
    total += r.count;
    if (r.count < IDEMPOTENCY_PURGE_BATCH) return total;
  }
}

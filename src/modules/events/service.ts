// The admin event feed (GET /api/v1/events) and requeue of parked events.
//
// Why the feed pages by (txid, position) and hides rows of recent transactions: `position`
// is taken at INSERT, not at COMMIT, so a transaction that inserted early and commits late
// would land BEHIND a cursor that already moved past later positions, and a consumer
// following `after=` would never see it. Serving only rows whose writing transaction is
// older than every transaction still running (txid < xmin of the current snapshot) and
// ordering by that txid first makes the order stable: every row that can still appear has
// a txid >= that xmin, so it sorts after everything already served. The price is a short
// lag: the feed waits for the oldest running transaction (bounded by the statement and
// idle-in-transaction timeouts).
import type { Sql } from "../../db/client.ts";
import { invalidField } from "../../http/errors.ts";
import { type Envelope, type EnvelopeRow, toEnvelope } from "../../outbox/envelope.ts";
import { requeueFailed } from "../../outbox/store.ts";
import { FEED_LIMIT_DEFAULT, FEED_LIMIT_MAX } from "./model.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type FeedPage = { data: Envelope[]; has_more: boolean };

export function feedLimit(limit: number | undefined): number {
  if (limit === undefined) return FEED_LIMIT_DEFAULT;
  if (!Number.isInteger(limit) || limit < 1 || limit > FEED_LIMIT_MAX) {
    throw invalidField("limit", `must be an integer from 1 to ${FEED_LIMIT_MAX}`, "range");
  }
  return limit;
}

export async function listEvents(sql: Sql, input: { after?: string; limit?: number }): Promise<FeedPage> {
  const limit = feedLimit(input.limit);
  let cursor: { txid: string; position: string } | undefined;
  if (input.after !== undefined) {
    if (!UUID.test(input.after)) throw invalidField("after", "must be an event id (uuid)", "format");
    const [row] = await sql<{ txid: string; position: string }[]>`
      SELECT txid::text AS txid, position::text AS position FROM outbox WHERE id = ${input.after}`;
    if (row === undefined) {
      throw invalidField(
        "after",
        "no such event (it may have been purged after the retention period)",
        "unknown",
      );
    }
    cursor = row;
  }
  const rows = await sql<EnvelopeRow[]>`
    SELECT id, type, version, occurred_at, aggregate_type, aggregate_id, sequence, trace_id, actor, data
    FROM outbox
    WHERE txid < pg_snapshot_xmin(pg_current_snapshot())
      ${cursor === undefined ? sql`` : sql`AND (txid, position) > (${cursor.txid}::xid8, ${cursor.position}::bigint)`}
    ORDER BY txid, position
    LIMIT ${limit + 1}
  `;
  return { data: rows.slice(0, limit).map(toEnvelope), has_more: rows.length > limit };
}

export async function requeueEvents(
  sql: Sql,
  ids: readonly string[] | undefined,
): Promise<{ requeued: number; ids: string[] }> {
  const done = await requeueFailed(sql, ids);
  return { requeued: done.length, ids: done };
}

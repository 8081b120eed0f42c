// How the application writes outbox events (users, wallets, and money postings that take
// the JS path). The money path's SQL functions (pb_post / pb_post_http in migration 00006)
// write their own events in the same statement as the posting, by the same rules: same
// table, same event_seq counter, same order. Always called with the transaction that makes
// the change, so a rolled-back change writes no event. The per-aggregate
// `sequence` comes from the aggregate row's own counter (event_seq), bumped in the same
// statement: it stays monotonic even after published rows are purged, and the aggregate's
// row lock orders concurrent writers.
import type { Actor } from "../context.ts";
import type { Sql, TxSql } from "../db/client.ts";

export const EVENT_TYPES = [
  "user.created",
  "user.kyc.started",
  "user.kyc.approved",
  "user.kyc.rejected",
  "wallet.created",
  "wallet.status_changed",
  "wallet.credited",
  "wallet.debited",
  "transaction.created",
  "transaction.completed",
  "transaction.failed",
  "transaction.cancelled",
  "transaction.retried",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];
export type AggregateType = "user" | "wallet" | "transaction";

export type NewEvent = {
  type: EventType;
  aggregateType: AggregateType;
  aggregateId: string;
  actor: Actor;
  traceId: string;
  data: Record<string, unknown>;
};

const AGGREGATE_TABLE = { user: "users", wallet: "wallets", transaction: "transactions" } as const;

/**
 * Appends events (in the given order) inside `tx`. Events of one aggregate get consecutive
 * sequences. One round trip for the whole batch.
 */
export async function appendEvents(tx: TxSql | Sql, events: readonly NewEvent[]): Promise<void> {
  if (events.length === 0) return;
  const rows = events.map((e, i) => ({
    ord: i,
    type: e.type,
    aggregate_type: e.aggregateType,
    aggregate_id: e.aggregateId,
    table: AGGREGATE_TABLE[e.aggregateType],
    trace_id: e.traceId,
    actor: JSON.stringify(e.actor),
    data: JSON.stringify(e.data),
  }));
  // Count events per aggregate, bump each aggregate's counter once, then number the events.
  const inserted = await tx`
    WITH ev AS (
      SELECT * FROM jsonb_to_recordset(${JSON.stringify(rows)}::text::jsonb)
        AS x(ord int, type text, aggregate_type text, aggregate_id uuid, "table" text, trace_id text, actor text, data text)
    ),
    counts AS (
      SELECT aggregate_type, aggregate_id, count(*)::int AS n FROM ev GROUP BY 1, 2
    ),
    bumped_users AS (
      UPDATE users u SET event_seq = u.event_seq + c.n FROM counts c
      WHERE c.aggregate_type = 'user' AND u.id = c.aggregate_id
      RETURNING 'user'::text AS aggregate_type, u.id AS aggregate_id, u.event_seq - c.n AS base
    ),
    bumped_wallets AS (
      UPDATE wallets w SET event_seq = w.event_seq + c.n FROM counts c
      WHERE c.aggregate_type = 'wallet' AND w.id = c.aggregate_id
      RETURNING 'wallet'::text, w.id, w.event_seq - c.n
    ),
    bumped_tx AS (
      UPDATE transactions t SET event_seq = t.event_seq + c.n FROM counts c
      WHERE c.aggregate_type = 'transaction' AND t.id = c.aggregate_id
      RETURNING 'transaction'::text, t.id, t.event_seq - c.n
    ),
    bases AS (
      SELECT * FROM bumped_users UNION ALL SELECT * FROM bumped_wallets UNION ALL SELECT * FROM bumped_tx
    ),
    ins AS (
      INSERT INTO outbox (type, aggregate_type, aggregate_id, sequence, trace_id, actor, data)
      SELECT ev.type, ev.aggregate_type, ev.aggregate_id,
             b.base + row_number() OVER (PARTITION BY ev.aggregate_type, ev.aggregate_id ORDER BY ev.ord),
             ev.trace_id, ev.actor::jsonb, ev.data::jsonb
      FROM ev JOIN bases b ON b.aggregate_type = ev.aggregate_type AND b.aggregate_id = ev.aggregate_id
      ORDER BY ev.ord
      RETURNING 1
    )
    -- pb_outbox_wake (migration 00008): notify a relay waiting for work, as pb_emit does.
    SELECT (SELECT count(*)::int FROM ins) AS n, pb_outbox_wake()
  `;
  const n = (inserted[0] as { n: number } | undefined)?.n ?? 0;
  if (n !== events.length) {
    // An event for a row that does not exist is a programming error: fail the transaction.
    throw new Error(`outbox: ${events.length - n} event(s) name a missing aggregate`);
  }
}

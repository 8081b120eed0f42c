// The relay's SQL: claiming, marking, purging and requeueing outbox rows. Kept apart from
// the loop in relay.ts so the locking rules can be read (and tested) in one place.
import type { Sql, TxSql } from "../db/client.ts";
import type { EnvelopeRow } from "./envelope.ts";

export type ClaimedRow = EnvelopeRow & { attempts: number };
/** A run of consecutive events of one aggregate, oldest first; delivered strictly in order. */
export type Chain = ClaimedRow[];

/**
 * Claims up to `heads` aggregates and up to `maxRows` of their pending events, inside `tx`
 * (the row locks live until it ends).
 *
 * A head is the OLDEST not-yet-published event of its aggregate, due now. Because every
 * earlier event of an aggregate must be PUBLISHED before a later one qualifies, a row that
 * is backing off or parked as FAILED blocks its aggregate, and a head locked by another
 * relay (SKIP LOCKED) keeps that relay's aggregates away from us: its head still reads as
 * pending, so none of its later rows qualify either. Holding the head's lock, we may then
 * take the aggregate's following events too, which keeps a busy aggregate from moving one
 * event per round trip.
 */
export async function claimChains(tx: TxSql, heads: number, maxRows: number): Promise<Chain[]> {
  const headRows = await tx<{ id: string }[]>`
    SELECT o.id FROM outbox o
    WHERE o.status = 'PENDING'
      AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= now())
      AND NOT EXISTS (
        SELECT 1 FROM outbox p
        WHERE p.aggregate_type = o.aggregate_type AND p.aggregate_id = o.aggregate_id
          AND p.sequence < o.sequence AND p.status <> 'PUBLISHED'
      )
    ORDER BY o.position
    LIMIT ${heads}
    FOR UPDATE OF o SKIP LOCKED
  `;
  if (headRows.length === 0) return [];
  const ids = headRows.map((r) => r.id);
  const rows = await tx<ClaimedRow[]>`
    WITH h AS (SELECT aggregate_type, aggregate_id, sequence FROM outbox WHERE id = ANY(${ids}::uuid[]))
    SELECT o.id, o.type, o.version, o.occurred_at, o.aggregate_type, o.aggregate_id, o.sequence,
           o.trace_id, o.actor, o.data, o.attempts
    FROM outbox o JOIN h ON h.aggregate_type = o.aggregate_type AND h.aggregate_id = o.aggregate_id
    WHERE o.status = 'PENDING' AND o.sequence >= h.sequence
    ORDER BY o.position
    LIMIT ${Math.max(maxRows, ids.length)}
    FOR UPDATE OF o SKIP LOCKED
  `;
  return toChains(rows, new Set(ids));
}

/** Groups rows into per-aggregate chains; a chain stops at the first gap in its sequence. */
export function toChains(rows: readonly ClaimedRow[], headIds: ReadonlySet<string>): Chain[] {
  const byAggregate = new Map<string, ClaimedRow[]>();
  for (const r of rows) {
    const key = `${r.aggregate_type}:${r.aggregate_id}`;
    const list = byAggregate.get(key);
    if (list === undefined) byAggregate.set(key, [r]);
    else list.push(r);
  }
  const chains: Chain[] = [];
  for (const list of byAggregate.values()) {
    list.sort((a, b) => a.sequence - b.sequence);
    const first = list[0];
    if (first === undefined || !headIds.has(first.id)) continue;
    const chain: Chain = [first];
    for (let i = 1; i < list.length; i++) {
      const r = list[i] as ClaimedRow;
      if (r.sequence !== (chain[chain.length - 1] as ClaimedRow).sequence + 1) break;
      chain.push(r);
    }
    chains.push(chain);
  }
  return chains;
}

export async function markPublished(tx: TxSql, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await tx`
    UPDATE outbox
    SET status = 'PUBLISHED', published_at = now(), attempts = attempts + 1, next_attempt_at = NULL, last_error = NULL
    WHERE id = ANY(${ids as string[]}::uuid[])
  `;
}

export type FailedAttempt = { id: string; error: string; delayMs: number };

/**
 * Records one failed attempt per row: back off by `delayMs`, or park the row as FAILED once
 * it has used `maxAttempts`. Returns the ids that were parked.
 */
export async function markFailed(
  tx: TxSql,
  failures: readonly FailedAttempt[],
  maxAttempts: number,
): Promise<string[]> {
  if (failures.length === 0) return [];
  const payload = JSON.stringify(failures.map((f) => ({ id: f.id, err: f.error, delay_ms: f.delayMs })));
  const rows = await tx<{ id: string }[]>`
    WITH f AS (SELECT * FROM jsonb_to_recordset(${payload}::text::jsonb) AS x(id uuid, err text, delay_ms bigint))
    UPDATE outbox o
    SET attempts = o.attempts + 1,
        last_error = left(f.err, 1000),
        status = CASE WHEN o.attempts + 1 >= ${maxAttempts} THEN 'FAILED' ELSE 'PENDING' END,
        next_attempt_at = CASE WHEN o.attempts + 1 >= ${maxAttempts} THEN NULL
                               ELSE now() + f.delay_ms * interval '1 millisecond' END
    FROM f WHERE o.id = f.id
    RETURNING o.id, o.status
  `;
  return rows.filter((r) => (r as unknown as { status: string }).status === "FAILED").map((r) => r.id);
}

/** Rows removed per purge statement: keeps each delete short. */
export const PURGE_CHUNK_ROWS = 5_000;
/** Upper bound of chunks per purge run, so a huge backlog never starves delivery. */
const PURGE_MAX_CHUNKS = 20;

/**
 * Deletes published rows older than the retention period; with no delivery target (rows
 * are never published) rows of any status. Safe to run on many replicas at once.
 */
export async function purgeOld(sql: Sql, retentionHours: number, anyStatus: boolean): Promise<number> {
  let total = 0;
  for (let i = 0; i < PURGE_MAX_CHUNKS; i++) {
    const rows = anyStatus
      ? await sql`
          DELETE FROM outbox WHERE id IN (
            SELECT id FROM outbox WHERE occurred_at < now() - make_interval(hours => ${retentionHours})
            LIMIT ${PURGE_CHUNK_ROWS} FOR UPDATE SKIP LOCKED)`
      : await sql`
          DELETE FROM outbox WHERE id IN (
            SELECT id FROM outbox
            WHERE status = 'PUBLISHED' AND published_at < now() - make_interval(hours => ${retentionHours})
            LIMIT ${PURGE_CHUNK_ROWS} FOR UPDATE SKIP LOCKED)`;
    total += rows.count;
    if (rows.count < PURGE_CHUNK_ROWS) break;
  }
  return total;
}

/** Upper bound of ids in one requeue request. */
export const REQUEUE_MAX_IDS = 1_000;

/**
 * Puts parked (FAILED) events back to PENDING with a fresh attempt budget. `ids` undefined
 * means every FAILED row. Returns the ids requeued (rows that were not FAILED are ignored).
 */
export async function requeueFailed(sql: Sql | TxSql, ids?: readonly string[]): Promise<string[]> {
  const rows =
    ids === undefined
      ? await sql<{ id: string }[]>`
          UPDATE outbox SET status = 'PENDING', attempts = 0, next_attempt_at = NULL
          WHERE status = 'FAILED' RETURNING id`
      : await sql<{ id: string }[]>`
          UPDATE outbox SET status = 'PENDING', attempts = 0, next_attempt_at = NULL
          WHERE status = 'FAILED' AND id = ANY(${ids as string[]}::uuid[]) RETURNING id`;
  return rows.map((r) => r.id);
}

export type OutboxStats = { pending: number; failed: number; oldestPendingAgeSeconds: number | null };

export async function outboxStats(sql: Sql): Promise<OutboxStats> {
  const [row] = await sql<{ pending: number; failed: number; oldest: number | null }[]>`
    SELECT (SELECT count(*)::int FROM outbox WHERE status = 'PENDING') AS pending,
           (SELECT count(*)::int FROM outbox WHERE status = 'FAILED') AS failed,
           (SELECT extract(epoch FROM now() - min(occurred_at))::float8 FROM outbox WHERE status = 'PENDING') AS oldest
  `;
  return {
    pending: row?.pending ?? 0,
    failed: row?.failed ?? 0,
    oldestPendingAgeSeconds: row?.oldest ?? null,
  };
}

/**
 * Registers this relay as waiting for a NOTIFY for the next `leaseMs` (migration 00007: the
 * outbox trigger notifies only while some relay waits). Renewed on every idle poll.
 */
export async function markWaiting(sql: Sql, relayId: string, leaseMs: number): Promise<void> {
  await sql`
    INSERT INTO outbox_listeners (relay_id, waiting_until)
    VALUES (${relayId}, now() + ${leaseMs} * interval '1 millisecond')
    ON CONFLICT (relay_id) DO UPDATE SET waiting_until = EXCLUDED.waiting_until`;
}

/** This relay is busy (or gone): writers stop notifying on its behalf. */
export async function clearWaiting(sql: Sql, relayId: string): Promise<void> {
  await sql`DELETE FROM outbox_listeners WHERE relay_id = ${relayId}`;
}

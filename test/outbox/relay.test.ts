// The relay against the real NATS JetStream at 127.0.0.1:4222 (a private stream per test):
// per-aggregate order, exactly once in the stream, two relays at once, notify wake-up,
// rolled-back transactions, backoff and FAILED parking, requeue, purge.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Sql } from "../../src/db/client.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import type { DeliveryTarget, Envelope } from "../../src/outbox/envelope.ts";
import { appendEvents } from "../../src/outbox/events.ts";
import { relayHealth } from "../../src/outbox/health.ts";
import { backoffDelayMs, type RelayTuning, startRelay } from "../../src/outbox/relay.ts";
import { clearWaiting, markWaiting, purgeOld, requeueFailed } from "../../src/outbox/store.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";
import {
  connectSql,
  insertUsers,
  NATS_URL,
  outboxCounts,
  perAggregateProblems,
  privateStream,
  silentLogger,
  testConfig,
  waitFor,
  writeRounds,
} from "./helpers.ts";

let db: TestDatabase;
let sql: Sql;

beforeAll(async () => {
  db = await createTestDatabase("pbrelay");
  sql = connectSql(db.url, 6);
});

afterAll(async () => {
  await sql?.end({ timeout: 1 });
  await db?.drop();
});

async function resetOutbox() {
  await sql`DELETE FROM outbox`;
}

function natsRelay(
  stream: { streamName: string; subjectPrefix: string },
  tuning: RelayTuning = {},
  env = {},
) {
  const metrics = createMetrics();
  const relay = startRelay({
    config: testConfig(db.url, { NATS_URL, ...env }),
    sql,
    logger: silentLogger,
    metrics,
    tuning: { natsStreamName: stream.streamName, natsSubjectPrefix: stream.subjectPrefix, ...tuning },
  });
  return { relay, metrics };
}

async function metricValue(metrics: ReturnType<typeof createMetrics>, name: string, target: string) {
  const m = await metrics.registry.getSingleMetric(name)?.get();
  return m?.values.find((v) => v.labels.target === target)?.value ?? 0;
}

describe("relay to NATS JetStream", () => {
  test("delivers every event once, in order per aggregate, then marks it published", async () => {
    await resetOutbox();
    const stream = await privateStream();
    const users = await insertUsers(sql, 40);
    await writeRounds(sql, users, 6);
    const { relay, metrics } = natsRelay(stream);
    try {
      await waitFor("all published", async () => (await outboxCounts(sql)).PUBLISHED === 240);
    } finally {
      await relay.stop();
    }
    const msgs = await stream.readAll();
    expect(msgs.length).toBe(240);
    expect(perAggregateProblems(msgs)).toEqual([]);
    expect(await metricValue(metrics, "paybridge_outbox_published_total", "nats")).toBe(240);
    // The envelope of SPEC §2.5, field for field.
    const first = msgs.find((m) => m.aggregate_id === users[0] && m.sequence === 1) as Envelope;
    expect(Object.keys(first).sort()).toEqual(
      [
        "actor",
        "aggregate_id",
        "aggregate_type",
        "data",
        "id",
        "occurred_at",
        "sequence",
        "trace_id",
        "type",
        "version",
      ].sort(),
    );
    expect(first).toMatchObject({
      version: 1,
      aggregate_type: "user",
      trace_id: "trace-1",
      actor: { id: "test", role: "admin" },
    });
    expect(first.data).toMatchObject({ round: 1 });
    const [row] = await sql`SELECT attempts, published_at FROM outbox WHERE id = ${first.id}`;
    expect(row?.attempts).toBe(1);
    expect(row?.published_at).toBeInstanceOf(Date);
    expect(relay.state().status).toBe("stopped");
    await stream.remove();
  }, 60_000);

  test("two relays at once: each event once in the stream, per-aggregate order kept", async () => {
    await resetOutbox();
    const stream = await privateStream();
    const users = await insertUsers(sql, 30);
    await writeRounds(sql, users, 20);
    const total = 600;
    // Small batches so both relays interleave over the same aggregates many times.
    const tuning = { batchAggregates: 4, batchMaxRows: 8 };
    const a = natsRelay(stream, tuning);
    const b = natsRelay(stream, tuning);
    try {
      await waitFor("all published", async () => (await outboxCounts(sql)).PUBLISHED === total);
    } finally {
      await Promise.all([a.relay.stop(), b.relay.stop()]);
    }
    const msgs = await stream.readAll();
    expect(msgs.length).toBe(total);
    expect(perAggregateProblems(msgs)).toEqual([]);
    const delivered = [a.relay.state().delivered, b.relay.state().delivered];
    expect((delivered[0] ?? 0) + (delivered[1] ?? 0)).toBeGreaterThanOrEqual(total);
    console.log(`two relays: relay A delivered ${delivered[0]}, relay B ${delivered[1]}`);
    await stream.remove();
  }, 60_000);

  test("a notification wakes an idle relay (no poll in between)", async () => {
    await resetOutbox();
    const stream = await privateStream();
    const users = await insertUsers(sql, 1);
    await writeRounds(sql, users, 1);
    const { relay } = natsRelay(stream, { pollIntervalMs: 3_600_000 });
    try {
      await waitFor("first event published", async () => (await outboxCounts(sql)).PUBLISHED === 1);
      await waitFor("relay registered as waiting for a notification", async () => {
        const [r] = await sql<{ n: number }[]>`
          SELECT count(*)::int AS n FROM outbox_listeners WHERE waiting_until > now()`;
        return r?.n === 1;
      });
      await writeRounds(sql, users, 1, 2);
      // Only LISTEN/NOTIFY can deliver this one: the relay's poll interval is an hour.
      await waitFor("second event published", async () => (await outboxCounts(sql)).PUBLISHED === 2, 15_000);
    } finally {
      await relay.stop();
    }
    await stream.remove();
  }, 30_000);

  test("writers notify only while a relay waits (the money path pays no NOTIFY under load)", async () => {
    const users = await insertUsers(sql, 1);
    const got: string[] = [];
    const sub = await sql.listen("paybridge_outbox", (payload) =>
      got.push(payload === "" ? "wake" : payload),
    );
    // Notifications reach a listener in commit order: a marker sent after the write proves
    // whether the write notified, without waiting for an absence.
    const writeThenMark = async (marker: string) => {
      await writeRounds(sql, users, 1, 100 + got.length);
      await sql`SELECT pg_notify('paybridge_outbox', ${marker})`;
      await waitFor(marker, () => got.includes(marker));
    };
    try {
      await writeThenMark("m1");
      const relayId = crypto.randomUUID();
      await markWaiting(sql, relayId, 60_000);
      await writeThenMark("m2");
      await clearWaiting(sql, relayId);
      await writeThenMark("m3");
      expect(got).toEqual(["m1", "wake", "m2", "m3"]);
    } finally {
      await sub.unlisten();
    }
  });

  test("a rolled-back transaction writes no event", async () => {
    await resetOutbox();
    const [user] = await insertUsers(sql, 1);
    const err = await sql
      .begin(async (tx) => {
        await appendEvents(tx, [
          {
            type: "user.kyc.started",
            aggregateType: "user",
            aggregateId: user as string,
            actor: { id: "x", role: "user" },
            traceId: "t",
            data: {},
          },
        ]);
        throw new Error("rollback");
      })
      .catch((e: Error) => e);
    expect((err as Error).message).toBe("rollback");
    expect(await outboxCounts(sql)).toEqual({ PENDING: 0, PUBLISHED: 0, FAILED: 0 });
    const [u] = await sql`SELECT event_seq FROM users WHERE id = ${user as string}`;
    expect(u?.event_seq).toBe(0);
  });
});

/** A target that fails for chosen event ids (a stand-in receiver, not a database mock). */
function recordingTarget(failFor: Set<string>): DeliveryTarget & { got: Envelope[] } {
  const got: Envelope[] = [];
  return {
    name: "webhook",
    got,
    async deliver(e) {
      if (failFor.has(e.id)) throw new Error("receiver rejected it");
      got.push(e);
    },
    async close() {},
  };
}

describe("retries, parking and requeue", () => {
  test("backoff grows exponentially with jitter and is capped", () => {
    expect(backoffDelayMs(1, 1000, 60_000, () => 0)).toBe(500);
    expect(backoffDelayMs(1, 1000, 60_000, () => 1)).toBe(1000);
    expect(backoffDelayMs(4, 1000, 60_000, () => 1)).toBe(8000);
    expect(backoffDelayMs(30, 1000, 60_000, () => 1)).toBe(60_000);
    expect(backoffDelayMs(30, 1000, 60_000, () => 0)).toBe(30_000);
  });

  test("a failing event backs off, is parked as FAILED after OUTBOX_MAX_ATTEMPTS and blocks only its aggregate", async () => {
    await resetOutbox();
    const users = await insertUsers(sql, 3);
    await writeRounds(sql, users, 3);
    const [bad] = await sql<{ id: string }[]>`
      SELECT id FROM outbox WHERE aggregate_id = ${users[0] as string} AND sequence = 2`;
    const failFor = new Set([bad?.id as string]);
    const target = recordingTarget(failFor);
    const metrics = createMetrics();
    const relay = startRelay({
      config: testConfig(db.url, { OUTBOX_MAX_ATTEMPTS: "3" }),
      sql,
      logger: silentLogger,
      metrics,
      tuning: {
        targets: [target],
        backoffBaseMs: 20,
        backoffMaxMs: 40,
        pollIntervalMs: 20,
        breakerFailureThreshold: 1000,
      },
    });
    try {
      await waitFor("bad event parked", async () => (await outboxCounts(sql)).FAILED === 1);
      await waitFor("others published", async () => (await outboxCounts(sql)).PUBLISHED === 7);
    } finally {
      await relay.stop();
    }
    const [row] = await sql`SELECT status, attempts, last_error FROM outbox WHERE id = ${bad?.id as string}`;
    expect(row).toMatchObject({ status: "FAILED", attempts: 3 });
    expect(String(row?.last_error)).toContain("receiver rejected it");
    // The aggregate's later event waits behind the parked one, untouched.
    const [later] =
      await sql`SELECT status, attempts FROM outbox WHERE aggregate_id = ${users[0] as string} AND sequence = 3`;
    expect(later).toMatchObject({ status: "PENDING", attempts: 0 });
    expect(await metricValue(metrics, "paybridge_outbox_failed_total", "webhook")).toBe(1);
    const health = await relayHealth(sql, { config: testConfig(db.url, { NATS_URL }) });
    expect(health).toMatchObject({ status: "warn", failed: 1, pending: 1 });

    // Requeue after the cause is fixed: the aggregate drains in order.
    failFor.clear();
    expect(await requeueFailed(sql, [users[1] as string])).toEqual([]); // not an event id: nothing
    expect(await requeueFailed(sql)).toEqual([bad?.id as string]);
    const relay2 = startRelay({
      config: testConfig(db.url),
      sql,
      logger: silentLogger,
      metrics,
      tuning: { targets: [target] },
    });
    try {
      await waitFor("all published", async () => (await outboxCounts(sql)).PUBLISHED === 9);
    } finally {
      await relay2.stop();
    }
    const seqs = target.got.filter((e) => e.aggregate_id === users[0]).map((e) => e.sequence);
    expect(seqs).toEqual([1, 2, 3]);
  }, 30_000);

  test("purge removes old published rows; with no target, old rows of any status", async () => {
    await resetOutbox();
    const users = await insertUsers(sql, 2);
    await writeRounds(sql, users, 3);
    await sql`UPDATE outbox SET status = 'PUBLISHED', published_at = now() - interval '10 hours' WHERE sequence = 1`;
    await sql`UPDATE outbox SET status = 'PUBLISHED', published_at = now() WHERE sequence = 2`;
    await sql`UPDATE outbox SET occurred_at = now() - interval '10 hours' WHERE sequence = 3`;
    expect(await purgeOld(sql, 5, false)).toBe(2); // the two old published rows only
    expect(await outboxCounts(sql)).toEqual({ PENDING: 2, PUBLISHED: 2, FAILED: 0 });
    expect(await purgeOld(sql, 5, true)).toBe(2); // the old pending rows (no target configured)
    expect(await outboxCounts(sql)).toEqual({ PENDING: 0, PUBLISHED: 2, FAILED: 0 });
  });

  test("with no target the relay idles and the backlog is not a warning", async () => {
    await resetOutbox();
    const users = await insertUsers(sql, 1);
    await writeRounds(sql, users, 2);
    const relay = startRelay({
      config: testConfig(db.url),
      sql,
      logger: silentLogger,
      metrics: createMetrics(),
    });
    expect(relay.state()).toMatchObject({ status: "idle", targets: [] });
    await relay.stop();
    expect(await outboxCounts(sql)).toMatchObject({ PENDING: 2 });
    const health = await relayHealth(sql, { config: testConfig(db.url), relay });
    expect(health).toMatchObject({ status: "pass", pending: 2, targets: [], relay: "stopped" });
  });
});

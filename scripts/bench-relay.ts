// Relay benchmark (prints figures; not a test). Uses its own database and a private
// JetStream stream on the NATS at 127.0.0.1:4222, and removes both afterwards.
//
//   bun scripts/bench-relay.ts [--events 100000] [--aggregates 10000] [--notify-seconds 5] [--skip-notify]
//
// 1. Drain: writes N events (N/aggregates per aggregate) with the relay stopped, then starts
//    ONE relay and times until every row is PUBLISHED (acked by the stream): events/s.
// 2. Notify cost: commits/s of a money-like transaction (bump one aggregate, append 3
//    events) from 8 concurrent connections, with no wake-up, a plain NOTIFY on every write,
//    and the shipped rule (pb_outbox_wake, migration 00008) with relays busy and with a relay
//    waiting.
import { parseArgs } from "node:util";
import pino from "pino";
import leanerUpSql from "../migrations/sql/00008_money_path_leaner.up.sql" with { type: "text" };
import { loadConfig } from "../src/config.ts";
import type { Sql } from "../src/db/client.ts";
import { createMetrics } from "../src/observability/metrics.ts";
import { appendEvents } from "../src/outbox/events.ts";
import { startRelay } from "../src/outbox/relay.ts";
import { createTestDatabase } from "../test/helpers/db.ts";
import { connectSql, insertUsers, NATS_URL, outboxCounts, privateStream } from "../test/outbox/helpers.ts";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    events: { type: "string", default: "100000" },
    aggregates: { type: "string", default: "10000" },
    "notify-seconds": { type: "string", default: "5" },
    "skip-notify": { type: "boolean", default: false },
    "skip-drain": { type: "boolean", default: false },
    "notify-rounds": { type: "string", default: "4" },
    "batch-aggregates": { type: "string" },
    "batch-rows": { type: "string" },
  },
});
const EVENTS = Number(values.events);
const AGGREGATES = Number(values.aggregates);
const NOTIFY_SECONDS = Number(values["notify-seconds"]);
const NOTIFY_ROUNDS = Number(values["notify-rounds"]);
const WRITERS = 8;
const WRITE_CHUNK = 5_000;

async function drainBenchmark(sql: Sql) {
  const perAggregate = Math.max(1, Math.round(EVENTS / AGGREGATES));
  const users = await insertUsers(sql, AGGREGATES);
  const t0 = performance.now();
  // Many aggregates per transaction keeps the load phase short; rounds keep per-aggregate order.
  for (let round = 1; round <= perAggregate; round++) {
    for (let i = 0; i < users.length; i += WRITE_CHUNK) {
      const chunk = users.slice(i, i + WRITE_CHUNK);
      await sql.begin((tx) =>
        appendEvents(
          tx,
          chunk.map((id) => ({
            type: "wallet.credited" as const,
            aggregateType: "user" as const,
            aggregateId: id,
            actor: { id: "bench", role: "admin" as const },
            traceId: "0af7651916cd43dd8448eb211c80319c",
            data: {
              wallet_id: id,
              transaction_id: id,
              amount: "100.50",
              currency: "USD",
              balance_after: "1000.00",
            },
          })),
        ),
      );
    }
  }
  const total = (await outboxCounts(sql)).PENDING ?? 0;
  console.log(
    `loaded ${total} events over ${users.length} aggregates in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );

  const config = loadConfig({ DATABASE_URL: db.url, NATS_URL, PAYBRIDGE_ENV: "test" }, "relay");
  const start = performance.now();
  const relay = startRelay({
    config,
    sql,
    logger: pino({ level: "warn" }),
    metrics: createMetrics(),
    tuning: {
      natsStreamName: stream.streamName,
      natsSubjectPrefix: stream.subjectPrefix,
      batchAggregates:
        values["batch-aggregates"] === undefined ? undefined : Number(values["batch-aggregates"]),
      batchMaxRows: values["batch-rows"] === undefined ? undefined : Number(values["batch-rows"]),
    },
  });
  let lastReport = start;
  for (;;) {
    const c = await outboxCounts(sql);
    if ((c.PUBLISHED ?? 0) >= total) break;
    if (performance.now() - lastReport > 5_000) {
      lastReport = performance.now();
      console.log(`  ... ${c.PUBLISHED} published`);
    }
    await Bun.sleep(100);
  }
  const seconds = (performance.now() - start) / 1000;
  await relay.stop();
  console.log(
    `drain: ${total} events to JetStream by one relay in ${seconds.toFixed(1)} s = ${Math.round(total / seconds)} events/s (stream holds ${await stream.count()})`,
  );
}

// The shipped wake-up rule is pb_outbox_wake() of migration 00008, called by every outbox
// writer after its INSERT; each variant redefines that function for the run.
const SHIPPED_WAKE = (() => {
  const start = leanerUpSql.indexOf("CREATE FUNCTION pb_outbox_wake()");
  const end = leanerUpSql.indexOf("\n$$;", start) + 4;
  return leanerUpSql.slice(start, end).replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION");
})();
const wakeBody = (body: string) =>
  `CREATE OR REPLACE FUNCTION pb_outbox_wake() RETURNS void LANGUAGE plpgsql AS $$ BEGIN ${body} END $$;`;
const VARIANTS = {
  none: wakeBody("RETURN;"),
  "plain NOTIFY": wakeBody("PERFORM pg_notify('paybridge_outbox', '');"),
  // Relays busy (the situation under load): nobody waits, nobody notifies.
  "shipped, relays busy": `${SHIPPED_WAKE} DELETE FROM outbox_listeners;`,
  // A relay waiting for the whole run (worst case; really it stops waiting at the first wake).
  "shipped, relay waiting": `${SHIPPED_WAKE} DELETE FROM outbox_listeners;
    INSERT INTO outbox_listeners VALUES (gen_random_uuid(), now() + interval '1 day');`,
} as const;

async function notifyBenchmark(sql: Sql) {
  const users = await insertUsers(sql, WRITERS);
  let notifications = 0;
  const listener = await sql.listen("paybridge_outbox", () => {
    notifications++;
  });
  const rates = new Map<string, number[]>();
  const notified = new Map<string, number[]>();
  // Many short rounds in alternating order, so drift in the shared machine's load hits every
  // variant alike; the medians are reported.
  for (let round = 1; round <= NOTIFY_ROUNDS; round++) {
    const order = Object.keys(VARIANTS) as (keyof typeof VARIANTS)[];
    for (const name of round % 2 === 1 ? order : [...order].reverse()) {
      await sql.unsafe(VARIANTS[name]);
      await sql`DELETE FROM outbox`;
      notifications = 0;
      const until = performance.now() + NOTIFY_SECONDS * 1000;
      let commits = 0;
      await Promise.all(
        users.map(async (id) => {
          while (performance.now() < until) {
            await sql.begin(async (tx) => {
              await tx`UPDATE users SET updated_at = now() WHERE id = ${id}`;
              await appendEvents(
                tx,
                ["transaction.created", "wallet.credited", "transaction.completed"].map((type) => ({
                  type: type as "wallet.credited",
                  aggregateType: "user" as const,
                  aggregateId: id,
                  actor: { id: "bench", role: "admin" as const },
                  traceId: "t",
                  data: { amount: "1.00", currency: "USD" },
                })),
              );
            });
            commits++;
          }
        }),
      );
      await Bun.sleep(200);
      rates.set(name, [...(rates.get(name) ?? []), commits / NOTIFY_SECONDS]);
      notified.set(name, [...(notified.get(name) ?? []), commits === 0 ? 0 : notifications / commits]);
    }
  }
  await listener.unlisten();
  await sql`DELETE FROM outbox_listeners`;
  console.log(
    `notify cost (${WRITERS} concurrent writers, 3 events per commit, ${NOTIFY_ROUNDS} rounds of ${NOTIFY_SECONDS} s):`,
  );
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  const base = median(rates.get("none") ?? []);
  for (const [name, xs] of rates) {
    const m = median(xs);
    console.log(
      `  ${name.padEnd(24)} median ${Math.round(m).toString().padStart(6)} commits/s (${Math.round((m / base) * 100)}% of none), ` +
        `${Math.round(median(notified.get(name) ?? []) * 100)}% of commits notified; rounds: ${xs.map(Math.round).join(", ")}`,
    );
  }
}

const db = await createTestDatabase("pbbench");
const sql = connectSql(db.url, WRITERS + 4);
const stream = await privateStream();
try {
  if (!values["skip-drain"]) await drainBenchmark(sql);
  if (!values["skip-notify"]) await notifyBenchmark(sql);
} finally {
  await stream.remove();
  await sql.end({ timeout: 1 });
  await db.drop();
}

// Broker outages on a PRIVATE nats-server (free port, temp store) that this test starts and
// kills: the shared NATS at 4222 is never touched. Backlog grows, the breaker opens, nothing
// is parked or lost, and everything drains, once each and in order, when the broker returns.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import type { Sql } from "../../src/db/client.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import { relayHealth } from "../../src/outbox/health.ts";
import { startRelay } from "../../src/outbox/relay.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";
import {
  connectSql,
  freePort,
  insertUsers,
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
let server: Subprocess | undefined;
const storeDir = mkdtempSync(join(tmpdir(), "pbnats-"));

beforeAll(async () => {
  db = await createTestDatabase("pbbroker");
  sql = connectSql(db.url, 6);
});
afterAll(async () => {
  server?.kill("SIGKILL");
  await sql?.end({ timeout: 1 });
  await db?.drop();
  rmSync(storeDir, { recursive: true, force: true });
});

async function startNats(port: number): Promise<Subprocess> {
  const p = Bun.spawn(["nats-server", "-js", "-a", "127.0.0.1", "-p", String(port), "-sd", storeDir], {
    stdout: "ignore",
    stderr: "ignore",
  });
  await waitFor("private nats-server listening", async () => {
    try {
      const s = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
      s.end();
      return true;
    } catch {
      return false;
    }
  });
  return p;
}

test("broker down at start and mid-run: backlog grows, breaker opens, nothing lost, drains on return", async () => {
  const port = freePort();
  const url = `nats://127.0.0.1:${port}`;
  const streamName = "PBTEST_OUTAGE";
  const subjectPrefix = "pbtest.outage.events";
  const config = testConfig(db.url, { NATS_URL: url });
  const users = await insertUsers(sql, 20);
  await writeRounds(sql, users, 2);
  const relay = startRelay({
    config,
    sql,
    logger: silentLogger,
    metrics: createMetrics(),
    tuning: {
      natsStreamName: streamName,
      natsSubjectPrefix: subjectPrefix,
      natsPublishTimeoutMs: 500,
      breakerFailureThreshold: 3,
      breakerCooldownMs: 200,
      pollIntervalMs: 50,
      backoffBaseMs: 50,
      backoffMaxMs: 100,
    },
  });
  try {
    // 1. Nothing listens on the port yet.
    await waitFor("breaker open (no broker)", () => relay.state().breakers.nats === "open");
    expect((await outboxCounts(sql)).PENDING).toBe(40);
    const h = await relayHealth(sql, { config, relay });
    expect(h.status).toBe("warn");
    expect(h.breakers).toEqual({ nats: "open" });

    server = await startNats(port);
    await waitFor("first drain", async () => (await outboxCounts(sql)).PUBLISHED === 40);

    // 2. The broker dies while the relay is connected; more events arrive meanwhile.
    server.kill("SIGKILL");
    await server.exited;
    await writeRounds(sql, users, 2, 3);
    await waitFor("breaker open (broker died)", () => relay.state().breakers.nats === "open");
    // The new events wait as backlog; nothing gets parked while the broker is away.
    await waitFor("backlog visible", async () => (await relayHealth(sql, { config, relay })).pending === 40);
    expect((await outboxCounts(sql)).FAILED).toBe(0);

    server = await startNats(port);
    await waitFor("second drain", async () => (await outboxCounts(sql)).PUBLISHED === 80, 45_000);
    expect(relay.state().breakers.nats).toBe("closed");
  } finally {
    await relay.stop();
  }
  const stream = await privateStream(url, { streamName, subjectPrefix });
  const all = await stream.readAll();
  expect(all.length).toBe(80);
  expect(perAggregateProblems(all)).toEqual([]);
  await stream.nc.close();
}, 90_000);

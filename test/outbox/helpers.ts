// Shared fixtures of the outbox tests: a migrated database, aggregates inserted directly in
// SQL (the API is built elsewhere), events written through appendEvents, a private
// JetStream stream per test, and small waiting helpers (waiting is not asserting time).
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import pino from "pino";
import postgres from "postgres";
import { type Config, loadConfig } from "../../src/config.ts";
import type { Sql } from "../../src/db/client.ts";
import type { Envelope } from "../../src/outbox/envelope.ts";
import { appendEvents, type EventType } from "../../src/outbox/events.ts";

export const NATS_URL = "nats://127.0.0.1:4222";
export const silentLogger = pino({ level: "silent" });

export function testConfig(databaseUrl: string, env: Record<string, string> = {}): Config {
  return loadConfig({ DATABASE_URL: databaseUrl, PAYBRIDGE_ENV: "test", ...env }, "relay");
}

export function connectSql(url: string, max = 4): Sql {
  return postgres(url, { max, onnotice: () => {}, types: { bigint: postgres.BigInt } }) as unknown as Sql;
}

export async function insertUsers(sql: Sql, n: number): Promise<string[]> {
  const tag = Math.random().toString(36).slice(2, 8);
  const rows = await sql<{ id: string }[]>`
    INSERT INTO users (email, full_name)
    SELECT 'u' || g || '-' || ${tag} || '@example.com', 'User ' || g FROM generate_series(1, ${n}) g
    RETURNING id`;
  return rows.map((r) => r.id);
}

const ROUND_TYPES: EventType[] = [
  "user.created",
  "user.kyc.started",
  "user.kyc.approved",
  "user.kyc.rejected",
];

/**
 * Writes `rounds` events per user: each round is one transaction touching every user in
 * `users` (so aggregates interleave in position order). Event data carries {round}.
 */
export async function writeRounds(
  sql: Sql,
  users: readonly string[],
  rounds: number,
  firstRound = 1,
): Promise<void> {
  for (let r = firstRound; r < firstRound + rounds; r++) {
    await sql.begin((tx) =>
      appendEvents(
        tx,
        users.map((id) => ({
          type: ROUND_TYPES[r % ROUND_TYPES.length] as EventType,
          aggregateType: "user" as const,
          aggregateId: id,
          actor: { id: "test", role: "admin" as const },
          traceId: `trace-${r}`,
          data: { id, round: r, kyc_status: "PENDING" },
        })),
      ),
    );
  }
}

export type OutboxCounts = { PENDING: number; PUBLISHED: number; FAILED: number };

export async function outboxCounts(sql: Sql): Promise<OutboxCounts> {
  const rows = await sql<{ status: keyof OutboxCounts; n: number }[]>`
    SELECT status, count(*)::int AS n FROM outbox GROUP BY 1`;
  const out: OutboxCounts = { PENDING: 0, PUBLISHED: 0, FAILED: 0 };
  for (const r of rows) out[r.status] = r.n;
  return out;
}

/** Polls `check` until it returns true; throws with `what` after `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 30_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await Bun.sleep(50);
  }
  throw new Error(`timed out waiting for: ${what}`);
}

export type TestStream = {
  streamName: string;
  subjectPrefix: string;
  nc: NatsConnection;
  /** Every message in the stream, in stream order. */
  readAll(): Promise<Envelope[]>;
  count(): Promise<number>;
  remove(): Promise<void>;
};

/** A private stream + subject space on a NATS server (the relay creates the stream itself). */
export async function privateStream(
  url = NATS_URL,
  names?: { streamName: string; subjectPrefix: string },
): Promise<TestStream> {
  const id = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  const streamName = names?.streamName ?? `PBTEST_${id}`.toUpperCase();
  const subjectPrefix = names?.subjectPrefix ?? `pbtest.${id}.events`;
  const nc = await connect({ servers: url });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  return {
    streamName,
    subjectPrefix,
    nc,
    async count() {
      try {
        return (await jsm.streams.info(streamName)).state.messages;
      } catch {
        return 0;
      }
    },
    async readAll() {
      const total = (await jsm.streams.info(streamName)).state.messages;
      const out: Envelope[] = [];
      const consumer = await js.consumers.get(streamName);
      while (out.length < total) {
        const batch = await consumer.fetch({
          max_messages: Math.min(1000, total - out.length),
          expires: 5_000,
        });
        let got = 0;
        for await (const m of batch) {
          out.push(m.json<Envelope>());
          got++;
        }
        if (got === 0) break;
      }
      return out;
    },
    async remove() {
      await jsm.streams.delete(streamName).catch(() => {});
      await nc.close();
    },
  };
}

/** Asserts the envelopes hold every (aggregate, sequence) once, in increasing order per aggregate. */
export function perAggregateProblems(envelopes: readonly Envelope[]): string[] {
  const last = new Map<string, number>();
  const seen = new Set<string>();
  const problems: string[] = [];
  for (const e of envelopes) {
    if (seen.has(e.id)) problems.push(`duplicate ${e.id}`);
    seen.add(e.id);
    const prev = last.get(e.aggregate_id) ?? 0;
    if (e.sequence !== prev + 1) problems.push(`${e.aggregate_id}: ${e.sequence} after ${prev}`);
    last.set(e.aggregate_id, e.sequence);
  }
  return problems;
}

/** A free TCP port (bound, then released). */
export function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}
